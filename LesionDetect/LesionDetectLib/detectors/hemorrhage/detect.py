"""Hemorrhage on a head CT (volume mode) or on one exported key image (slice mode) → `Findings`.

Volume mode: axial slices in the trained layout → three windows on the head's 240 mm square → CNN, PCA and
BiLSTM → slice and scan probabilities → Grad-CAM of each positive label, mapped back onto the input's voxels
→ a box around each connected hot region. Slice mode: the same on one image, HU read back through the brain
window, the CNN's probabilities only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from LesionDetectLib.detection.detector import no_progress
from LesionDetectLib.detection.findings import Findings, Lesion, ScoreTable
from LesionDetectLib.detection.hot_regions import hot_regions
from LesionDetectLib.detection.slice_square import to_slice_pixels
from LesionDetectLib.detectors.hemorrhage.anatomy import BONE_HU, blood_density_weight, intracranial
from LesionDetectLib.detectors.hemorrhage.checks import contrast_warning
from LesionDetectLib.detectors.hemorrhage.classify import classify_single_slice, classify_slices
from LesionDetectLib.detectors.hemorrhage.gradcam import label_heatmaps, union
from LesionDetectLib.detectors.hemorrhage.key_image import (
    APPROXIMATION_WARNING,
    ASSUMED_HEAD_LENGTH_MM,
    KEY_IMAGE_BONE_HU,
    key_image_input,
)
from LesionDetectLib.detectors.hemorrhage.labels import ANY, LABELS, SUBTYPES
from LesionDetectLib.detectors.hemorrhage.preprocess import INPUT_FOV_MM, head_frame, network_input
from LesionDetectLib.io.axial_view import axial_view

MIN_REGION_MM3 = 20.0  # smaller specks above the hot level are interpolation fringes, not regions
MIN_REGION_MM2 = 10.0  # the same on a single image


def detect_hemorrhage(volume, model, options, device="cpu", progress=None) -> Findings:
    """Volume mode: probabilities per slice and scan, the union heatmap on the input grid, boxes."""
    progress = progress or no_progress
    view = axial_view(volume)
    hu = view.to_network(volume.array)
    frame = head_frame(hu, float(np.mean(volume.spacing[:2])))
    progress("preprocess", 0.1, "three windows on the head's square")
    inputs = network_input(hu, frame, model.input_size)
    progress("classify", 0.3, f"{len(inputs)} slices")
    probabilities = classify_slices(model.network, inputs, device)
    scan = probabilities.scan
    positive = [label for label, p in zip(LABELS, scan) if p >= options.threshold]
    order = view.slice_order(len(hu))  # input slice index of each network slice
    slice_values = np.empty_like(probabilities.final)
    slice_values[order] = probabilities.final
    heatmap, lesions = None, []
    if options.heatmap:
        progress("heatmap", 0.6, "Grad-CAM of the positive labels")
        heat, hottest = scan_heatmap(model.network, inputs, probabilities.final, positive, options.threshold, frame, hu)
        lesions = (
            _volume_lesions(volume, view, heat, hottest, frame, probabilities.final, order, options) if hottest else []
        )
        heatmap = percent(view.from_network(heat))
    progress("done", 1.0, "")
    enhanced = contrast_warning(volume)
    return _findings(
        volume,
        model,
        device,
        lesions,
        heatmap,
        scan,
        summary(scan, positive, slice_values, options, "volume", z_mm=_slice_heights(volume)),
        ScoreTable("slice", LABELS, slice_values),
        [enhanced] if enhanced else [],
    )


def detect_key_image(image, model, options, device="cpu", progress=None) -> Findings:
    """Slice mode on a single 2D image: the CNN's probabilities, the union heatmap, boxes on the image."""
    progress = progress or no_progress
    inputs, frame, hu, pixel_mm = key_image_input(_as_8_bit(image.frames[0]), model.input_size)
    progress("classify", 0.3, "one key image")
    probabilities = classify_single_slice(model.network, inputs, device)
    scan = probabilities[0]
    positive = [label for label, p in zip(LABELS, scan) if p >= options.threshold]
    heatmap, lesions = None, []
    if options.heatmap:
        progress("heatmap", 0.6, "Grad-CAM of the positive labels")
        heat, hottest = scan_heatmap(
            model.network, inputs, probabilities, positive, options.threshold, frame, hu, KEY_IMAGE_BONE_HU
        )
        if hottest:
            min_pixels = int(np.ceil(MIN_REGION_MM2 / pixel_mm**2))
            for region in hot_regions(heat[0], options.hot_level, min_pixels):
                label = hottest.at(frame, region.peak, 0)
                (j0, i0), (j1, i1) = region.box
                lesions.append(
                    Lesion.on_frame(
                        image,
                        len(lesions) + 1,
                        label,
                        0,
                        [i0, j0, i1 + 1, j1 + 1],
                        score=float(scan[LABELS.index(label)]),
                        measurements={"heat": round(region.peak_heat, 3)},
                    )
                )
        heatmap = percent(heat)
    progress("done", 1.0, "")
    return _findings(
        image,
        model,
        device,
        lesions,
        heatmap,
        scan,
        summary(scan, positive, probabilities, options, "slice"),
        ScoreTable("frame", LABELS, probabilities),
        [APPROXIMATION_WARNING.format(ASSUMED_HEAD_LENGTH_MM, pixel_mm)],
    )


@dataclass
class HottestLabel:
    """Per pixel of the network's square, the positive label whose Grad-CAM is hottest there (the union's argmax)."""

    labels: list[str]
    index: np.ndarray  # (slices, size, size) into `labels`

    def at(self, frame, peak_ji, slice_index: int) -> str:
        """The label at a peak given in slice pixels (mapped onto the square)."""
        size = self.index.shape[-1]
        row = int(np.clip((peak_ji[0] - round(frame.j0)) / round(frame.side_px) * size, 0, size - 1))
        col = int(np.clip((peak_ji[1] - round(frame.i0)) / round(frame.side_px) * size, 0, size - 1))
        return self.labels[self.index[slice_index, row, col]]


def _findings(image, model, device, lesions, heatmap, scan, summary_fields, table, warnings) -> Findings:
    return Findings(
        detector="hemorrhage",
        method="deep",
        image=image,
        lesions=lesions,
        summary=summary_fields,
        model_version=model.version,
        weights_sha256=model.sha256,
        device=device,
        heatmap=heatmap,
        probabilities=dict(zip(LABELS, map(float, scan))),
        score_tables=[table],
        warnings=warnings,
    )


def scan_heatmap(
    network,
    inputs,
    slice_probabilities,
    positive,
    threshold,
    frame,
    hu,
    bone_hu=BONE_HU,
    target_layer=None,
    density_gate=True,
):
    """The union of the positive labels' Grad-CAMs on the slice pixels of `hu` (network layout), kept inside the
    skull (blood in the head is intracranial; Grad-CAM also lights the air and scalp around it), weighted by how
    well each voxel's HU fits acute blood (`density_gate`: Grad-CAM's 15 mm cells then point at the dense voxels
    within them) and rescaled to each slice's own peak; zero where nothing is positive. Also which label is
    hottest where (None when nothing is positive)."""
    maps = label_heatmaps(network, inputs, slice_probabilities, heatmap_labels(positive), threshold, target_layer)
    if not maps:
        return np.zeros(hu.shape, dtype=np.float32), None
    square, hottest_index = union(maps)
    heat = to_slice_pixels(torch.from_numpy(square), frame, hu.shape[1:])
    inside = heat * intracranial(hu, bone_hu)
    if density_gate:
        inside *= blood_density_weight(hu, INPUT_FOV_MM / frame.side_px)
    peak, inside_peak = heat.max(axis=(1, 2)), inside.max(axis=(1, 2))
    scale = np.divide(peak, inside_peak, out=np.zeros_like(peak), where=inside_peak > 0)
    return (inside * scale[:, None, None]).astype(np.float32), HottestLabel(list(maps), hottest_index)


def heatmap_labels(positive: list[str]) -> list[str]:
    """The subtypes called positive; "any" alone when it is positive but no subtype is."""
    subtypes = [label for label in positive if label in SUBTYPES]
    return subtypes or [label for label in positive if label == LABELS[ANY]]


def summary(scan, positive, slice_values, options, mode: str, z_mm=None) -> dict:
    rows = []
    for index, values in enumerate(slice_values):
        row = {"slice": index, **({} if z_mm is None else {"z_mm": round(float(z_mm[index]), 2)})}
        rows.append({**row, **{label: round(float(p), 4) for label, p in zip(LABELS, values)}})
    return {
        "mode": mode,
        "probabilities": {label: round(float(p), 4) for label, p in zip(LABELS, scan)},
        "positive": positive,
        "threshold": options.threshold,
        "slices": rows,
    }


def percent(heat: np.ndarray) -> np.ndarray:
    """0…1 heat as uint8 percent (the platform's compact heatmap)."""
    return np.rint(np.clip(heat, 0.0, 1.0) * 100).astype(np.uint8)


def _volume_lesions(volume, view, heat, hottest, frame, slice_probabilities, order, options) -> list[Lesion]:
    lesions = []
    min_voxels = int(np.ceil(MIN_REGION_MM3 / np.prod(volume.spacing)))
    for region in hot_regions(heat, options.hot_level, min_voxels):
        label = hottest.at(frame, region.peak[1:], region.peak[0])
        k0, k1 = region.box[:, 0]
        score = float(slice_probabilities[k0 : k1 + 1, LABELS.index(label)].max())
        box_kji = view.box_to_input(region.box, volume.array.shape)
        lesions.append(
            Lesion.from_box(
                volume,
                len(lesions) + 1,
                label,
                box_kji[:, ::-1],
                score=score,
                measurements={
                    "heat": round(region.peak_heat, 3),
                    "slices": f"{int(order[k0])}–{int(order[k1])}" if k0 != k1 else str(int(order[k0])),
                },
            )
        )
    return lesions


def _slice_heights(volume) -> np.ndarray:
    """RAS z (superior, mm) of each input slice's centre."""
    rows, cols = volume.array.shape[1:]
    k = np.arange(volume.array.shape[0])
    centres = np.stack([np.full(len(k), (cols - 1) / 2), np.full(len(k), (rows - 1) / 2), k], axis=1)
    return volume.ijk_to_ras_points(centres)[:, 2]


def _as_8_bit(grey: np.ndarray) -> np.ndarray:
    grey = np.asarray(grey)
    if grey.dtype == np.uint8:
        return grey
    top = np.iinfo(grey.dtype).max if grey.dtype.kind in "ui" else max(float(grey.max()), 1.0)
    return np.rint(np.clip(grey.astype(np.float32) / top, 0, 1) * 255).astype(np.uint8)

"""Coronary calcium, deep path: heart region → a window on every calcium piece → SSD on 2.5D crops → 3D lesions.

Every ≥ 130 HU piece of ≥ 1 mm² on a slice inside the heart region is looked at by the network
(`candidate_windows`), so no stage before the SSD can drop a lesion. The ACF trees no longer prune:
their real-scan recall cannot be measured on the data the project may use, and on real gated scans
their synthetic-tuned threshold kept one window of fifteen lesions. They score the heatmap's
background, and the summary counts the windows ACF would have kept (what it would save).

The SSD's boxes (classes LM, LAD, LCX, RCA, other) decide which ≥ 130 HU components are coronary
calcium; those are scored by the same Agatston/volume/mass and surface code as the classical path,
everything else bright is listed as excluded with the reason. The heatmap holds the detector's
coronary confidence where it looked and the ACF block score elsewhere, in percent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from LesionDetectLib.detection.findings import Findings
from LesionDetectLib.detectors.calcium.acf import score_map
from LesionDetectLib.detectors.calcium.candidate_windows import component_windows
from LesionDetectLib.detectors.calcium.candidates import Candidates, find_candidates
from LesionDetectLib.detectors.calcium.classical import (
    CalciumParams,
    Progress,
    calcium_summary,
    check_input,
    score_components,
    voxel_volume_mm3,
)
from LesionDetectLib.detectors.calcium.crops import Window, heart_frame, make_crops, to_slice_pixels
from LesionDetectLib.detectors.calcium.heart_region import find_heart_region
from LesionDetectLib.detectors.calcium.labels import ARTERIES, DETECTOR_CLASSES, OTHER_CLASS
from LesionDetectLib.detectors.calcium.model import CalciumModel
from LesionDetectLib.io.volume import Volume

CORONARY_THRESHOLD = 0.5
MAX_COMPONENT_MM3 = 10000.0  # the network judges components up to 10 mL: a dense plaque can pass 1.5 mL, the
# classical path's bone limit (a held-out synthetic scan's 1.6 mL RCA plaque was its whole score)
MIN_BOX_SCORE = 0.1  # boxes below are dropped before NMS: no decision uses them, and on a real chest CT they were
# 86 % of all boxes (most of the path's time went into suppressing them); the heatmap starts at 10 %
SCOPE_DEEP = (
    "Counts the calcified lesions the deep detector classed as coronary ({arteries}) inside the {region}; "
    "aortic, valve and other bright structures are listed as excluded."
)


@dataclass(frozen=True)
class SliceDetection:
    """One SSD box on axial slice `k`: (j0, i0, j1, i1) in slice pixels, class index and probability."""

    k: int
    box_ji: np.ndarray
    label: int
    score: float


@dataclass
class DeepStages:
    """What the deep path saw and found before lesions are built: region, windows, ACF map, SSD boxes."""

    heart: object  # heart_region.HeartRegion; None when the user gave the region
    region: np.ndarray  # bool (k, j, i): the heart region, or the region the user gave
    components: Candidates  # ≥ threshold components, bone set aside
    windows: list[Window]
    acf_map: np.ndarray
    acf_kept: int  # windows holding a block at or above the ACF threshold: what ACF pruning would keep
    detections: list[SliceDetection]
    timings: dict


def run_stages(volume: Volume, model: CalciumModel, params: CalciumParams, device: str, report) -> DeepStages:
    """Heart region (unless the params give one), components, piece windows, ACF map, the SSD's boxes."""
    timings, started = {}, time.perf_counter()
    heart, region = None, params.region
    if region is None:
        report("region", 0.02, "Finding the heart region")
        heart = find_heart_region(volume)
        region = heart.mask
        timings["heart_region_s"] = time.perf_counter() - started
    region = region.astype(bool)
    report("candidates", 0.1, "Finding every calcium piece (≥ 130 HU, ≥ 1 mm²) in the region")
    stage = time.perf_counter()
    components = deep_candidates(volume, params)
    windows = component_windows(components, region, volume.spacing)
    timings["candidates_s"] = time.perf_counter() - stage
    stage = time.perf_counter()
    acf_map = score_map(volume, model.acf, region, model.acf_shrink)
    acf_kept = sum(window_peak(acf_map, model.acf_shrink, w) >= model.acf_threshold for w in windows)
    timings["acf_s"] = time.perf_counter() - stage
    report("network", 0.2, f"Running the detector on {len(windows)} candidate windows")
    stage = time.perf_counter()
    detections = run_network(model, volume, windows, heart_frame(region), device)
    timings["network_s"] = time.perf_counter() - stage
    return DeepStages(heart, region, components, windows, acf_map, int(acf_kept), detections, timings)


def deep_candidates(volume: Volume, params: CalciumParams) -> Candidates:
    """The ≥ threshold components the network looks at: the bone rules, with components up to 10 mL kept."""
    bone = replace(params.bone, max_lesion_volume_mm3=max(params.bone.max_lesion_volume_mm3, MAX_COMPONENT_MM3))
    return find_candidates(volume, params.threshold_hu, bone)


def window_peak(acf_map: np.ndarray, shrink: int, window: Window) -> float:
    """The highest ACF block score inside a window."""
    j0, i0, j1, i1 = _pixel_range(window.box_ji(), *(np.array(acf_map.shape[1:]) * shrink))
    blocks = acf_map[window.k, j0 // shrink : -(-j1 // shrink), i0 // shrink : -(-i1 // shrink)]
    return float(blocks.max()) if blocks.size else 0.0


def detect_calcium_deep(
    volume: Volume,
    model: CalciumModel,
    params: CalciumParams | None = None,
    device: str = "cpu",
    progress: Progress | None = None,
) -> Findings:
    """Run the deep calcium path on `volume` (HU) and return its findings."""
    params = params or CalciumParams()
    report = progress or (lambda stage, fraction, message: None)
    started = time.perf_counter()
    check_input(volume, params.region)
    stages = run_stages(volume, model, params, device, report)
    return findings_from_stages(volume, model, params, stages, device, report, started)


def findings_from_stages(
    volume, model: CalciumModel, params: CalciumParams, stages: DeepStages, device, report, started
):
    """Coronary lesions (scored, with surfaces), exclusions with reasons, heatmap and region."""
    timings = dict(stages.timings)
    stage = time.perf_counter()
    components = stages.components
    labelled, excluded = classify_components(components, stages.detections, stages.region)
    lesions = score_components(
        volume,
        components,
        labelled,
        replace(params, region=stages.region),
        lambda f, m: report("score", 0.6 + 0.35 * f, m),
    )
    timings["scores_and_surfaces_s"] = time.perf_counter() - stage
    heatmap = make_heatmap(volume.array.shape, stages.acf_map, model.acf_shrink, stages.windows, stages.detections)
    timings["total_s"] = time.perf_counter() - started
    region_name = "given region" if params.region is not None else "heart region found from anatomy"
    note = SCOPE_DEEP.format(arteries=", ".join(ARTERIES), region=region_name)
    if stages.heart is not None and not stages.heart.found:
        note += " " + stages.heart.note
    summary = calcium_summary(lesions, components.excluded + excluded, voxel_volume_mm3(volume), params, "region", note)
    summary["candidates"] = {
        "windows": len(stages.windows),
        "slices_with_windows": len({w.k for w in stages.windows}),
        "acf_would_keep": stages.acf_kept,
    }
    return Findings(
        detector="calcium",
        method="deep",
        image=volume,
        lesions=lesions,
        summary=summary,
        model_version=model.version,
        weights_sha256=model.sha256,
        device=device,
        heatmap=heatmap,
        region=stages.region.astype(np.uint8),
        timings=timings,
    )


def run_network(model: CalciumModel, volume: Volume, windows: list[Window], frame, device: str, batch: int = 256):
    """SSD boxes of every window, in slice pixels, with per-slice class-wise NMS across windows."""
    import torch

    network = model.ssd.to(device)
    found: list[SliceDetection] = []
    autocast = torch.autocast("cuda", dtype=torch.float16, enabled=device == "cuda")
    with torch.inference_mode(), autocast:
        for first in range(0, len(windows), batch):
            chunk = windows[first : first + batch]
            crops = make_crops(volume.array, chunk, float(volume.spacing[2]), frame).to(device)
            logits, deltas = network(crops)
            for window, result in zip(chunk, decode_coronary(network, logits.float(), deltas.float())):
                boxes = to_slice_pixels(result["boxes"].cpu().numpy(), window)
                for box, label, score in zip(boxes, result["labels"].tolist(), result["scores"].tolist()):
                    found.append(SliceDetection(window.k, box, int(label), float(score)))
    return merge_overlapping(found)


def decode_coronary(network, class_logits, box_deltas) -> list[dict]:
    """Per crop: boxes scored as coronary (the four artery classes summed) or other; labels are detector classes.

    A plaque the network cannot place on one artery is still coronary calcium: the artery classes are
    pooled for the decision, and a coronary box's label is the artery most probable over the default
    boxes that predicted it (IoU ≥ 0.5).
    """
    import torch
    from monai.data.box_utils import box_iou

    from LesionDetectLib.nets.ssd import BOX_CODER, decode

    probabilities = class_logits.softmax(dim=-1)
    arteries = probabilities[..., 1:OTHER_CLASS]
    coronary = arteries.sum(dim=-1)
    grouped = torch.stack([probabilities[..., 0], coronary, probabilities[..., OTHER_CLASS]], dim=-1)
    results = decode(network, grouped.clamp_min(1e-12).log(), box_deltas, score_threshold=MIN_BOX_SCORE)
    for crop, result in enumerate(results):
        is_coronary = result["labels"] == 1
        labels = torch.full_like(result["labels"], OTHER_CLASS)
        if is_coronary.any():
            predicted = BOX_CODER.decode_single(box_deltas[crop], network.anchors)
            weights = (box_iou(result["boxes"][is_coronary], predicted) >= 0.5).float() * coronary[crop]
            labels[is_coronary] = (weights @ arteries[crop]).argmax(dim=-1) + 1
        result["labels"] = labels
    return results


def merge_overlapping(detections: list[SliceDetection], iou_threshold: float = 0.45) -> list[SliceDetection]:
    """Per slice and class, keep the best of boxes that overlapping windows found twice (MONAI NMS)."""
    import torch
    from monai.data.box_utils import batched_nms

    from LesionDetectLib.nets.ssd import nms_iou

    kept = []
    for _, on_slice in sorted(_group_by_slice(detections).items()):  # slice order
        boxes = torch.as_tensor(np.stack([d.box_ji for d in on_slice]), dtype=torch.float32)
        scores = torch.tensor([d.score for d in on_slice])
        labels = torch.tensor([d.label for d in on_slice])
        keep = batched_nms(boxes, scores, labels, iou_threshold, box_overlap_metric=nms_iou)
        kept.extend(on_slice[int(n)] for n in keep)
    return kept


def classify_components(components: Candidates, detections: list[SliceDetection], region: np.ndarray):
    """(component, score, artery) for coronary components; (component, reason) for the others."""
    by_slice = _detections_by_slice(detections)
    labelled, excluded = [], []
    in_region = np.zeros(int(components.labels.max()) + 1, dtype=bool)
    in_region[components.labels[region]] = True  # one pass: a noisy chest CT has tens of thousands of components
    in_region[0] = False
    for component in components.kept:
        if not in_region[component.label]:
            excluded.append((component, "outside the heart region"))
            continue
        lo, hi = component.box_ijk
        crop = (slice(lo[2], hi[2] + 1), slice(lo[1], hi[1] + 1), slice(lo[0], hi[0] + 1))
        voxels = (components.labels[crop] == component.label) & region[crop]
        best = _best_detections(voxels, lo, by_slice)
        coronary = max((best[c] for c in range(1, OTHER_CLASS)), default=0.0)
        if coronary >= CORONARY_THRESHOLD and coronary >= best[OTHER_CLASS]:
            artery = DETECTOR_CLASSES[int(np.argmax(best[1:OTHER_CLASS])) + 1]
            labelled.append((component, float(coronary), artery))
        elif best[OTHER_CLASS] > coronary:
            excluded.append((component, f"not coronary: the detector classed it as other ({best[OTHER_CLASS]:.2f})"))
        else:
            excluded.append((component, f"not coronary: coronary confidence {coronary:.2f} < {CORONARY_THRESHOLD}"))
    return labelled, excluded


def _detections_by_slice(detections: list[SliceDetection]) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per slice: the boxes (n, 4), labels (n,) and scores (n,) of its detections, as arrays."""
    return {
        k: (
            np.stack([d.box_ji for d in found]),
            np.array([d.label for d in found]),
            np.array([d.score for d in found]),
        )
        for k, found in _group_by_slice(detections).items()
    }


def _group_by_slice(detections: list[SliceDetection]) -> dict[int, list[SliceDetection]]:
    grouped: dict[int, list[SliceDetection]] = {}
    for detection in detections:
        grouped.setdefault(detection.k, []).append(detection)
    return grouped


def _best_detections(voxels_kji: np.ndarray, lo_ijk: np.ndarray, by_slice: dict) -> np.ndarray:
    """Highest score per class among boxes that cover at least one of the component's voxels."""
    best = np.zeros(len(DETECTOR_CLASSES))
    for dk in np.flatnonzero(voxels_kji.any(axis=(1, 2))):
        k = int(lo_ijk[2] + dk)
        if k not in by_slice:
            continue
        boxes, labels, scores = by_slice[k]
        rows, cols = np.nonzero(voxels_kji[dk])
        rows, cols = rows + lo_ijk[1] + 0.5, cols + lo_ijk[0] + 0.5  # pixel centres
        j0, i0, j1, i1 = (boxes[:, n, None] for n in range(4))
        covers = ((rows >= j0) & (rows <= j1) & (cols >= i0) & (cols <= i1)).any(axis=1)
        np.maximum.at(best, labels[covers], scores[covers])
    return best


def make_heatmap(shape_kji, acf_map: np.ndarray, shrink: int, windows, detections) -> np.ndarray:
    """Percent uint8 (k, j, i): coronary confidence inside the windows the SSD saw, ACF score elsewhere."""
    heatmap = np.zeros(shape_kji, dtype=np.uint8)
    height, width = shape_kji[1:]
    for k in np.flatnonzero(acf_map.reshape(len(acf_map), -1).max(axis=1) > 0):
        upsampled = np.repeat(np.repeat(acf_map[k], shrink, axis=0), shrink, axis=1)[:height, :width]
        heatmap[k, : upsampled.shape[0], : upsampled.shape[1]] = np.rint(upsampled * 100)
    for window in windows:
        j0, i0, j1, i1 = _pixel_range(window.box_ji(), height, width)
        heatmap[window.k, j0:j1, i0:i1] = 0
    for detection in sorted(detections, key=lambda d: d.score):
        if 1 <= detection.label < OTHER_CLASS:
            j0, i0, j1, i1 = _pixel_range(detection.box_ji, height, width)
            view = heatmap[detection.k, j0:j1, i0:i1]
            np.maximum(view, np.uint8(round(detection.score * 100)), out=view)
    return heatmap


def _pixel_range(box_ji, height: int, width: int) -> tuple[int, int, int, int]:
    j0, i0, j1, i1 = box_ji
    return (
        max(int(np.floor(j0)), 0),
        max(int(np.floor(i0)), 0),
        min(int(np.ceil(j1)), height),
        min(int(np.ceil(i1)), width),
    )

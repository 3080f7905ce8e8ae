"""Microbleeds on an SWI volume: SSD on every axial slice, slice boxes merged into 3D lesions, an operating point.

Magnitude (or SWI computed from magnitude and phase) → N4, normalisation, INPUT_FOV_MM square at the model's side
with three depths per slice (`preprocess.py`) → the SSD on batches of slices → boxes above CANDIDATE_SCORE per
slice, back on the input's slice pixels → merged across adjacent slices (`merge.py`) → each 3D candidate scored by
its best slice. Candidates at or above the operating point's score are the microbleeds; the others are kept as
`candidates`, so another operating point needs no rerun (`split_at`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from LesionDetectLib.detection.findings import Findings, Lesion
from LesionDetectLib.detection.options import params_of
from LesionDetectLib.detectors.microbleed import location
from LesionDetectLib.detectors.microbleed.merge import MergedLesion, merge_slice_detections
from LesionDetectLib.detectors.microbleed.model import MicrobleedModel, score_threshold
from LesionDetectLib.detectors.microbleed.options import MicrobleedOptions
from LesionDetectLib.detectors.microbleed.preprocess import SwiSlices, network_slices
from LesionDetectLib.detectors.microbleed.swi import phase_radians, swi
from LesionDetectLib.io.volume import Volume

CANDIDATE_SCORE = 0.05  # slice boxes below this are dropped (below every operating point the model lists)
NMS_IOU = 0.3
MAX_PER_SLICE = 30
BATCH = 8
LABEL = "microbleed"


def swi_input(volume: Volume, options: MicrobleedOptions) -> tuple[Volume, list[str]]:
    """The volume the network reads: the input, or SWI from it and the phase option; warnings on the way."""
    if options.phase is None:
        return volume, []
    phase = np.asarray(options.phase, dtype=np.float32)
    notes = []
    raw_range = None
    if np.abs(phase).max() > np.pi + 1e-3:
        raw_range = (float(phase.min()), float(phase.max()))
        notes.append(f"The phase was read as raw values spanning one turn ({raw_range[0]:g} to {raw_range[1]:g}).")
    radians = phase_radians(phase, raw_range)
    magnitude = swi(np.asarray(volume.array, dtype=np.float32), radians, volume.spacing)
    return Volume(magnitude, volume.ijk_to_ras, name=f"{volume.name} SWI", modality=volume.modality), notes


@torch.no_grad()
def slice_detections(model: MicrobleedModel, slices: SwiSlices, device: str, progress) -> list[list]:
    """Per input slice k: (box [i0, j0, i1, j1] in input slice pixels, score) of the SSD's boxes."""
    from LesionDetectLib.nets.ssd import decode

    network = model.network.to(device)
    order = slices.view.slice_order(len(slices.slices))
    input_shape = slices.view_shape_ji[::-1] if slices.view.swap_in_plane else slices.view_shape_ji
    per_slice: list[list] = [[] for _ in order]
    for start in range(0, len(slices.slices), BATCH):
        batch = slices.slices[start : start + BATCH].to(device)
        logits, deltas = network(batch)
        found = decode(
            network.anchors, logits, deltas, CANDIDATE_SCORE, NMS_IOU, MAX_PER_SLICE, network.config.image_size
        )
        for offset, detections in enumerate(found):
            k = int(order[start + offset])
            for box, score in zip(detections["boxes"].cpu().numpy(), detections["scores"].cpu().numpy()):
                j0, i0, j1, i1 = slices.view.pixel_box_to_input(
                    slices.square.box_to_slice(box, slices.input_size), input_shape
                )
                per_slice[k].append(([i0, j0, i1, j1], float(score)))
        progress("network", min(1.0, (start + BATCH) / len(slices.slices)), "Looking for microbleeds slice by slice")
    return per_slice


def located(
    volume: Volume, merged: list[MergedLesion], slices: SwiSlices, options: MicrobleedOptions
) -> tuple[list[Lesion], str]:
    """Lesions (ids 1…, best first) with diameter, slice range, elongation and lobar / deep; where that came from."""
    if options.parcellation is not None:
        where = [
            location.location_from_parcellation(options.parcellation, _center_kji(m), volume.spacing) for m in merged
        ]
        source = location.PARCELLATION
    else:
        depth = location.depth_in_head_mm(slices.view.from_network(slices.head), volume.spacing)
        where = [location.location_from_position(depth, _center_kji(m)) for m in merged]
        source = location.POSITION_GUESS
    lesions = []
    for number, (lesion, place) in enumerate(zip(merged, where), start=1):
        lesions.append(
            Lesion.from_box(
                volume,
                number,
                LABEL,
                lesion.box_ijk,
                score=lesion.score,
                measurements={
                    "diameter_mm": round(lesion.diameter_mm, 2),
                    "location": place,
                    "slice_range": [int(lesion.slices[0]), int(lesion.slices[1])],
                    "elongation": round(lesion.elongation, 2),
                },
            )
        )
        lesions[-1].center_ras = np.asarray(lesion.center_ras, dtype=float)
    return lesions, source


def _center_kji(lesion: MergedLesion) -> np.ndarray:
    return np.asarray(lesion.box_ijk, dtype=float).mean(axis=0)[::-1]


def split_at(all_found: list[Lesion], operating_points: list[dict], sensitivity: float) -> tuple[list, list, dict]:
    """(microbleeds, candidates, the operating point) at a validation sensitivity."""
    threshold = score_threshold(operating_points, sensitivity)
    kept = [lesion for lesion in all_found if lesion.score >= threshold]
    below = [lesion for lesion in all_found if lesion.score < threshold]
    return kept, below, {"sensitivity": float(sensitivity), "score_threshold": threshold}


@dataclass
class Candidates:
    """Every 3D candidate of a run (ids 1…, best first), where their locations came from, warnings, timings."""

    lesions: list[Lesion]
    location_source: str
    warnings: list[str]
    timings: dict


def find_candidates(
    volume: Volume, model: MicrobleedModel, options: MicrobleedOptions, device: str = "cpu", progress=None
) -> Candidates:
    """The network on every slice, its boxes merged into 3D candidates with their measurements."""
    progress = progress or (lambda *args: None)
    started = time.perf_counter()
    image, warnings = swi_input(volume, options)
    progress("preprocess", 0.0, "Bias correction and normalisation")
    slices = network_slices(image, model.input_size, options.bias_correction)
    prepared = time.perf_counter()
    per_slice = slice_detections(model, slices, device, progress)
    inferred = time.perf_counter()
    lesions, source = located(volume, merge_slice_detections(per_slice, volume), slices, options)
    timings = {
        "preprocess_s": round(prepared - started, 3),
        "network_s": round(inferred - prepared, 3),
        "merge_s": round(time.perf_counter() - inferred, 3),
    }
    return Candidates(lesions, source, warnings, timings)


def detect_microbleeds(
    volume: Volume, model: MicrobleedModel, options: MicrobleedOptions, device: str = "cpu", progress=None
) -> Findings:
    """Findings: the microbleeds at the chosen operating point, the other candidates, counts by location."""
    found = find_candidates(volume, model, options, device, progress)
    microbleeds, candidates, operating_point = split_at(found.lesions, model.operating_points, options.sensitivity)
    return Findings(
        detector="microbleed",
        method="deep",
        image=volume,
        lesions=microbleeds,
        candidates=candidates,
        summary=summary(microbleeds, operating_point, model.operating_points, found.location_source),
        model_version=model.version,
        weights_sha256=model.sha256,
        device=device,
        warnings=found.warnings + model.caution_warnings,
        params=params_of(options),
        timings=found.timings,
    )


def summary(microbleeds: list[Lesion], operating_point: dict, operating_points: list[dict], source: str) -> dict:
    """The count (in all, lobar, deep), the operating point and the curve it was chosen on, the location source."""
    places = [lesion.measurements["location"] for lesion in microbleeds]
    return {
        "count": len(microbleeds),
        "lobar": places.count("lobar"),
        "deep": places.count("deep"),
        "location_source": source,
        "operating_point": operating_point,
        "operating_points": operating_points,
    }

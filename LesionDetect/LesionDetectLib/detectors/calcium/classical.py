"""Coronary artery calcium on non-contrast CT: the clinical Agatston procedure (classical path).

Voxels ≥ 130 HU form 3D lesions (26-connected); each axial 8-connected piece of ≥ 1 mm² scores
area × density weight, scaled by slice thickness / 3 mm. Bone-like components are set aside. Without
a heart region the total counts every calcium-like structure in the field of view, and says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from LesionDetectLib.detection.findings import Findings, Lesion
from LesionDetectLib.detectors.calcium.agatston import agatston_category, cac_drs, score_lesion
from LesionDetectLib.detectors.calcium.candidates import Candidates, Component, find_candidates
from LesionDetectLib.detectors.calcium.labels import ARTERIES
from LesionDetectLib.detectors.calcium.options import CalciumParams
from LesionDetectLib.detectors.calcium.surfaces import lesion_surface
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.volume import Volume

Progress = Callable[[str, float, str], None]
MAX_AXIAL_TILT_DEG = 20.0
SCOPE_WHOLE_FIELD = (
    "No heart or coronary region was given: the total counts every calcium-like structure in the "
    "field of view left after removing large bone (aortic and valve calcium, bone fragments, noise), "
    "so it is not a coronary calcium score."
)
SCOPE_REGION = "Counts calcium-like structures inside the given heart/coronary region only."


def check_input(volume: Volume, region: np.ndarray | None = None) -> None:
    """Refuse volumes that are not axial CT in Hounsfield units, and region masks on another grid."""
    volume.validate()
    if region is not None and region.shape != volume.array.shape:
        raise LesionDetectError(
            f"The heart region mask has shape {region.shape}, the volume {volume.array.shape}: "
            "give a mask on the same voxel grid."
        )
    if volume.modality and volume.modality.upper() != "CT":
        raise LesionDetectError(
            f"'{volume.name}' is {volume.modality}, but the calcium detector needs a non-contrast CT."
        )
    lowest = float(volume.array[::2, ::2, ::2].min())  # air fills CT scans: every other voxel is plenty
    if lowest > -500:
        raise LesionDetectError(
            f"'{volume.name}' does not look like CT in Hounsfield units (lowest value {lowest:g}; CT has air "
            "near -1000 HU). The calcium detector needs a non-contrast CT in HU."
        )
    k_axis = volume.directions[:, 2]
    tilt = np.degrees(np.arccos(min(1.0, abs(k_axis[2]))))
    if tilt > MAX_AXIAL_TILT_DEG:
        raise LesionDetectError(
            f"'{volume.name}' is not made of axial slices (slice axis {tilt:.0f}° from superior–inferior); "
            "Agatston scoring is defined on axial slices: reformat the volume axially first."
        )


def detect_calcium(volume: Volume, params: CalciumParams | None = None, progress: Progress | None = None) -> Findings:
    """Run the classical calcium path on `volume` (HU) and return its findings."""
    params = params or CalciumParams()
    report = progress or (lambda stage, fraction, message: None)
    timings = {}
    started = time.perf_counter()
    report("check", 0.0, "Checking the input volume")
    check_input(volume, params.region)
    report("candidates", 0.05, f"Labelling voxels ≥ {params.threshold_hu:g} HU")
    candidates = find_candidates(volume, params.threshold_hu, params.bone)
    timings["candidates_s"] = time.perf_counter() - started
    stage_started = time.perf_counter()
    labelled = [(component, None, None) for component in candidates.kept]
    lesions = score_components(volume, candidates, labelled, params, lambda f, m: report("score", 0.1 + 0.8 * f, m))
    timings["scores_and_surfaces_s"] = time.perf_counter() - stage_started
    timings["total_s"] = time.perf_counter() - started
    scope, note = ("region", SCOPE_REGION) if params.region is not None else ("whole_field_of_view", SCOPE_WHOLE_FIELD)
    return Findings(
        detector="calcium",
        method="classical",
        image=volume,
        lesions=lesions,
        summary=calcium_summary(lesions, candidates.excluded, voxel_volume_mm3(volume), params, scope, note),
        timings=timings,
    )


def score_components(
    volume: Volume,
    candidates: Candidates,
    labelled: list[tuple[Component, float | None, str | None]],
    params: CalciumParams,
    progress: Callable[[float, str], None],
) -> list[Lesion]:
    """Scores and surfaces of (component, detector score, artery) triples, inside the region if one is given."""
    spacing = volume.spacing
    slice_thickness = params.slice_thickness_mm or float(spacing[2])
    voxel_volume = voxel_volume_mm3(volume)
    lesions = []
    for index, (component, score, artery) in enumerate(labelled):
        lo, hi = component.box_ijk
        crop = (slice(lo[2], hi[2] + 1), slice(lo[1], hi[1] + 1), slice(lo[0], hi[0] + 1))
        lesion_crop = candidates.labels[crop] == component.label
        if params.region is not None:
            lesion_crop &= params.region[crop].astype(bool)
        scores = score_lesion(
            volume.array[crop],
            lesion_crop,
            pixel_area_mm2=float(spacing[0] * spacing[1]),
            voxel_volume_mm3=voxel_volume,
            slice_thickness_mm=slice_thickness,
            mass_calibration=params.mass_calibration,
            k_offset=int(lo[2]),
        )
        if scores is None:
            continue
        box_ijk, qualifying_mask = _tighten(lo, scores.qualifying_mask)
        lesion = Lesion.from_box(
            volume,
            len(lesions) + 1,
            "calcium",
            box_ijk,
            score=score,
            measurements={
                "agatston": scores.agatston,
                "volume_mm3": scores.volume_mm3,
                "mass_mg": scores.mass_mg,
                "peak_hu": scores.peak_hu,
                "slices": [scores.first_slice, scores.last_slice],
                **({"artery": artery} if artery else {}),
            },
        )
        if params.surfaces:
            lesion.surface = lesion_surface(volume, box_ijk, qualifying_mask, params.threshold_hu)
        lesions.append(lesion)
        progress((index + 1) / max(1, len(labelled)), f"Lesion {len(lesions)}")
    return lesions


def voxel_volume_mm3(volume: Volume) -> float:
    return float(abs(np.linalg.det(volume.ijk_to_ras[:3, :3])))


def _tighten(lo_ijk: np.ndarray, mask_kji: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tight voxel box of a crop's mask (IJK, inclusive) and the mask cropped to it."""
    nonzero_kji = np.nonzero(mask_kji)
    first = np.array([axis.min() for axis in nonzero_kji])
    last = np.array([axis.max() for axis in nonzero_kji])
    box_ijk = np.array([lo_ijk + first[::-1], lo_ijk + last[::-1]])
    return box_ijk, mask_kji[first[0] : last[0] + 1, first[1] : last[1] + 1, first[2] : last[2] + 1]


def calcium_summary(lesions, excluded, voxel_volume: float, params: CalciumParams, scope: str, scope_note: str) -> dict:
    """Totals, category and what was left out (with why) — the calcium report's `summary`."""
    total = float(sum(lesion.measurements["agatston"] for lesion in lesions))
    per_artery = {}
    for lesion in lesions:
        if lesion.measurements.get("artery") in ARTERIES:
            artery = lesion.measurements["artery"]
            per_artery[artery] = per_artery.get(artery, 0.0) + lesion.measurements["agatston"]
    return {
        "agatston_total": total,
        "volume_mm3_total": float(sum(lesion.measurements["volume_mm3"] for lesion in lesions)),
        "mass_mg_total": float(sum(lesion.measurements["mass_mg"] for lesion in lesions)),
        "category": agatston_category(total),
        "cac_drs": cac_drs(total),
        "per_artery": per_artery or None,
        "scope": scope,
        "scope_note": scope_note,
        "threshold_hu": params.threshold_hu,
        "mass_calibration_mg_per_cm3_per_hu": params.mass_calibration,
        "excluded": [
            {
                "box_ijk": None if component.box_ijk is None else component.box_ijk.tolist(),
                "volume_mm3": component.voxel_count * voxel_volume,
                "reason": reason,
            }
            for component, reason in excluded
        ],
    }

"""Agatston, volume and mass scores of calcified lesions, and the risk categories they map to."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

MIN_LESION_AREA_MM2 = 1.0
REFERENCE_SLICE_THICKNESS_MM = 3.0
# Axial 8-connectivity inside each slice, none across slices.
_IN_SLICE_STRUCTURE = np.zeros((3, 3, 3), dtype=bool)
_IN_SLICE_STRUCTURE[1] = True


def agatston_weight(peak_hu: np.ndarray) -> np.ndarray:
    """Density weight of a slice lesion from its peak HU: 130–199 → 1, 200–299 → 2, 300–399 → 3, ≥ 400 → 4."""
    return np.clip(np.floor(np.asarray(peak_hu, dtype=float) / 100.0), 1, 4).astype(int)


def agatston_category(total: float) -> str:
    """Classic risk category of a total Agatston score: 0, 1–10, 11–100, 101–400, > 400."""
    if total <= 0:
        return "0"
    if total <= 10:
        return "1-10"
    if total <= 100:
        return "11-100"
    if total <= 400:
        return "101-400"
    return ">400"


def cac_drs(total: float) -> str:
    """CAC-DRS Agatston grade: A0 (0), A1 (1–99), A2 (100–299), A3 (≥ 300)."""
    if total <= 0:
        return "A0"
    if total < 100:
        return "A1"
    if total < 300:
        return "A2"
    return "A3"


@dataclass
class LesionScores:
    """Scores of one 3D lesion made of the qualifying axial pieces inside it."""

    agatston: float
    volume_mm3: float
    mass_mg: float
    peak_hu: float
    first_slice: int
    last_slice: int
    qualifying_mask: np.ndarray  # (k, j, i) bool over the lesion's crop


def score_lesion(
    hu_crop: np.ndarray,
    lesion_crop: np.ndarray,
    pixel_area_mm2: float,
    voxel_volume_mm3: float,
    slice_thickness_mm: float,
    mass_calibration: float,
    k_offset: int = 0,
) -> LesionScores | None:
    """Score one lesion's crop: per-slice 8-connected pieces with area ≥ 1 mm² count, weighted by peak HU.

    `lesion_crop` marks the lesion's voxels (≥ threshold); `mass_calibration` is c_HA in mg/cm³ per HU.
    Returns None when no piece reaches 1 mm².
    """
    pieces, count = ndimage.label(lesion_crop, structure=_IN_SLICE_STRUCTURE)
    if count == 0:
        return None
    piece_of_voxel = pieces[lesion_crop]
    hu_of_voxel = hu_crop[lesion_crop].astype(np.float64)
    areas_mm2 = np.bincount(piece_of_voxel, minlength=count + 1)[1:] * pixel_area_mm2
    peaks = np.full(count + 1, -np.inf)
    np.maximum.at(peaks, piece_of_voxel, hu_of_voxel)
    peaks = peaks[1:]
    qualifies = areas_mm2 >= MIN_LESION_AREA_MM2 - 1e-9
    if not qualifies.any():
        return None
    thickness_factor = slice_thickness_mm / REFERENCE_SLICE_THICKNESS_MM
    agatston = float(np.sum(areas_mm2[qualifies] * agatston_weight(peaks[qualifies])) * thickness_factor)
    voxel_qualifies = qualifies[piece_of_voxel - 1]
    qualifying_mask = np.zeros_like(lesion_crop)
    qualifying_mask[lesion_crop] = voxel_qualifies
    volume_mm3 = float(np.count_nonzero(voxel_qualifies) * voxel_volume_mm3)
    mass_mg = float(mass_calibration * hu_of_voxel[voxel_qualifies].sum() * voxel_volume_mm3 / 1000.0)
    slices = np.flatnonzero(qualifying_mask.any(axis=(1, 2)))
    return LesionScores(
        agatston=agatston,
        volume_mm3=volume_mm3,
        mass_mg=mass_mg,
        peak_hu=float(peaks[qualifies].max()),
        first_slice=int(slices[0]) + k_offset,
        last_slice=int(slices[-1]) + k_offset,
        qualifying_mask=qualifying_mask,
    )

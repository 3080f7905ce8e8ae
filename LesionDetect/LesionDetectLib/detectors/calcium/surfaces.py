"""Partial-volume-aware lesion surfaces: iso-surfaces of lightly smoothed grey values, per lesion crop.

As in Mimics' calcium surfaces, the surface is an iso-surface of the grey values (sub-voxel accurate
and smooth), not the staircase of the binary mask. Its level is the lesion's half maximum — halfway
between the surrounding tissue and the lesion's peak, where a partial-volume edge crosses the true
boundary — and never below the scoring threshold, so a dense plaque is not inflated by blooming the
way a 130 HU mask is. Each lesion is surfaced in its own padded crop, where voxels farther than one
voxel from the lesion are held below the level, so neighbours never join its surface and every
surface is closed.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from LesionDetectLib.detection.findings import Surface
from LesionDetectLib.io.volume import Volume
from LesionDetectLib.results.meshes import iso_surface_ijk

CROP_MARGIN_VOXELS = 2
SMOOTHING_SIGMA_FINEST_VOXELS = 0.3


def iso_level(threshold_hu: float, background_hu: float, peak_hu: float) -> float:
    """The lesion's half maximum, but at least the threshold (less half a HU, as the data are integers)."""
    return max(threshold_hu - 0.5, 0.5 * (background_hu + peak_hu))


def lesion_surface(volume: Volume, box_ijk: np.ndarray, lesion_mask: np.ndarray, threshold_hu: float) -> Surface | None:
    """Closed outward-wound RAS surface of one lesion; `lesion_mask` is (k, j, i) bool over `box_ijk`."""
    lo = np.maximum(box_ijk[0] - CROP_MARGIN_VOXELS, 0)
    hi = np.minimum(box_ijk[1] + CROP_MARGIN_VOXELS + 1, volume.shape_ijk)
    crop = tuple(slice(lo[d], hi[d]) for d in (2, 1, 0))
    grey = volume.array[crop].astype(np.float32)
    sigma_kji = (SMOOTHING_SIGMA_FINEST_VOXELS * volume.spacing.min() / volume.spacing)[::-1]
    near_lesion = np.zeros(grey.shape, dtype=bool)
    offset = box_ijk[0] - lo
    near_lesion[
        offset[2] : offset[2] + lesion_mask.shape[0],
        offset[1] : offset[1] + lesion_mask.shape[1],
        offset[0] : offset[0] + lesion_mask.shape[2],
    ] = lesion_mask
    in_lesion = near_lesion.copy()
    near_lesion = ndimage.binary_dilation(near_lesion, structure=np.ones((3, 3, 3), bool))
    surrounding = grey[~near_lesion]
    background = float(np.median(surrounding)) if surrounding.size else threshold_hu - 0.5
    level = iso_level(threshold_hu, background, float(grey[in_lesion].max()))
    smoothed = ndimage.gaussian_filter(grey, sigma=sigma_kji, mode="nearest")
    if smoothed[in_lesion].max() < level:  # a tiny lesion that smoothing pulls under the level
        smoothed = grey
    below = np.float32(level - 1.0)
    smoothed = np.where(near_lesion, smoothed, np.minimum(smoothed, below))
    padded = np.pad(smoothed, 1, constant_values=below)
    points_ijk, triangles = iso_surface_ijk(padded, level)
    if len(triangles) == 0:
        return None
    points_ras = volume.ijk_to_ras_points(points_ijk + (lo - 1))
    if np.linalg.det(volume.ijk_to_ras[:3, :3]) < 0:
        triangles = triangles[:, ::-1]
    return Surface(points_ras, np.ascontiguousarray(triangles))

"""The intracranial space of head-CT slices: what the skull encloses."""

from __future__ import annotations

import numpy as np

BONE_HU = 300.0
MIN_ENCLOSED_FRACTION = 0.05  # of the head's cross-section; below it the skull is open (skull base, vertex)
HEAD_HU = -300.0  # above: the head (scalp, bone, brain), below: air and padding
BLOOD_RAMP_HU = (30.0, 55.0)  # weight 0 → 1: below lie brain and CSF; acute blood is 40–90 HU
DENSE_RAMP_HU = (100.0, 130.0)  # weight 1 → 0: above lie calcification and bone
DENSITY_SMOOTHING_MM = 1.0


def intracranial(hu_kji: np.ndarray, bone_hu: float = BONE_HU) -> np.ndarray:
    """Per slice: the space the skull (its largest bone component) encloses, bright spots inside kept; on slices
    where the skull is not a closed ring, the whole head's soft tissue."""
    from scipy import ndimage

    inside = np.zeros(np.shape(hu_kji), dtype=bool)
    for k, hu in enumerate(hu_kji):
        bone = largest_component(hu >= bone_hu)
        if bone is None:
            inside[k] = hu > HEAD_HU
            continue
        enclosed = ndimage.binary_fill_holes(bone) & ~bone
        head = (hu > HEAD_HU) & ~bone
        inside[k] = enclosed if enclosed.sum() >= MIN_ENCLOSED_FRACTION * max(head.sum(), 1) else head
    return inside


def largest_component(mask: np.ndarray) -> np.ndarray | None:
    """The largest connected part of a 2D mask (face neighbours), or None when the mask is empty."""
    from scipy import ndimage

    labelled, count = ndimage.label(mask)
    if not count:
        return None
    return labelled == np.bincount(labelled.ravel())[1:].argmax() + 1


def blood_density_weight(hu_kji: np.ndarray, pixel_mm: float) -> np.ndarray:
    """Per voxel 0…1: how well its HU, smoothed in-plane over DENSITY_SMOOTHING_MM, fits acute blood."""
    from scipy import ndimage

    sigma = DENSITY_SMOOTHING_MM / pixel_mm
    hu = ndimage.gaussian_filter(np.asarray(hu_kji, dtype=np.float32), (0.0, sigma, sigma))
    rising = np.clip((hu - BLOOD_RAMP_HU[0]) / (BLOOD_RAMP_HU[1] - BLOOD_RAMP_HU[0]), 0.0, 1.0)
    falling = np.clip((DENSE_RAMP_HU[1] - hu) / (DENSE_RAMP_HU[1] - DENSE_RAMP_HU[0]), 0.0, 1.0)
    return (rising * falling).astype(np.float32)

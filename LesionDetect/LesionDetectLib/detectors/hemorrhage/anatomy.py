"""The intracranial space of head-CT slices: what the skull encloses."""

from __future__ import annotations

import numpy as np

BONE_HU = 300.0
MIN_ENCLOSED_FRACTION = 0.05  # of the head's cross-section; below it the skull is open (skull base, vertex)
HEAD_HU = -300.0  # above: the head (scalp, bone, brain), below: air and padding


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

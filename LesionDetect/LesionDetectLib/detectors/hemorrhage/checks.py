"""What the hemorrhage detector refuses: not CT, too few slices, no head in the scan (seen from the anatomy).

A head slice shows one body cross-section 50–240 mm across, walled by bone and without lung air; a chest or
abdomen slice is wider and holds air. The tags alone cannot say whether a CT shows a head.
"""

from __future__ import annotations

import numpy as np

from LesionDetectLib.detectors.hemorrhage.anatomy import BONE_HU, HEAD_HU, largest_component
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.volume import Volume

MIN_SLICES = 3
AIR_HU = -400.0
HEAD_EXTENT_MM = (50.0, 240.0)
MAX_AIR_FRACTION = 0.1  # of the filled cross-section (sinuses and mastoids stay below it)
MIN_BONE_FRACTION = 0.02
MIN_HEAD_SLICE_FRACTION = 0.3


def check_head_ct(volume: Volume) -> None:
    """Refuse a volume the model cannot read as a head CT, naming the problem."""
    slices = volume.array.shape[0]
    if slices < MIN_SLICES:
        raise LesionDetectError(
            f"'{volume.name}' holds {slices} slices; the hemorrhage model reads a scan of at least {MIN_SLICES} "
            "axial slices. For a single exported image, run a PNG or JPEG key image (slice mode)."
        )
    if volume.array.min() > -500:
        raise LesionDetectError(
            f"'{volume.name}' has no values below −500, so it is not a CT in HU (air is −1000 HU): "
            "the hemorrhage model needs a non-contrast head CT."
        )
    pixel_mm = float(np.mean(volume.spacing[:2]))
    head = head_slices(volume.array, pixel_mm)
    if head.sum() < max(MIN_SLICES, MIN_HEAD_SLICE_FRACTION * slices):
        raise LesionDetectError(
            f"'{volume.name}' does not show a head: {int(head.sum())} of {slices} slices look like a head "
            f"(one cross-section {HEAD_EXTENT_MM[0]:.0f}–{HEAD_EXTENT_MM[1]:.0f} mm across, walled by bone, no "
            "lung air). Choose the head CT series."
        )


def head_slices(hu_kji: np.ndarray, pixel_mm: float) -> np.ndarray:
    """Per slice: whether its largest body cross-section looks like a head."""
    from scipy import ndimage

    looks = np.zeros(len(hu_kji), dtype=bool)
    for k, hu in enumerate(hu_kji):
        largest = largest_component(hu > HEAD_HU)
        if largest is None:
            continue
        body = ndimage.binary_fill_holes(largest)
        rows, cols = np.nonzero(body.any(axis=1))[0], np.nonzero(body.any(axis=0))[0]
        extent_mm = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) * pixel_mm
        area = body.sum()
        air = (body & (hu < AIR_HU)).sum() / area
        bone = (body & (hu > BONE_HU)).sum() / area
        looks[k] = (
            HEAD_EXTENT_MM[0] <= extent_mm <= HEAD_EXTENT_MM[1]
            and air <= MAX_AIR_FRACTION
            and (bone >= MIN_BONE_FRACTION)
        )
    return looks


ENHANCED_HU = (130.0, 500.0)  # contrast-filled vessels and sinuses; non-contrast brain holds only small calcifications
CORTICAL_BONE_HU = 500.0
BONE_MARGIN_MM = 12.0  # deep brain only: partial-volume bone of the inner table, skull base and vertex is not
MIN_AREA_FRACTION = 0.6  # of the largest intracranial cross-section: mid-level slices, not base or vertex
MAX_ENHANCED_FRACTION = 0.01  # of the deep voxels; synthetic non-contrast heads (pineal calcification) reach 0.3 %


def contrast_warning(volume: Volume) -> str | None:
    """A warning when the brain holds more enhanced-looking voxels than a non-contrast head CT does."""
    from scipy import ndimage

    hu = volume.array
    pixel_mm = float(np.mean(volume.spacing[:2]))
    margin = max(1, int(round(BONE_MARGIN_MM / pixel_mm)))
    areas, counts = [], []
    for hu_slice in hu:
        bone = hu_slice > CORTICAL_BONE_HU
        deep = ndimage.binary_fill_holes(bone) & ~ndimage.binary_dilation(bone, iterations=margin)
        areas.append(int(deep.sum()))
        counts.append(int((deep & (hu_slice >= ENHANCED_HU[0]) & (hu_slice <= ENHANCED_HU[1])).sum()))
    areas, counts = np.array(areas), np.array(counts)
    mid_level = areas >= MIN_AREA_FRACTION * areas.max() if areas.max() else areas > 0
    fraction = counts[mid_level].sum() / areas[mid_level].sum() if mid_level.any() else 0.0
    if fraction <= MAX_ENHANCED_FRACTION:
        return None
    return (
        f"'{volume.name}' looks contrast-enhanced: {100 * fraction:.1f} % of the deep intracranial voxels are "
        f"{ENHANCED_HU[0]:.0f}–{ENHANCED_HU[1]:.0f} HU (a non-contrast head CT holds under "
        f"{100 * MAX_ENHANCED_FRACTION:.1f} %). The model expects non-contrast CT: enhancing vessels can look "
        "like blood, so read its probabilities with care."
    )

"""Heart region from anatomy: the mediastinum between the lungs, in front of the spine, dilated by a margin.

Works on a coarse grid (≈ 2.5 mm) in a canonical frame (slices, anterior → posterior, lateral) and upsamples
the mask. Lungs are large air components of parenchymal density, so a small gated field of view that cuts
the lungs at its edge needs no outside-body air, and outside air, trachea and bowel gas (pure air,
≈ −1000 HU) are not taken for lungs. Per slice, the convex hull of the lungs minus the lungs, minus the
vertebral body and everything behind its anterior edge, on slices whose lungs are at least a quarter of
the largest slice's (a chest CT's abdomen and neck drop out), opened to shed lung vessels, without voxels that
have no lung on one side along their row (chest wall outside the lungs): its largest component,
holes filled, dilated by `margin_mm`, without bone that the field of view cuts (ribs). Without lungs it falls
back to the whole body with `found=False`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cc3d
import numpy as np
from scipy import ndimage
from skimage.morphology import convex_hull_image

from LesionDetectLib.io.volume import Volume

SLICE_MM, IN_PLANE_MM = 2.5, 2.5  # coarse grid spacing
AIR_HU = -400.0  # below: air or lung
PADDING_HU = -1500.0  # below: outside the reconstruction circle
PURE_AIR_MEDIAN_HU = -950.0  # a component with a lower median is air (outside, trachea, bowel), not lung
MIN_LUNG_ML = 20.0
LUNG_SLAB_MM = 6.0  # lungs of slices this close count for a slice's hull
BONE_HU = 150.0
MIN_SPINE_AREA_MM2 = 100.0  # a vertebral body cut by a small field of view can show little
SPINE_COLUMN_MM = 25.0
SPINE_SEARCH_MM = 10.0  # the vertebral body lies within this distance of the lungs' hull
SPINE_SIDE_MARGIN_MM = 10.0
SPINE_FRONT_MARGIN_MM = 4.0  # the band starts this far in front of the coarse grid's vertebral front
SPINE_CENTRAL_MM = 10.0  # the vertebral front is read this close to the body's centre column
VERTEBRAL_DEPTH_MM = 35.0  # the vertebral width is read this far behind its front
MIN_REGION_ML = 30.0
MIN_LUNG_FRACTION = 0.25  # slices with a smaller share of the largest slice's lungs: above or below the heart
OPENING_MM = 4.0  # in-plane opening radius: lung vessels and slivers thinner than twice this are shed
SLICE_ONLY = np.zeros((3, 3, 3), dtype=bool)  # in-plane 4-connectivity for 3D calls that act slice by slice
SLICE_ONLY[1] = ndimage.generate_binary_structure(2, 1)


@dataclass
class HeartRegion:
    """A (k, j, i) mask around the heart, its centre in RAS mm, and how it was found."""

    mask: np.ndarray
    center_ras: np.ndarray
    found: bool
    note: str


@dataclass
class _Frame:
    """The array axes in canonical order (slice, anterior→posterior, lateral), and whether to flip the second."""

    order: tuple[int, int, int]
    flip_ap: bool

    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        canonical = array.transpose(self.order)
        return canonical[:, ::-1] if self.flip_ap else canonical

    def from_canonical(self, canonical: np.ndarray) -> np.ndarray:
        array = canonical[:, ::-1] if self.flip_ap else canonical
        return array.transpose(np.argsort(self.order))

    def point_from_canonical(self, point: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
        point = np.array(point, dtype=float)
        if self.flip_ap:
            point[1] = shape[1] - 1 - point[1]
        return point[np.argsort(self.order)]


def find_heart_region(volume: Volume, margin_mm: float = 10.0) -> HeartRegion:
    """The mediastinum (heart, epicardial fat, aortic root) dilated by `margin_mm`; whole body if no lungs."""
    frame = axial_frame(volume.ijk_to_ras)
    factors = _grid_factors(volume.spacing[::-1], frame, volume.array.shape)
    hu = frame.to_canonical(_block_mean(np.asarray(volume.array), factors))
    spacing = (volume.spacing[::-1] * factors)[list(frame.order)]
    measured = hu >= PADDING_HU
    lungs = _lungs(hu, measured, spacing)
    found, note = False, "no lungs found"
    if lungs.any():
        hull = _lung_hull(lungs, spacing)
        band, note = _spine_band(hu, hull, spacing)
        region = _mediastinum(hu, measured, lungs, hull, band, spacing)
        found = region.sum() * np.prod(spacing) / 1000.0 >= MIN_REGION_ML
        if not found:
            note = "the space between the lungs is too small for a heart" + (f"; {note}" if note else "")
    if found:
        center = np.argwhere(region).mean(axis=0)
        region = _dilate(region, spacing, margin_mm) & measured & ~band & ~_cut_bone(hu, measured)
        note = "mediastinum between the lungs, in front of the spine" + (f"; {note}" if note else "")
    else:
        region = _body(hu, measured)
        center = np.argwhere(region).mean(axis=0) if region.any() else (np.array(hu.shape) - 1) / 2
        note = f"{note}: the region falls back to the whole body"
    mask = _upsample(frame.from_canonical(region), factors, volume.array.shape)
    center_kji = (frame.point_from_canonical(center, hu.shape) + 0.5) * factors - 0.5
    return HeartRegion(mask, volume.ijk_to_ras_points(center_kji[::-1][None])[0], bool(found), note)


def axial_frame(ijk_to_ras: np.ndarray) -> _Frame:
    """Which array axis runs along the body (slices), which front to back, and which side to side."""
    directions = ijk_to_ras[:3, :3] / np.linalg.norm(ijk_to_ras[:3, :3], axis=0)
    by_array_axis = np.abs(directions[:, ::-1])  # columns in (k, j, i) order
    slice_axis = int(np.argmax(by_array_axis[2]))
    rest = [axis for axis in range(3) if axis != slice_axis]
    ap_axis = max(rest, key=lambda axis: by_array_axis[1, axis])
    lateral_axis = next(axis for axis in rest if axis != ap_axis)
    anterior_increasing = directions[1, 2 - ap_axis] > 0
    return _Frame((slice_axis, ap_axis, lateral_axis), bool(anterior_increasing))


def _grid_factors(spacing_kji: np.ndarray, frame: _Frame, shape_kji) -> np.ndarray:
    """Integer block sizes per array axis that bring the grid near SLICE_MM × IN_PLANE_MM²."""
    target = np.full(3, IN_PLANE_MM)
    target[frame.order[0]] = SLICE_MM
    factors = np.maximum(1, np.rint(target / spacing_kji)).astype(int)
    return np.minimum(factors, shape_kji)


def _block_mean(array: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """float32 mean over non-overlapping blocks (the remainder at each far edge is dropped).

    Sums of strided views, axis by axis: numpy reduces short axes far slower than it adds whole arrays.
    """
    counts = np.array(array.shape) // factors
    total = array[tuple(slice(0, n * f) for n, f in zip(counts, factors))]
    total = total.astype(np.int32 if np.issubdtype(array.dtype, np.integer) else np.float64, copy=False)
    for axis, factor in enumerate(factors):
        views = (total[(slice(None),) * axis + (slice(offset, None, factor),)] for offset in range(factor))
        total = sum(views)
    return (total / np.prod(factors)).astype(np.float32)


def _upsample(mask: np.ndarray, factors: np.ndarray, shape) -> np.ndarray:
    """Nearest-block upsampling of a coarse mask back to the full grid (the last block also covers the remainder)."""
    for axis, (factor, size) in enumerate(zip(factors, shape)):
        repeats = np.full(mask.shape[axis], factor)
        repeats[-1] += size - factor * mask.shape[axis]
        mask = np.repeat(mask, repeats, axis=axis)
    return mask


def _lungs(hu: np.ndarray, measured: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Air components of at least MIN_LUNG_ML whose median density is parenchyma rather than pure air."""
    labels = cc3d.connected_components((hu < AIR_HU) & measured, connectivity=6)
    counts = np.bincount(labels.ravel())
    pure_air = np.bincount(labels[hu < PURE_AIR_MEDIAN_HU], minlength=counts.size)
    lung = (counts * np.prod(spacing) / 1000.0 >= MIN_LUNG_ML) & (2 * pure_air <= counts)
    lung[0] = False
    return lung[labels]


def _lung_hull(lungs: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Per slice, the convex hull of the lungs of the slices within LUNG_SLAB_MM."""
    reach = int(round(LUNG_SLAB_MM / spacing[0]))
    slab = ndimage.maximum_filter1d(lungs, size=2 * reach + 1, axis=0) if reach else lungs
    return np.stack([convex_hull_image(plane) if plane.any() else plane for plane in slab])


def _mediastinum(hu, measured, lungs, hull, band, spacing) -> np.ndarray:
    """Non-air voxels in the lungs' hull and outside the spine band, opened to shed lung vessels and chest
    wall slivers: the largest component, holes filled (air in the trachea or oesophagus), lungs left out."""
    region = hull & (hu >= AIR_HU) & measured & ~band & _thoracic_slices(lungs)[:, None, None]
    region = _open_in_plane(_between_lungs(region, lungs), OPENING_MM / spacing[1:])
    if not region.any():
        return region
    region = cc3d.largest_k(region, k=1, connectivity=6) > 0
    return _fill_holes_in_plane(region) & ~lungs


def _between_lungs(region: np.ndarray, lungs: np.ndarray) -> np.ndarray:
    """The voxels of `region` with lung on both sides along their row (not the chest wall outside the lungs)."""
    left = np.maximum.accumulate(lungs, axis=2)
    right = np.maximum.accumulate(lungs[:, :, ::-1], axis=2)[:, :, ::-1]
    return region & left & right


def _thoracic_slices(lungs: np.ndarray) -> np.ndarray:
    """bool per slice: lungs at least MIN_LUNG_FRACTION of the largest slice's (a chest CT's belly and neck drop)."""
    area = lungs.sum(axis=(1, 2))
    return area >= MIN_LUNG_FRACTION * area.max()


def _open_in_plane(mask: np.ndarray, radius_px: np.ndarray) -> np.ndarray:
    """In-plane opening with a (2r+1)-pixel square, as separable minimum and maximum filters."""
    size = (1, *(2 * np.floor(radius_px).astype(int) + 1))
    opened = ndimage.maximum_filter(ndimage.minimum_filter(mask.view(np.uint8), size=size), size=size)
    return opened.astype(bool)


def _fill_holes_in_plane(mask: np.ndarray) -> np.ndarray:
    """Slice by slice, the mask plus the background pieces that do not reach the slice's border."""
    background, count = ndimage.label(~mask, structure=SLICE_ONLY)
    edges = (background[:, 0], background[:, -1], background[:, :, 0], background[:, :, -1])
    keep = np.ones(count + 1, dtype=bool)
    keep[np.concatenate([edge.ravel() for edge in edges])] = False
    keep[0] = True
    return keep[background]


def _spine_band(hu: np.ndarray, hull: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, str]:
    """The vertebral body and everything behind its anterior edge, across its width plus a margin; with a note."""
    fronts = _vertebral_fronts(hu, hull, spacing)
    band = np.zeros(hu.shape, dtype=bool)
    if fronts is None:
        return band, "no vertebral body found: nothing behind the heart is excluded"
    front, left, right = fronts
    margin = SPINE_SIDE_MARGIN_MM / spacing[2]
    rows = np.arange(hu.shape[1])[None, :, None] >= (front - SPINE_FRONT_MARGIN_MM / spacing[1])[:, None, None]
    columns = np.arange(hu.shape[2])[None, None, :]
    band[:] = rows & (columns >= (left - margin)[:, None, None]) & (columns <= (right + margin)[:, None, None])
    return band, ""


def _vertebral_fronts(hu, hull, spacing) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Per slice: the vertebral body's anterior row and lateral extent; interpolated between slices, median-filtered.

    The front is read within SPINE_CENTRAL_MM of the body's centre column and the width within
    VERTEBRAL_DEPTH_MM behind the front, so a rib or a calcified aorta touching the vertebra moves neither
    far. None when no slice has a vertebral body.
    """
    labels, chosen, planes = _vertebral_bodies(hu, hull, spacing)
    if chosen.size == 0:
        return None
    position = np.full(labels.max() + 1, -1)
    position[chosen] = np.arange(chosen.size)
    owners = position[labels]
    _, rows, cols = np.nonzero(owners >= 0)
    owner = owners[owners >= 0]
    center = np.bincount(owner, cols, chosen.size) / np.bincount(owner, None, chosen.size)
    central = np.abs(cols - center[owner]) <= SPINE_CENTRAL_MM / spacing[2]
    front = np.full(chosen.size, np.inf)
    np.minimum.at(front, owner[central], rows[central])
    body = rows <= front[owner] + VERTEBRAL_DEPTH_MM / spacing[1]
    left, right = np.full(chosen.size, np.inf), np.full(chosen.size, -np.inf)
    np.minimum.at(left, owner[body], cols[body])
    np.maximum.at(right, owner[body], cols[body])
    every = np.arange(hu.shape[0])
    return tuple(
        ndimage.median_filter(np.interp(every, planes, values), size=3, mode="nearest")
        for values in (front, left, right)
    )


def _vertebral_bodies(hu, hull, spacing) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-slice bone components (holes filled), the labels chosen as vertebral bodies and their slices.

    Eligible: bone cross-sections of at least MIN_SPINE_AREA_MM2 near the lungs' hull and behind its centre.
    The spine keeps its column from slice to slice while ribs wander: the column is the median of each
    slice's largest eligible section, and each slice's vertebral body is its largest eligible section
    within SPINE_COLUMN_MM of it.
    """
    labels, count = ndimage.label(_fill_holes_in_plane(hu >= BONE_HU), structure=SLICE_ONLY)
    none = np.zeros(0, dtype=int)
    if count == 0:
        return labels, none, none
    boxes = np.array([[(s.start, s.stop) for s in box] for box in ndimage.find_objects(labels)])  # (n, 3, 2)
    plane, row_center, col_center = boxes[:, 0, 0], boxes[:, 1].mean(axis=1) - 0.5, boxes[:, 2].mean(axis=1) - 0.5
    pixels = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    reach = (1, *(2 * np.round(SPINE_SEARCH_MM / spacing[1:]).astype(int) + 1))
    near = ndimage.maximum_filter(hull.view(np.uint8), size=reach).astype(bool)
    touches = np.bincount(labels[near], minlength=count + 1)[1:] > 0
    hull_area = hull.sum(axis=(1, 2))
    hull_rows = hull.sum(axis=2) @ np.arange(hu.shape[1])
    hull_center = np.where(hull_area > 0, hull_rows / np.maximum(hull_area, 1), np.inf)
    area = pixels * spacing[1] * spacing[2]
    eligible = np.flatnonzero((area >= MIN_SPINE_AREA_MM2) & touches & (row_center > hull_center[plane]))
    if eligible.size == 0:
        return labels, none, none
    column = np.quantile(col_center[_largest_per_slice(plane[eligible], area[eligible], eligible)], 0.5, method="lower")
    eligible = eligible[np.abs(col_center[eligible] - column) <= SPINE_COLUMN_MM / spacing[2]]
    chosen = _largest_per_slice(plane[eligible], area[eligible], eligible)
    return labels, chosen + 1, plane[chosen]


def _largest_per_slice(plane: np.ndarray, area: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Indices of the largest component in each slice that has one."""
    order = np.lexsort((area, plane))
    last = np.r_[plane[order][1:] != plane[order][:-1], True]
    return index[order][last]


def _cut_bone(hu: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Bone that the field of view cuts (ribs, spine; pacemaker leads), grown by one voxel.

    Calcium on or in the heart never reaches the side of a heart-centred field of view; ribs always do.
    """
    bone = (hu >= BONE_HU) & measured
    labels = cc3d.connected_components(bone, connectivity=26)
    outside = ~measured
    outside[:, [0, -1], :] = True
    outside[:, :, [0, -1]] = True
    edge = ndimage.maximum_filter(outside.view(np.uint8), size=(1, 3, 3)).astype(bool)
    cut = np.zeros(labels.max() + 1, dtype=bool)
    cut[labels[edge & bone]] = True
    cut[0] = False
    return ndimage.maximum_filter(cut[labels].view(np.uint8), size=3).astype(bool)


def _dilate(region: np.ndarray, spacing: np.ndarray, margin_mm: float) -> np.ndarray:
    """Voxels within `margin_mm` of the region (Euclidean, in mm)."""
    if margin_mm <= 0:
        return region
    return ndimage.distance_transform_edt(~region, sampling=spacing) <= margin_mm


def _body(hu: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """The largest non-air component, holes filled slice by slice."""
    tissue = (hu >= AIR_HU) & measured
    if not tissue.any():
        return tissue
    body = cc3d.largest_k(tissue, k=1, connectivity=6) > 0
    return _fill_holes_in_plane(body)

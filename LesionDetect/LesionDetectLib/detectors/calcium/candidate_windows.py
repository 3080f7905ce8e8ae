"""Candidate windows that cannot lose a lesion: one crop around every ≥ 130 HU piece of ≥ 1 mm² on a slice.

Every piece the Agatston rules could score (≥ 130 HU, ≥ 1 mm², 8-connected on its axial slice) of a
candidate component (`candidates.find_candidates`: bone set aside) inside the region gets a window.
Pieces closer than GROUP_MM share one; a window's side is twice its group's extent plus CONTEXT_MM,
clamped to WINDOW_MM; a group too large for the largest window is tiled with largest windows whose
central halves cover it. All sizes are in millimetres, so a scan at 0.3 mm
and one at 1 mm pixels get the same windows on the patient. ACF (`acf.py`) groups its high-scoring
blocks into windows with the same rules (`group_windows`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from LesionDetectLib.detectors.calcium.crops import Window

MIN_PIECE_MM2 = 1.0
WINDOW_MM = (8.0, 40.0)
CONTEXT_MM = 4.0  # added to twice a group's extent
GROUP_MM = 2.0  # pieces closer than this share a window
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def component_windows(components, region_kji: np.ndarray, spacing_mm) -> list[Window]:
    """The deep path's windows (inference and training alike): the pieces of the candidate components in the region."""
    return piece_windows(components.kept_mask() & region_kji, float(np.mean(spacing_mm[:2])))


def piece_windows(calcium_kji: np.ndarray, pixel_mm: float, min_area_mm2: float = MIN_PIECE_MM2) -> list[Window]:
    """Windows covering every piece of ≥ `min_area_mm2` of `calcium_kji` (bool: candidate calcium voxels)."""
    limits_px = np.asarray(WINDOW_MM) / pixel_mm
    reach = _disk(GROUP_MM / 2 / pixel_mm)
    windows = []
    for k in np.flatnonzero(calcium_kji.any(axis=(1, 2))):
        rows, cols = ndimage.find_objects(calcium_kji[k].astype(np.uint8))[0]
        pieces = large_pieces(calcium_kji[k, rows, cols], pixel_mm, min_area_mm2)
        if not pieces.any():
            continue
        groups, count = ndimage.label(ndimage.binary_dilation(pieces, reach), structure=EIGHT_CONNECTED)
        groups[~pieces] = 0
        offset = np.array([rows.start, cols.start], dtype=float)
        for center, side, _, _ in group_windows(groups, count, 1, limits_px, CONTEXT_MM / pixel_mm):
            windows.append(Window(int(k), tuple(float(c) for c in np.add(center, offset)), float(side)))
    return windows


def large_pieces(mask: np.ndarray, pixel_mm: float, min_area_mm2: float = MIN_PIECE_MM2) -> np.ndarray:
    """bool: the 8-connected pieces of a slice mask whose area is at least `min_area_mm2`."""
    pieces, count = ndimage.label(mask, structure=EIGHT_CONNECTED)
    if count == 0:
        return mask.copy()
    large = np.bincount(pieces.ravel(), minlength=count + 1) * pixel_mm**2 >= min_area_mm2 - 1e-9
    large[0] = False
    return large[pieces]


def group_windows(groups: np.ndarray, count: int, shrink: int, limits_px, context_px: float):
    """(centre (j, i), side, label, core slices) per window of a slice's labelled groups, in slice pixels.

    `groups` labels cells of `shrink` pixels; `core` is the part of `groups` a window stands for (the
    whole group, or one tile's central half).
    """
    objects = ndimage.find_objects(groups, count)
    present = [label for label, found in enumerate(objects, start=1) if found is not None]
    if not present:
        return []
    boxes = np.array([[(s.start, s.stop) for s in objects[label - 1]] for label in present]) * shrink  # (n, 2, 2)
    extents = (boxes[:, :, 1] - boxes[:, :, 0]).max(axis=1)
    windows = []
    for label, box, extent in zip(present, boxes, extents):
        if 2 * extent + context_px <= limits_px[1]:
            side = float(np.clip(2 * extent + context_px, *limits_px))
            windows.append((box.mean(axis=1), side, label, objects[label - 1]))
        else:
            windows += _tiles(groups, label, box, shrink, float(limits_px[1]))
    return windows


def _tiles(groups: np.ndarray, label: int, box: np.ndarray, shrink: int, side_px: float):
    """Largest windows whose central halves tile a large group's box; only tiles over the group."""
    extent = box[:, 1] - box[:, 0]
    counts = np.ceil(extent / (side_px / 2)).astype(int)
    tiles = []
    for tile in np.ndindex(*counts):
        low = box[:, 0] + extent * np.array(tile) / counts
        high = box[:, 0] + extent * (np.array(tile) + 1) / counts
        core = tuple(slice(int(a // shrink), int(np.ceil(b / shrink))) for a, b in zip(low, high))
        if (groups[core] == label).any():
            tiles.append(((low + high) / 2, side_px, label, core))
    return tiles


def _disk(radius_px: float) -> np.ndarray:
    reach = int(np.ceil(radius_px))
    j, i = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    return j**2 + i**2 <= max(radius_px, 1.0) ** 2

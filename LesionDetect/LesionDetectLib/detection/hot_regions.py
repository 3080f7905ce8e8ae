"""Boxes around the connected hot regions of a heatmap (2D or 3D), hottest first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class HotRegion:
    box: np.ndarray  # (2, ndim) inclusive index box in the heatmap's array order
    peak: tuple[int, ...]  # index of its hottest voxel
    peak_heat: float


def hot_regions(heatmap: np.ndarray, fraction: float, min_voxels: int) -> list[HotRegion]:
    """Connected regions (face neighbours) of at least `min_voxels` at or above `fraction` of the hottest value,
    hottest first."""
    from scipy import ndimage

    top = float(heatmap.max())
    if top <= 0:
        return []
    labelled, _ = ndimage.label(heatmap >= fraction * top)
    regions = []
    for index, found in enumerate(ndimage.find_objects(labelled), start=1):
        inside = labelled[found] == index
        if inside.sum() < min_voxels:
            continue
        values = np.where(inside, heatmap[found], -np.inf)
        local = np.unravel_index(int(values.argmax()), values.shape)
        peak = tuple(int(s.start + n) for s, n in zip(found, local))
        box = np.array([[s.start for s in found], [s.stop - 1 for s in found]])
        regions.append(HotRegion(box, peak, float(heatmap[peak])))
    return sorted(regions, key=lambda region: -region.peak_heat)

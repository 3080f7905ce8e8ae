"""Candidate windows → the network's input: square 2.5D crops resized to one scale (the paper's D^i).

One crop per window: the window's slice and its neighbours ≈1.5 mm above and below (HU window
−300…1700 scaled to 0…1), plus two channels giving each pixel's position relative to the heart
region's centre in heart radii (where on the heart a plaque lies tells its artery). Training and
inference both build crops here, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

CROP_PX = 64
IN_CHANNELS = 5
HU_LOW, HU_HIGH = -300.0, 1700.0
NEIGHBOUR_MM = 1.5


@dataclass(frozen=True)
class Window:
    """A square window on axial slice `k`: centre (row j, column i) and side, in pixels."""

    k: int
    center_ji: tuple[float, float]
    side_px: float

    def box_ji(self) -> np.ndarray:
        """(j0, i0, j1, i1) of the window in slice pixels."""
        half = self.side_px / 2
        return np.array(
            [self.center_ji[0] - half, self.center_ji[1] - half, self.center_ji[0] + half, self.center_ji[1] + half]
        )


@dataclass(frozen=True)
class HeartFrame:
    """Heart-region centre (row, column) and radius, in slice pixels, for the position channels."""

    center_ji: tuple[float, float]
    radius_px: float


def neighbour_offset(slice_spacing_mm: float) -> int:
    """Slices between a crop's centre slice and its neighbour channels (≈1.5 mm, at least 1)."""
    return max(1, round(NEIGHBOUR_MM / slice_spacing_mm))


def make_crops(hu_kji: np.ndarray, windows: list[Window], slice_spacing_mm: float, heart: HeartFrame) -> torch.Tensor:
    """(N, 5, 64, 64) float32 crops for `windows`, bilinear resampling, air outside the volume."""
    crops = torch.empty((len(windows), IN_CHANNELS, CROP_PX, CROP_PX), dtype=torch.float32)
    offset = neighbour_offset(slice_spacing_mm)
    last = hu_kji.shape[0] - 1
    by_slice: dict[int, list[int]] = {}
    for index, window in enumerate(windows):
        by_slice.setdefault(window.k, []).append(index)
    for k, indices in by_slice.items():
        slab = hu_kji[[max(k - offset, 0), k, min(k + offset, last)]].astype(np.float32)
        image = torch.from_numpy((np.clip(slab, HU_LOW, HU_HIGH) - HU_LOW) / (HU_HIGH - HU_LOW))[None]
        rows, cols = _sample_positions([windows[n] for n in indices])
        grid = torch.stack([_normalise(cols, image.shape[-1]), _normalise(rows, image.shape[-2])], dim=-1)
        sampled = F.grid_sample(
            image.expand(len(indices), -1, -1, -1), grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        crops[indices, :3] = sampled
        crops[indices, 3] = (rows - heart.center_ji[0]) / heart.radius_px
        crops[indices, 4] = (cols - heart.center_ji[1]) / heart.radius_px
    return crops


def to_crop_pixels(boxes_ji: np.ndarray, window: Window) -> np.ndarray:
    """Slice-pixel boxes (j0, i0, j1, i1) → the window's crop pixels (0…64)."""
    scale = CROP_PX / window.side_px
    origin = window.box_ji()[:2]
    return (np.asarray(boxes_ji, dtype=float) - np.tile(origin, 2)) * scale


def to_slice_pixels(boxes_crop: np.ndarray, window: Window) -> np.ndarray:
    """The window's crop-pixel boxes → slice pixels (j0, i0, j1, i1)."""
    scale = window.side_px / CROP_PX
    origin = window.box_ji()[:2]
    return np.asarray(boxes_crop, dtype=float) * scale + np.tile(origin, 2)


def _sample_positions(windows: list[Window]) -> tuple[torch.Tensor, torch.Tensor]:
    """Slice-pixel row and column of every crop pixel centre, (N, 64, 64) each."""
    steps = (torch.arange(CROP_PX, dtype=torch.float32) + 0.5) / CROP_PX - 0.5
    centers = torch.tensor([w.center_ji for w in windows], dtype=torch.float32)
    sides = torch.tensor([w.side_px for w in windows], dtype=torch.float32)
    rows = centers[:, 0, None, None] + sides[:, None, None] * steps[None, :, None] - 0.5
    cols = centers[:, 1, None, None] + sides[:, None, None] * steps[None, None, :] - 0.5
    return rows.expand(-1, CROP_PX, CROP_PX), cols.expand(-1, CROP_PX, CROP_PX)


def _normalise(pixel_centres: torch.Tensor, size: int) -> torch.Tensor:
    """Pixel-centre coordinates (pixel n spans n…n+1, centre n+0.5 ↔ index n) → grid_sample's −1…1."""
    return (pixel_centres + 0.5) * 2.0 / size - 1.0


def heart_frame(region_kji: np.ndarray) -> HeartFrame:
    """Centre and radius (pixels) of a heart-region mask, seen from above (all slices together)."""
    seen_from_above = region_kji.any(axis=0)
    rows, cols = np.nonzero(seen_from_above)
    if rows.size == 0:
        height, width = seen_from_above.shape
        return HeartFrame(((height - 1) / 2, (width - 1) / 2), max(height, width) / 2)
    largest_area = max(int(np.count_nonzero(region_slice)) for region_slice in region_kji)
    return HeartFrame((float(rows.mean()), float(cols.mean())), float(np.sqrt(largest_area / np.pi)))

"""Aggregate channel features (Dollár's ACF) adapted to non-contrast CT, per axial slice.

Per pixel: occupancy of HU bands (calcium grades, fat, soft tissue, air/lung), mean HU in a window,
gradient magnitude and six magnitude-weighted gradient orientations. Channels are summed over
non-overlapping `shrink`×`shrink` pixel blocks (stored as block means). A block's feature vector is
its 5×5 block neighbourhood of channels plus a 3×3 grid of 5×5-block context cells around it (≈ 3× the
local reach), so the classifier sees the fat, lung or bone around a bright spot. Only blocks holding
a pixel ≥ 130 HU (inside the region when one is given) can hold calcium: only they get features.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

CALCIUM_HU = 130.0
DEFAULT_SHRINK = 4
HU_BANDS = ((130.0, 300.0), (300.0, 800.0), (800.0, np.inf), (-250.0, -30.0), (-30.0, 130.0), (-np.inf, -400.0))
MEAN_WINDOW = (-200.0, 1000.0)  # HU clipped before the mean channel (then / 1000)
GRADIENT_WINDOW = (-250.0, 1000.0)  # HU clipped before gradients: lung edges do not outshine calcium edges
GRADIENT_SCALE = 100.0  # gradient channels in units of 100 HU/mm
ORIENTATIONS = 6
CHANNELS = len(HU_BANDS) + 2 + ORIENTATIONS
LOCAL_RADIUS = 2  # 5×5 blocks
CONTEXT_CELL = 5  # blocks per context cell side (odd, so a cell is centred)
CONTEXT_RADIUS = 1  # 3×3 cells
REACH = max(LOCAL_RADIUS, CONTEXT_RADIUS * CONTEXT_CELL + CONTEXT_CELL // 2)  # farthest block a feature reads


def _offsets(radius: int, step: int) -> np.ndarray:
    steps = np.arange(-radius, radius + 1) * step
    return np.stack(np.meshgrid(steps, steps, indexing="ij"), axis=-1).reshape(-1, 2)


LOCAL_OFFSETS = _offsets(LOCAL_RADIUS, 1)
CONTEXT_OFFSETS = _offsets(CONTEXT_RADIUS, CONTEXT_CELL)
N_FEATURES = CHANNELS * (len(LOCAL_OFFSETS) + len(CONTEXT_OFFSETS))


def pixel_channels(slice_hu: np.ndarray, pixel_mm: float) -> np.ndarray:
    """(CHANNELS, H, W) float32: HU-band occupancy, clipped mean HU, gradient magnitude, oriented gradients."""
    hu = np.asarray(slice_hu, dtype=np.float32)
    bands = [(hu >= low) & (hu < high) for low, high in HU_BANDS]
    clipped = np.clip(hu, *GRADIENT_WINDOW)
    rows, cols = ndimage.sobel(clipped, axis=0), ndimage.sobel(clipped, axis=1)
    magnitude = np.hypot(rows, cols) / (8.0 * pixel_mm * GRADIENT_SCALE)  # Sobel weights sum to 8 per pixel step
    angle = np.mod(np.arctan2(rows, cols), np.pi)  # unsigned orientation in [0, π)
    orientation = np.minimum((angle * (ORIENTATIONS / np.pi)).astype(np.int8), ORIENTATIONS - 1)
    oriented = [np.where(orientation == o, magnitude, 0.0) for o in range(ORIENTATIONS)]
    mean = np.clip(hu, *MEAN_WINDOW) / 1000.0
    return np.stack([*bands, mean, magnitude, *oriented]).astype(np.float32, copy=False)


def aggregate(channels: np.ndarray, shrink: int) -> np.ndarray:
    """(C, H // shrink, W // shrink) sums over non-overlapping shrink×shrink blocks (far-edge remainders dropped).

    Sums of strided views: numpy reduces a short last axis far slower than it adds whole arrays.
    """
    rows, cols = channels.shape[1] // shrink, channels.shape[2] // shrink
    cropped = channels[:, : rows * shrink, : cols * shrink]
    across = sum(cropped[:, :, offset::shrink] for offset in range(shrink))
    return sum(across[:, offset::shrink] for offset in range(shrink)).astype(np.float32, copy=False)


def scored_blocks(slice_hu: np.ndarray, region: np.ndarray | None, shrink: int) -> np.ndarray:
    """(H // shrink, W // shrink) bool: blocks with at least one pixel ≥ CALCIUM_HU (inside the region)."""
    bright = np.asarray(slice_hu) >= CALCIUM_HU
    if region is not None:
        bright &= np.asarray(region, dtype=bool)
    rows, cols = bright.shape[0] // shrink, bright.shape[1] // shrink
    return bright[: rows * shrink, : cols * shrink].reshape(rows, shrink, cols, shrink).any(axis=(1, 3))


def block_features(
    slice_hu: np.ndarray, pixel_mm: float, region: np.ndarray | None = None, shrink: int = DEFAULT_SHRINK
) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, N_FEATURES) float32 of the scored blocks and their (row, col) block indices (N, 2).

    Channels are computed on the scored blocks' bounding box plus the features' reach (and one block
    for the gradients' border), which gives the same features as the whole slice.
    """
    blocks = np.argwhere(scored_blocks(slice_hu, region, shrink))
    if blocks.size == 0:
        return np.zeros((0, N_FEATURES), dtype=np.float32), blocks
    grid = np.array(slice_hu.shape) // shrink
    low = np.maximum(blocks.min(axis=0) - REACH - 1, 0)
    high = np.minimum(blocks.max(axis=0) + REACH + 2, grid)
    crop = slice_hu[low[0] * shrink : high[0] * shrink, low[1] * shrink : high[1] * shrink]
    means = aggregate(pixel_channels(crop, pixel_mm), shrink) / shrink**2
    return window_features(means, blocks - low), blocks


def window_features(means: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """(N, N_FEATURES): each block's local 5×5 neighbourhood of channel means, then its 3×3 context cells.

    Outside the map every channel is 0.
    """
    padded = np.pad(means, ((0, 0), (REACH, REACH), (REACH, REACH)))
    context = ndimage.uniform_filter(padded, size=(1, CONTEXT_CELL, CONTEXT_CELL), mode="constant")
    rows, cols = blocks[:, :1] + REACH, blocks[:, 1:] + REACH
    local = padded[:, rows + LOCAL_OFFSETS[:, 0], cols + LOCAL_OFFSETS[:, 1]]  # (C, N, 25)
    around = context[:, rows + CONTEXT_OFFSETS[:, 0], cols + CONTEXT_OFFSETS[:, 1]]  # (C, N, 9)
    count = len(blocks)
    return np.concatenate(
        [local.transpose(1, 2, 0).reshape(count, -1), around.transpose(1, 2, 0).reshape(count, -1)], axis=1
    )

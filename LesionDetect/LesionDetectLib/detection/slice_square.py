"""A square of fixed size in mm cut from every slice, for slice networks that see heads at one scale.

Every slice is cut to the same square (rows j0…j0+side, columns i0…i0+side, in slice pixels), centred on what
the detector sees from above, padded with a fill value where it reaches past the slice, and resized to the
network's side; `to_slice_pixels` and `square_box_to_slice` take maps and boxes back onto the slice pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class SliceSquare:
    """The square (rows j0…j0+side_px, columns i0…i0+side_px, in slice pixels) every slice is cut to."""

    j0: float
    i0: float
    side_px: float

    def box_to_slice(self, box_rc, network_side: int) -> np.ndarray:
        """(row0, col0, row1, col1) in pixels of the network's square → (j0, i0, j1, i1) in slice pixels."""
        scale = self.side_px / network_side
        row0, col0, row1, col1 = (float(v) * scale for v in box_rc)
        j0, i0 = round(self.j0), round(self.i0)
        return np.array([j0 + row0, i0 + col0, j0 + row1, i0 + col1])


def square_around(seen_ji: np.ndarray, pixel_mm: float, side_mm: float) -> SliceSquare:
    """The side_mm square centred on the extent of `seen_ji` (a 2D mask; the slice centre where it is empty)."""
    rows, cols = np.nonzero(seen_ji)
    if rows.size:
        centre = ((rows.min() + rows.max() + 1) / 2, (cols.min() + cols.max() + 1) / 2)
    else:
        centre = (seen_ji.shape[0] / 2, seen_ji.shape[1] / 2)
    side = side_mm / pixel_mm
    return SliceSquare(centre[0] - side / 2, centre[1] - side / 2, side)


def cut_square(array_kji: np.ndarray, square: SliceSquare, fill: float) -> np.ndarray:
    """(slices, side, side): every slice cut to the square, `fill` where the square reaches past the slice."""
    array_kji = np.asarray(array_kji)
    side = int(round(square.side_px))
    j0, i0 = int(round(square.j0)), int(round(square.i0))
    height, width = array_kji.shape[-2:]
    before_j, before_i = max(-j0, 0), max(-i0, 0)
    pad = ((0, 0), (before_j, max(j0 + side - height, 0)), (before_i, max(i0 + side - width, 0)))
    padded = np.pad(array_kji, pad, constant_values=fill) if any(map(any, pad)) else array_kji
    return padded[:, j0 + before_j : j0 + before_j + side, i0 + before_i : i0 + before_i + side]


def resized(channels: np.ndarray, size: int) -> torch.Tensor:
    """(slices, channels, side, side) → float32 tensor (slices, channels, size, size), area-averaged."""
    channels = torch.from_numpy(np.ascontiguousarray(channels, dtype=np.float32))
    return F.interpolate(channels, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def to_slice_pixels(maps: torch.Tensor, square: SliceSquare, shape_ji: tuple[int, int]) -> np.ndarray:
    """Maps (slices, size, size) on the square → (slices, rows, cols) on the slice pixels (0 outside)."""
    side = int(round(square.side_px))
    j0, i0 = int(round(square.j0)), int(round(square.i0))
    resampled = F.interpolate(maps[:, None].float(), size=(side, side), mode="bilinear", align_corners=False)[:, 0]
    out = np.zeros((maps.shape[0], *shape_ji), dtype=np.float32)
    rows = slice(max(j0, 0), min(j0 + side, shape_ji[0]))
    cols = slice(max(i0, 0), min(i0 + side, shape_ji[1]))
    out[:, rows, cols] = resampled[:, rows.start - j0 : rows.stop - j0, cols.start - i0 : cols.stop - i0].numpy()
    return out

"""A head CT as the network's input: three HU windows on a square of fixed size in mm around the head.

Every slice is cut to the same INPUT_FOV_MM square, centred on the head (all slices together), and resized
to the model's input side, so heads look the same size at any pixel size or field of view. `HeadFrame`
keeps the square, so heatmaps go back exactly onto the slice pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from LesionDetectLib.detectors.hemorrhage.anatomy import HEAD_HU
from LesionDetectLib.detectors.hemorrhage.windows import AIR_HU, window_channels

INPUT_FOV_MM = 240.0


@dataclass(frozen=True)
class HeadFrame:
    """The square (rows j0…j0+side, columns i0…i0+side, in slice pixels) every slice is cut to."""

    j0: float
    i0: float
    side_px: float


def head_frame(hu_kji: np.ndarray, pixel_mm: float) -> HeadFrame:
    """The INPUT_FOV_MM square centred on the head's extent seen from above (the slice centre without a head)."""
    seen = (np.asarray(hu_kji) > HEAD_HU).any(axis=0)  # padding (≤ −1500 HU) is below HEAD_HU
    rows, cols = np.nonzero(seen)
    if rows.size:
        centre = ((rows.min() + rows.max() + 1) / 2, (cols.min() + cols.max() + 1) / 2)
    else:
        centre = (seen.shape[0] / 2, seen.shape[1] / 2)
    side = INPUT_FOV_MM / pixel_mm
    return HeadFrame(centre[0] - side / 2, centre[1] - side / 2, side)


def network_input(hu_kji: np.ndarray, frame: HeadFrame, size: int, background_hu: float = AIR_HU) -> torch.Tensor:
    """(slices, 3, size, size) float32: the windows of every slice on the frame's square, area-averaged.

    Where the square reaches past the slice it is filled with `background_hu` (air; 0 HU for key images,
    whose black is the brain window's lower end)."""
    hu_kji = np.asarray(hu_kji)
    side = int(round(frame.side_px))
    j0, i0 = int(round(frame.j0)), int(round(frame.i0))
    height, width = hu_kji.shape[-2:]
    before_j, before_i = max(-j0, 0), max(-i0, 0)
    pad = ((0, 0), (before_j, max(j0 + side - height, 0)), (before_i, max(i0 + side - width, 0)))
    padded = np.pad(hu_kji, pad, constant_values=background_hu) if any(map(any, pad)) else hu_kji
    square = padded[:, j0 + before_j : j0 + before_j + side, i0 + before_i : i0 + before_i + side]
    channels = torch.from_numpy(window_channels(square))
    return F.interpolate(channels, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def to_slice_pixels(maps: torch.Tensor, frame: HeadFrame, shape_ji: tuple[int, int]) -> np.ndarray:
    """Maps (slices, size, size) on the frame's square → (slices, rows, cols) on the slice pixels (0 outside)."""
    side = int(round(frame.side_px))
    j0, i0 = int(round(frame.j0)), int(round(frame.i0))
    square = F.interpolate(maps[:, None].float(), size=(side, side), mode="bilinear", align_corners=False)[:, 0]
    out = np.zeros((maps.shape[0], *shape_ji), dtype=np.float32)
    rows = slice(max(j0, 0), min(j0 + side, shape_ji[0]))
    cols = slice(max(i0, 0), min(i0 + side, shape_ji[1]))
    out[:, rows, cols] = square[:, rows.start - j0 : rows.stop - j0, cols.start - i0 : cols.stop - i0].numpy()
    return out

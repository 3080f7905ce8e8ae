"""A head CT as the network's input: three HU windows on a square of fixed size in mm around the head.

Every slice is cut to the same INPUT_FOV_MM square (`detection.slice_square`), centred on the head (all slices
together), and resized to the model's input side, so heads look the same size at any pixel size or field of view.
"""

from __future__ import annotations

import numpy as np
import torch

from LesionDetectLib.detection.slice_square import SliceSquare, cut_square, resized, square_around
from LesionDetectLib.detectors.hemorrhage.anatomy import HEAD_HU
from LesionDetectLib.detectors.hemorrhage.windows import AIR_HU, window_channels

INPUT_FOV_MM = 240.0


def head_frame(hu_kji: np.ndarray, pixel_mm: float) -> SliceSquare:
    """The INPUT_FOV_MM square centred on the head's extent seen from above (the slice centre without a head)."""
    return square_around((np.asarray(hu_kji) > HEAD_HU).any(axis=0), pixel_mm, INPUT_FOV_MM)  # padding < HEAD_HU


def network_input(hu_kji: np.ndarray, frame: SliceSquare, size: int, background_hu: float = AIR_HU) -> torch.Tensor:
    """(slices, 3, size, size) float32: the windows of every slice on the frame's square, area-averaged.

    Where the square reaches past the slice it is filled with `background_hu` (air; 0 HU for key images,
    whose black is the brain window's lower end)."""
    return resized(window_channels(cut_square(hu_kji, frame, background_hu)), size)

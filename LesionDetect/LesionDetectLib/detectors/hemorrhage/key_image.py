"""Slice mode: an exported key image (PNG/JPEG, already brain-windowed) as the network's input.

Its grey values are read back to HU through the brain window (L 40 / W 80), so the subdural and soft-tissue
channels are approximations that carry no contrast outside 0…80 HU. It has no pixel size either: the head's
longer extent in the image is taken as an adult head's length, ASSUMED_HEAD_LENGTH_MM. Both are said in the
report's warnings.
"""

from __future__ import annotations

import numpy as np

from LesionDetectLib.detectors.hemorrhage.preprocess import head_frame, network_input
from LesionDetectLib.detectors.hemorrhage.windows import AIR_HU, WINDOWS, without_padding
from LesionDetectLib.errors import LesionDetectError

ASSUMED_HEAD_LENGTH_MM = 175.0  # outer table, front to back, of an adult head on a mid-level axial slice
KEY_IMAGE_BACKGROUND_HU = 0.0  # what black reads back as: the brain window's lower end
KEY_IMAGE_BONE_HU = 70.0  # bone saturates the brain window (white); the skull ring closes at grey ≥ 223
HEAD_GREY = 10  # of 255: darker pixels are outside the head (air shown black)
APPROXIMATION_WARNING = (
    "Slice mode: the image is taken as brain-windowed (L 40 / W 80), so the subdural and soft-tissue windows "
    "were approximated from it, and its pixel size was estimated from the head's length ({:.0f} mm assumed: "
    "{:.2f} mm per pixel). Probabilities from the per-slice CNN only; run a CT series for the full method."
)


def brain_window_range() -> tuple[float, float]:
    level, width = WINDOWS["brain"]
    return level - width / 2, level + width / 2


def hu_from_brain_window(grey: np.ndarray) -> np.ndarray:
    """(rows, cols) float32 HU within the brain window from 8-bit grey values (0 → 0 HU, 255 → 80 HU)."""
    low, high = brain_window_range()
    return (low + np.asarray(grey, dtype=np.float32) / 255.0 * (high - low)).astype(np.float32)


def brain_window_only(hu: np.ndarray) -> np.ndarray:
    """HU as a brain-windowed key image keeps them: clipped to 0…80 (training's slice-mode augmentation)."""
    return np.clip(without_padding(hu), *brain_window_range())


def pixel_mm_from_head(grey: np.ndarray) -> float:
    """mm per pixel if the head's longer extent in the image is ASSUMED_HEAD_LENGTH_MM."""
    head = np.asarray(grey) > HEAD_GREY
    if not head.any():
        raise LesionDetectError(
            f"The image shows no head: no pixel is brighter than {HEAD_GREY} of 255. Slice mode needs a brain-windowed "
            "head-CT key image."
        )
    rows, cols = np.nonzero(head.any(axis=1))[0], np.nonzero(head.any(axis=0))[0]
    extent = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    return ASSUMED_HEAD_LENGTH_MM / float(extent)


def key_image_input(grey: np.ndarray, size: int):
    """What slice mode feeds the network from one 8-bit key image: (inputs (1, 3, size, size), the head's
    square, the HU read back (1, rows, cols), the estimated mm per pixel). Training reads real key images so too."""
    pixel_mm = pixel_mm_from_head(grey)
    hu = hu_from_brain_window(grey)[None]
    frame = head_frame(np.where(grey > HEAD_GREY, hu, AIR_HU), pixel_mm)
    return network_input(hu, frame, size, KEY_IMAGE_BACKGROUND_HU), frame, hu, pixel_mm

"""Key frames as the frame classifier reads them: text painted over, the clip's grey range to 0…1, one square.

Every frame of a clip is stretched by the same percentiles, so a faint frame stays faint; the frame is resized
(anti-aliased) to INPUT_SIZE², whatever its shape, and `to_frame_pixels` maps a map on that square back.
"""

from __future__ import annotations

import numpy as np
import torch

from LesionDetectLib.detectors.stenosis.text_mask import masked_frames

INPUT_SIZE = 256  # 512² frames at half resolution: a 3 mm vessel keeps about 5 pixels
GREY_PERCENTILES = (0.5, 99.5)


def network_input(frames: np.ndarray, text: np.ndarray, input_size: int = INPUT_SIZE) -> torch.Tensor:
    """(frames, rows, columns) of one clip and its text mask → (frames, 1, size, size) float32 in 0…1."""
    filled = masked_frames(np.asarray(frames), text).astype(np.float32)
    low, high = np.percentile(filled, GREY_PERCENTILES)
    grey = np.clip((filled - np.float32(low)) / np.float32(max(high - low, 1e-6)), 0.0, 1.0)
    square = torch.nn.functional.interpolate(
        torch.from_numpy(grey)[:, None], size=(input_size, input_size), mode="bilinear", antialias=True
    )
    return square.clamp(0.0, 1.0)


def to_frame_pixels(maps: torch.Tensor | np.ndarray, frame_shape: tuple[int, int]) -> np.ndarray:
    """(n, h, w) maps on the network's square (or any grid over the whole frame) → (n, rows, columns) float32."""
    maps = torch.as_tensor(np.asarray(maps, dtype=np.float32))[:, None]
    resized = torch.nn.functional.interpolate(maps, size=tuple(frame_shape), mode="bilinear", align_corners=False)
    return resized[:, 0].numpy()

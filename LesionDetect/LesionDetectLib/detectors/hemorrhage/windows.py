"""Head-CT slices as the network sees them: three HU windows as channels (METHODS.md D).

Brain (L 40 / W 80), subdural (L 80 / W 200) and soft tissue (L 40 / W 380), each mapped to 0…1. Values
outside the reconstruction circle (scanners pad with −2000 or −3024 HU) become air first, so resampling
cannot smear them into the skull and the brain.
"""

from __future__ import annotations

import numpy as np

WINDOWS = {"brain": (40.0, 80.0), "subdural": (80.0, 200.0), "soft tissue": (40.0, 380.0)}  # level, width (HU)
PADDING_HU = -1500.0  # below: outside the field of view
AIR_HU = -1000.0


def without_padding(hu: np.ndarray) -> np.ndarray:
    """A float32 copy with padding values (below −1500 HU) set to air."""
    hu = np.asarray(hu, dtype=np.float32)
    return np.where(hu < PADDING_HU, np.float32(AIR_HU), hu)


def window_channels(hu: np.ndarray) -> np.ndarray:
    """(…, 3, rows, cols) float32 in 0…1 from HU (…, rows, cols): brain, subdural and soft-tissue windows."""
    hu = without_padding(hu)
    channels = [np.clip((hu - (level - width / 2)) / width, 0.0, 1.0) for level, width in WINDOWS.values()]
    return np.stack(channels, axis=-3).astype(np.float32)

"""The one class-label → RGB palette shared by the MRML scene adapter and the offscreen snapshot."""

from __future__ import annotations

import zlib

LABEL_COLORS_RGB: dict[str, tuple[float, float, float]] = {
    "calcium": (1.0, 0.82, 0.18),
    "microbleed": (0.62, 0.36, 1.0),
    "hemorrhage": (0.93, 0.16, 0.16),
    "epidural": (0.93, 0.16, 0.16),
    "subdural": (1.0, 0.45, 0.1),
    "subarachnoid": (0.2, 0.8, 0.95),
    "intraparenchymal": (0.95, 0.25, 0.6),
    "intraventricular": (0.3, 0.55, 1.0),
    "stenosis": (0.2, 0.9, 0.35),
}

# Distinct colours for labels the palette does not name, chosen by a stable hash of the label.
EXTRA_COLORS_RGB: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.75, 0.7),
    (0.85, 0.55, 0.95),
    (0.6, 0.85, 0.2),
    (1.0, 0.6, 0.6),
    (0.55, 0.7, 1.0),
    (0.95, 0.7, 0.3),
)


def color_for_label(label: str) -> tuple[float, float, float]:
    """RGB in 0..1 for a lesion class label; the same label always gets the same colour."""
    key = label.lower()
    if key in LABEL_COLORS_RGB:
        return LABEL_COLORS_RGB[key]
    return EXTRA_COLORS_RGB[zlib.crc32(key.encode()) % len(EXTRA_COLORS_RGB)]

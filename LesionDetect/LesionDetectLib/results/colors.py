"""The one class-label → RGB rule shared by the MRML scene adapter, the markups files and the snapshot.

A detector names the colours of its own labels (`Detector.label_colors`); any other label gets a
colour from a generic palette, chosen by a stable hash of the label, so it is the same in every run.
"""

from __future__ import annotations

import zlib

# Distinct colours for labels no detector names, chosen by a stable hash of the label.
PALETTE_RGB: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.75, 0.7),
    (0.85, 0.55, 0.95),
    (0.6, 0.85, 0.2),
    (1.0, 0.6, 0.6),
    (0.55, 0.7, 1.0),
    (0.95, 0.7, 0.3),
)
EXTRA_COLORS_RGB = PALETTE_RGB  # the former name


def color_for_label(label: str, detector: str | None = None) -> tuple[float, float, float]:
    """RGB in 0..1 for a lesion class label; the same label always gets the same colour.

    The colour a detector declares for the label wins: `detector`'s own first (when given), then any
    registered detector's; otherwise the hash palette.
    """
    key = label.lower()
    for colors in _declared_colors(detector):
        for name, rgb in colors.items():
            if name.lower() == key:
                return tuple(float(c) for c in rgb)
    return hash_color(key)


def hash_color(label: str) -> tuple[float, float, float]:
    """The palette colour of a label by a stable hash (crc32) of its lower-case text."""
    return PALETTE_RGB[zlib.crc32(label.lower().encode()) % len(PALETTE_RGB)]


def _declared_colors(detector: str | None) -> list[dict]:
    """label_colors of `detector` (first) and of every registered detector; [] when the registry cannot load."""
    from LesionDetectLib.detection import registry  # lazy: the registry imports every detector package
    from LesionDetectLib.errors import LesionDetectError

    try:
        detectors = registry.detectors()
    except (LesionDetectError, ImportError):
        return []
    ordered = ([detectors[detector]] if detector in detectors else []) + list(detectors.values())
    return [dict(getattr(found, "label_colors", None) or {}) for found in ordered]

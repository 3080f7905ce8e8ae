"""Lesion measurements as text: the one-line description on ROIs and the table cells."""

from __future__ import annotations

import numpy as np

from .findings import Lesion

MEASUREMENT_FORMATS = {
    "artery": "{}",
    "agatston": "Agatston {:.1f}",
    "volume_mm3": "volume {:.1f} mm³",
    "mass_mg": "mass {:.1f} mg",
    "peak_hu": "peak {:.0f} HU",
}


def lesion_description(lesion: Lesion) -> str:
    """e.g. "score 0.93, LAD, Agatston 12.3, volume 25.1 mm³, peak 512 HU"."""
    parts = [] if lesion.score is None else [f"score {lesion.score:.2f}"]
    for key, value in lesion.measurements.items():
        if value is None:
            continue
        if key in MEASUREMENT_FORMATS:
            parts.append(MEASUREMENT_FORMATS[key].format(value))
        elif is_number(value):
            parts.append(f"{key} {value:g}")
        else:
            parts.append(f"{key} {table_text(value)}")
    return ", ".join(parts)


def is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def table_text(value) -> str:
    """Text cell: a pair of numbers reads "first–last" (e.g. a slice range), anything else str()."""
    if isinstance(value, (tuple, list, np.ndarray)) and len(value) == 2 and all(is_number(v) for v in value):
        return f"{value[0]:g}–{value[1]:g}"
    return "" if value is None else str(value)

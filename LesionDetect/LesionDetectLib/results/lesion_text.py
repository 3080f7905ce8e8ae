"""Lesion measurements as text: the one-line description on ROIs and the table cells.

Nothing here knows a detector: a detector declares its measurement `Column`s and they decide the order
and wording. A column's `text` template writes the measurement in the description ("volume {:.1f} mm³",
"{}" for a bare category such as a site name); without one it reads "key value". Its `cell` format
writes a table cell ("{:.1f}"). Measurements no column names follow the declared ones, as "key value".
"""

from __future__ import annotations

import re

import numpy as np

from LesionDetectLib.detection.findings import Lesion

_TITLE_WITH_UNIT = re.compile(r"^\s*(?P<name>.*?)\s*\((?P<unit>[^()]*)\)\s*$")


def detector_columns(detector_id: str | None) -> tuple:
    """The measurement columns a registered detector declares; () for an unknown or unloadable detector."""
    if not detector_id:
        return ()
    from LesionDetectLib.detection.registry import get_detector  # lazy: the registry imports every detector
    from LesionDetectLib.errors import LesionDetectError

    try:
        return tuple(get_detector(detector_id).columns)
    except (LesionDetectError, ImportError):
        return ()


def lesion_description(lesion: Lesion, columns=()) -> str:
    """e.g. "score 0.93, upper lobe, grade 2.0, volume 25.1 mm³, peak 512" with the detector's columns."""
    parts = [] if lesion.score is None else [f"score {lesion.score:.2f}"]
    declared = set()
    for column in columns:
        declared.add(column.key)
        value = lesion.measurements.get(column.key)
        if value is not None:
            parts.append(column_phrase(column, value))
    for key, value in lesion.measurements.items():
        if value is None or key in declared:
            continue
        if is_number(value):
            parts.append(f"{key} {value:g}")
        else:
            parts.append(f"{key} {table_text(value)}")
    return ", ".join(parts)


def column_phrase(column, value) -> str:
    """One declared measurement in running text: the column's `text` template, else "key value"."""
    template = getattr(column, "text", "")
    if template:
        try:
            return template.format(value)
        except (ValueError, TypeError, IndexError, KeyError):
            pass
    return f"{column.key} {value:g}" if is_number(value) else f"{column.key} {table_text(value)}"


def title_parts(title: str) -> tuple[str, str]:
    """("Volume", "mm³") from "Volume (mm³)"; ("Grade", "") from "Grade"."""
    match = _TITLE_WITH_UNIT.match(title)
    if not match or not match["name"]:
        return title, ""
    return match["name"], match["unit"].strip()


def cell_format(column) -> str:
    """The column's table-cell format (`cell`; `format` in older detectors), "{:g}" by default."""
    return getattr(column, "cell", None) or getattr(column, "format", None) or "{:g}"


def format_cell(column, value) -> str:
    """The value written with the column's cell format; values the format does not take are written plainly."""
    if value is None:
        return ""
    try:
        return cell_format(column).format(value)
    except (ValueError, TypeError, IndexError, KeyError):
        return f"{value:g}" if is_number(value) else table_text(value)


def is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def table_text(value) -> str:
    """Text cell: a pair of numbers reads "first–last" (e.g. a slice range), anything else str()."""
    if isinstance(value, (tuple, list, np.ndarray)) and len(value) == 2 and all(is_number(v) for v in value):
        return f"{value[0]:g}–{value[1]:g}"
    return "" if value is None else str(value)

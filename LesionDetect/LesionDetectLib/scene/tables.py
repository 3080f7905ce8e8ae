"""Table nodes: one row per lesion (the detector's columns first, in its order and format), and scores per frame."""

from __future__ import annotations

import numpy as np
import slicer
import vtk

from LesionDetectLib.detection.findings import Findings, ScoreTable
from LesionDetectLib.results.lesion_text import format_cell, is_number, table_text, title_parts


def measurement_keys(lesions, columns) -> list[str]:
    """Declared columns present in any lesion (declared order), then every other measurement key."""
    present = list(dict.fromkeys(key for lesion in lesions for key in lesion.measurements))
    declared = [column.key for column in columns if column.key in present]
    return declared + [key for key in present if key not in declared]


def add_lesion_table(scene, findings: Findings, columns=(), location_columns=()):
    """One row per lesion: id, label, score, the measurements, then `location_columns` ((name, unit, values))."""
    table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", f"{findings.detector} lesions")
    lesions = findings.lesions
    by_key = {column.key: column for column in columns}
    table = vtk.vtkTable()
    table.AddColumn(column_array("id", [lesion.id for lesion in lesions]))
    table.AddColumn(column_array("label", [lesion.label for lesion in lesions]))
    table.AddColumn(column_array("score", [lesion.score for lesion in lesions]))
    keys = measurement_keys(lesions, columns)
    for key in keys:
        values = [lesion.measurements.get(key) for lesion in lesions]
        column = by_key.get(key)
        table.AddColumn(column_array(key, values) if column is None else declared_column_array(column, values))
    for name, _, values in location_columns:
        table.AddColumn(column_array(name, values))
    table_node.SetAndObserveTable(table)
    for key in keys:
        if key in by_key:
            title, unit = by_key[key].title, title_parts(by_key[key].title)[1]
            table_node.SetColumnTitle(key, title)
            if unit:
                table_node.SetColumnUnitLabel(key, unit)
    for name, unit, _ in location_columns:
        if unit:
            table_node.SetColumnUnitLabel(name, unit)
    table_node.SetUseColumnTitleAsColumnHeader(True)  # headers read "Volume (mm³)"; names stay the keys
    return table_node


def declared_column_array(column, values: list) -> vtk.vtkAbstractArray:
    """A declared column: numbers rounded as the column's format writes them (still numbers, so the table
    sorts and plots), or text cells in that format where the format does not write a plain number."""
    cells = []
    for value in values:
        if value is None or not is_number(value):
            cells.append(value)
            continue
        text = format_cell(column, value)
        try:
            number = float(text)
        except ValueError:
            cells.append(text)  # e.g. "12 %": a text column then
            continue
        exact_int = isinstance(value, (int, np.integer)) and number.is_integer()
        cells.append(int(number) if exact_int else number)
    if any(cell is not None and not is_number(cell) for cell in cells):
        cells = [None if value is None else format_cell(column, value) for value in values]
    return column_array(column.key, cells)


def column_array(name: str, values: list) -> vtk.vtkAbstractArray:
    """Integer, double (NaN where missing) or string column, whichever holds all `values`."""
    present = [value for value in values if value is not None]
    if present and all(is_number(value) for value in present):
        if len(present) == len(values) and all(isinstance(value, (int, np.integer)) for value in present):
            array = vtk.vtkIntArray()
            for value in values:
                array.InsertNextValue(int(value))
        else:
            array = vtk.vtkDoubleArray()
            for value in values:
                array.InsertNextValue(np.nan if value is None else float(value))
    else:
        array = vtk.vtkStringArray()
        for value in values:
            array.InsertNextValue(table_text(value))
    array.SetName(name)
    return array


def frame_score_tables(findings: Findings, frame_count: int, axis: str = "frame") -> list[ScoreTable]:
    """The findings' score tables along `axis` ("frame" or "slice") that have one row per frame or slice."""
    return [
        table
        for table in findings.score_tables
        if table.axis == axis and np.ndim(table.values) == 2 and len(table.values) == frame_count
    ]


def add_score_table(scene, findings: Findings, score_tables: list[ScoreTable], frame_times_s=None):
    """One row per frame or slice (the tables' axis): its index, time (when known), one column per score
    label (later tables win a name)."""
    axis = score_tables[0].axis
    table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", f"{findings.detector} {axis} scores")
    frame_count = len(score_tables[0].values)
    table = vtk.vtkTable()
    table.AddColumn(column_array(axis, list(range(frame_count))))
    if frame_times_s is not None:
        table.AddColumn(column_array("time", [float(t) for t in frame_times_s]))
    columns = {}
    for score_table in score_tables:
        for index, label in enumerate(score_table.labels):
            columns[label] = [float(v) for v in np.asarray(score_table.values, dtype=float)[:, index]]
    for label, values in columns.items():
        table.AddColumn(column_array(label, values))
    table_node.SetAndObserveTable(table)
    if frame_times_s is not None:
        table_node.SetColumnUnitLabel("time", "s")
    return table_node


def add_probability_table(scene, findings: Findings):
    """One row per label of the findings' scan- or clip-level probabilities."""
    table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", f"{findings.detector} probabilities")
    table = vtk.vtkTable()
    table.AddColumn(column_array("label", list(findings.probabilities)))
    table.AddColumn(column_array("probability", [float(p) for p in findings.probabilities.values()]))
    table_node.SetAndObserveTable(table)
    return table_node


def frame_scores_item(score_tables: list[ScoreTable], frame: int, name: str):
    """A table (not in the scene) for one frame's sequence item: one row per score label."""
    labels, scores = [], []
    for score_table in score_tables:
        for index, label in enumerate(score_table.labels):
            labels.append(label)
            scores.append(float(np.asarray(score_table.values, dtype=float)[frame, index]))
    table = vtk.vtkTable()
    table.AddColumn(column_array("label", labels))
    score_array = vtk.vtkDoubleArray()  # always a number column, even with no labels
    score_array.SetName("score")
    for score in scores:
        score_array.InsertNextValue(score)
    table.AddColumn(score_array)
    table_node = slicer.vtkMRMLTableNode()
    table_node.SetName(name)
    table_node.SetAndObserveTable(table)
    return table_node

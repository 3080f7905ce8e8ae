"""Plot chart nodes: scores against slice or frame, one line per label, drawn from the score table node."""

from __future__ import annotations

from LesionDetectLib.detection.findings import Findings, ScoreTable
from LesionDetectLib.results.colors import color_for_label


def add_score_plot(scene, findings: Findings, table_node, score_tables: list[ScoreTable]):
    """A chart of each score label's column of `table_node` against its slice or frame column, in the label's
    colour; returns (chart node, series nodes)."""
    axis = score_tables[0].axis
    title = f"{findings.detector} per {axis}"
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", title)
    chart.SetTitle(title)
    chart.SetXAxisTitle(axis)
    chart.SetYAxisTitle("score")
    labels = dict.fromkeys(label for table in score_tables for label in table.labels)
    series_nodes = []
    for label in labels:
        series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", f"{title}: {label}")
        series.SetAndObserveTableNodeID(table_node.GetID())
        series.SetXColumnName(axis)
        series.SetYColumnName(label)
        series.SetPlotType(series.PlotTypeScatter)
        series.SetMarkerStyle(series.MarkerStyleNone)
        series.SetColor(*color_for_label(label, findings.detector))
        chart.AddAndObservePlotSeriesNodeID(series.GetID())
        series_nodes.append(series)
    return chart, series_nodes

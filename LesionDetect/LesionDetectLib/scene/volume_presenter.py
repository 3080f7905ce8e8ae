"""Findings on a volume → nodes in one subject-hierarchy folder: ROIs, a lesion table, models, a heatmap,
the probabilities and the per-slice scores (a table and a plot).

Works on any real MRML scene passed in (`slicer.mrmlScene` in Slicer, a slicer-core scene in tests).
Every node a run creates is tagged (see `run_nodes`): a rerun replaces exactly those nodes.
Callers use `LesionDetectLib.scene.show_findings`, which picks this presenter for volumes.
"""

from __future__ import annotations

import numpy as np

from LesionDetectLib.detection.findings import Findings
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.results.lesion_text import detector_columns, lesion_description
from LesionDetectLib.scene.heatmap import add_heatmap_node
from LesionDetectLib.scene.inputs import ijk_to_world_matrix
from LesionDetectLib.scene.models import add_model_node
from LesionDetectLib.scene.plots import add_score_plot
from LesionDetectLib.scene.rois import add_volume_roi
from LesionDetectLib.scene.run_nodes import (
    RunNodes,
    adopt,
    create_run_folder,
    input_key,
    remove_run,
)
from LesionDetectLib.scene.tables import add_lesion_table, add_probability_table, add_score_table, frame_score_tables


def show_findings(scene, volume_node, findings: Findings, columns=None) -> RunNodes:
    """Replace the previous run of `findings.detector` on this volume with ROIs, table, models, heatmap.

    `columns`: the measurement columns (default: those the detector declares in the registry).
    """
    if volume_node is None:
        raise LesionDetectError("Findings on a volume need the volume node they were computed on.")
    columns = detector_columns(findings.detector) if columns is None else tuple(columns)
    if findings.heatmap is not None:
        _check_heatmap_grid(volume_node, findings)
    key = input_key(volume_node)
    remove_run(scene, key, findings.detector)
    folder_item_id = create_run_folder(
        scene, volume_node, key, findings.detector, volume_node.GetName(), findings.summary
    )
    detector = findings.detector
    run = RunNodes(folder_item_id)
    directions = findings.volume.directions
    run.roi_nodes = [add_volume_roi(scene, lesion, directions, detector) for lesion in findings.lesions]
    for roi_node, lesion in zip(run.roi_nodes, findings.lesions):  # only now: resizing an ROI clears descriptions
        roi_node.SetDescription(lesion_description(lesion, columns))
    center_columns = [
        (f"center {axis}", "mm", [lesion.center_ras[n] for lesion in findings.lesions]) for n, axis in enumerate("RAS")
    ]
    run.table_node = add_lesion_table(scene, findings, columns, center_columns)
    if findings.probabilities:
        run.probability_table_node = add_probability_table(scene, findings)
    slice_tables = frame_score_tables(findings, findings.volume.array.shape[0], axis="slice")
    if slice_tables:
        run.score_table_node = add_score_table(scene, findings, slice_tables)
        run.plot_chart_node, run.plot_series_nodes = add_score_plot(scene, findings, run.score_table_node, slice_tables)
    run.model_nodes = [
        add_model_node(scene, lesion, detector) for lesion in findings.lesions if lesion.surface is not None
    ]
    if findings.heatmap is not None:
        run.heatmap_node = add_heatmap_node(
            scene, f"{detector} heatmap", np.asarray(findings.heatmap), ijk_to_world_matrix(volume_node)
        )
    adopt(scene, run.nodes(), folder_item_id, detector, key)
    return run


def _check_heatmap_grid(volume_node, findings: Findings) -> None:
    expected_shape = tuple(volume_node.GetImageData().GetDimensions()[::-1])
    if np.shape(findings.heatmap) != expected_shape:
        raise LesionDetectError(
            f"The {findings.detector} heatmap has shape {np.shape(findings.heatmap)} but the volume has "
            f"{expected_shape}; the detector must return the heatmap on the input grid."
        )

"""The hemorrhage detector's self-test scenarios: plain functions of a real MRML scene and a scratch folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import slicer

from LesionDetectLib.app.cli import main as run_cli
from LesionDetectLib.app.detection_run import import_results
from LesionDetectLib.detectors.hemorrhage.labels import LABELS
from LesionDetectLib.detectors.hemorrhage.sample import SAMPLE_PATH, read_sample
from LesionDetectLib.io.volume_io import write_nrrd
from LesionDetectLib.scenarios import add_volume_node, nodes_of_run
from LesionDetectLib.scene import volume_from_node


def scenario_hemorrhage_worker_results_show_in_the_views(scene, work_dir) -> None:
    """The panel's path on the bundled head CT: node → NRRD → worker CLI → results → heatmap overlay, boxes,
    probability and per-slice tables, a plot; the sample's known subdural blood is called; a rerun replaces."""
    work_dir = Path(work_dir)
    volume_node = add_volume_node(scene, read_sample())
    write_nrrd(volume_from_node(volume_node), work_dir / "input.nrrd")
    for attempt in ("first", "rerun"):
        result = work_dir / attempt
        arguments = ["hemorrhage", str(work_dir / "input.nrrd"), "-o", str(result), "--progress", "none"]
        assert run_cli([*arguments, "--no-snapshot"]) == 0, "lesiondetect failed"
        before = {node.GetID() for node in nodes_of_run(scene, volume_node, "hemorrhage")}
        findings = import_results(scene, result, volume_node)
        after = nodes_of_run(scene, volume_node, "hemorrhage")
        assert not before & {node.GetID() for node in after}, "a rerun kept nodes of the run it replaced"
    truth = json.loads(SAMPLE_PATH.with_suffix(".json").read_text())["positive_slices"]
    assert truth["subdural"] > 0 and "subdural" in findings.summary["positive"], findings.summary["probabilities"]
    classes = [node.GetClassName() for node in after]
    assert classes.count("vtkMRMLPlotChartNode") == 1 and classes.count("vtkMRMLPlotSeriesNode") == len(LABELS)
    heatmap = next(node for node in after if node.GetName() == "hemorrhage heatmap")
    assert slicer.util.arrayFromVolume(heatmap).shape == slicer.util.arrayFromVolume(volume_node).shape
    assert heatmap.GetDisplayNode().GetColorNodeID() and float(slicer.util.arrayFromVolume(heatmap).max()) > 0
    rois = [node for node in after if node.IsA("vtkMRMLMarkupsROINode")]
    assert len(rois) == len(findings.lesions) >= 1
    tables = {node.GetName(): node for node in after if node.IsA("vtkMRMLTableNode")}
    assert tables["hemorrhage probabilities"].GetNumberOfRows() == len(LABELS)
    assert tables["hemorrhage slice scores"].GetNumberOfRows() == slicer.util.arrayFromVolume(volume_node).shape[0]
    assert np.isclose(
        tables["hemorrhage probabilities"].GetTable().GetValue(0, 1).ToDouble(), findings.probabilities["any"]
    )


SCENARIOS = [scenario_hemorrhage_worker_results_show_in_the_views]

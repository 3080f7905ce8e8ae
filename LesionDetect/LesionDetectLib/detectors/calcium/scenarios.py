"""The calcium detector's self-test scenarios: plain functions of a real MRML scene and a scratch folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import slicer
from vtkmodules.vtkCommonMath import vtkMatrix4x4 as vtk_matrix

from LesionDetectLib.app.cli import main as run_cli
from LesionDetectLib.detectors.calcium.classical import detect_calcium
from LesionDetectLib.detectors.calcium.labels import ARTERIES
from LesionDetectLib.detectors.calcium.sample import make_sample
from LesionDetectLib.io.volume_io import write_nrrd
from LesionDetectLib.results.result_files import load_results
from LesionDetectLib.results.stl import read_stl, write_stl_files
from LesionDetectLib.scenarios import add_volume_node, nodes_of_run
from LesionDetectLib.scene import show_findings, surfaces_from_run, volume_from_node

SAMPLE_SHAPE_IJK = (192, 192, 32)


def scenario_calcium_detect_shows_and_replaces_findings(scene, work_dir) -> None:
    """Detect on a loaded CT: ROIs, table and models in one folder; a rerun replaces only its own nodes."""
    volume, plaques, _ = make_sample(shape_ijk=SAMPLE_SHAPE_IJK)
    volume_node = add_volume_node(scene, volume)
    findings = detect_calcium(volume_from_node(volume_node))
    assert findings.lesions, "the sample's plaques were not found"
    run = show_findings(scene, volume_node, findings)
    assert len(run.roi_nodes) == len(findings.lesions)
    assert run.table_node.GetNumberOfRows() == len(findings.lesions)
    assert len(run.model_nodes) == len(findings.lesions)
    first = findings.lesions[0]
    assert np.allclose(run.roi_nodes[0].GetCenter(), first.center_ras, atol=1e-3)
    user_roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", run.roi_nodes[0].GetName())
    own_before = {node.GetID() for node in nodes_of_run(scene, volume_node, "calcium")}
    rerun = show_findings(scene, volume_node, detect_calcium(volume_from_node(volume_node)))
    own_after = {node.GetID() for node in nodes_of_run(scene, volume_node, "calcium")}
    assert len(own_after) == len(own_before) and not own_after & own_before
    assert scene.GetNodeByID(user_roi.GetID()) is user_roi, "a user node was removed"
    assert scene.GetNodeByID(volume_node.GetID()) is volume_node
    summary = json.loads(
        slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene).GetItemAttribute(
            rerun.folder_item_id, "LesionDetect.Summary"
        )
    )
    assert summary["agatston_total"] == findings.summary["agatston_total"]


def scenario_worker_results_import_and_export_stl(scene, work_dir) -> None:
    """The panel's path: volume node → NRRD → worker CLI → result folder → scene → Export STL (LPS)."""
    work_dir = Path(work_dir)
    volume, _, _ = make_sample(shape_ijk=SAMPLE_SHAPE_IJK)
    volume_node = add_volume_node(scene, volume)
    write_nrrd(volume_from_node(volume_node), work_dir / "input.nrrd")
    exit_code = run_cli(
        [
            "calcium",
            str(work_dir / "input.nrrd"),
            "-o",
            str(work_dir / "result"),
            "--method",
            "classical",
            "--progress",
            "none",
            "--no-snapshot",
        ]
    )
    assert exit_code == 0, f"lesiondetect exited with {exit_code}"
    findings = load_results(work_dir / "result")
    run = show_findings(scene, volume_node, findings)
    assert len(run.model_nodes) == len(findings.lesions) > 0
    surfaces = surfaces_from_run(scene, volume_node, "calcium")
    paths = write_stl_files(surfaces, work_dir / "export", "LPS", combined_name="calcium.stl")
    exported, space = read_stl(paths[1])
    assert space == "LPS"
    assert np.allclose(exported.points_ras.mean(axis=0), surfaces[0][1].points_ras.mean(axis=0), atol=1e-3)


def scenario_calcium_deep_marks_coronary_lesions_and_shows_a_heatmap(scene, work_dir) -> None:
    """The shipped deep model on a loaded CT: arteries on the lesions, a heatmap on the input grid, bone explained."""
    from LesionDetectLib.detectors.calcium.deep import detect_calcium_deep
    from LesionDetectLib.detectors.calcium.model import load_calcium_model

    volume, _, _ = make_sample()  # full 512×512 slices: the model was trained at 0.3–0.5 mm pixels
    volume_node = add_volume_node(scene, volume)
    findings = detect_calcium_deep(volume_from_node(volume_node), load_calcium_model())
    assert findings.method == "deep" and findings.weights_sha256
    assert all(lesion.measurements["artery"] in ARTERIES for lesion in findings.lesions)
    classical = detect_calcium(volume)
    assert findings.summary["agatston_total"] <= classical.summary["agatston_total"]
    reasons = [entry["reason"] for entry in findings.summary["excluded"]]
    assert any(reason.startswith("bone") for reason in reasons), "the sample's ribs and spine were not set aside"
    run = show_findings(scene, volume_node, findings)
    assert len(run.roi_nodes) == len(findings.lesions)
    heatmap = slicer.util.arrayFromVolume(run.heatmap_node)
    assert heatmap.shape == volume.array.shape and 0.0 <= heatmap.min() and heatmap.max() <= 1.0
    heatmap_ijk_to_ras, volume_ijk_to_ras = vtk_matrix(), vtk_matrix()
    run.heatmap_node.GetIJKToRASMatrix(heatmap_ijk_to_ras)
    volume_node.GetIJKToRASMatrix(volume_ijk_to_ras)
    assert np.allclose(
        slicer.util.arrayFromVTKMatrix(heatmap_ijk_to_ras), slicer.util.arrayFromVTKMatrix(volume_ijk_to_ras)
    )


SCENARIOS = [
    scenario_calcium_detect_shows_and_replaces_findings,
    scenario_worker_results_import_and_export_stl,
    scenario_calcium_deep_marks_coronary_lesions_and_shows_a_heatmap,
]

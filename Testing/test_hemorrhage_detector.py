"""The hemorrhage detector end to end: CLI (volume and slice mode), a slicer-core scene, bad input.

A tiny untrained network stands in for the shipped model, with a threshold low enough that labels are
called, so every output path runs; the shipped model on the bundled sample is the self-test scenario
(detectors/hemorrhage/scenarios.py, run by test_scenarios.py).
"""

import csv
import json

import imageio.v3 as iio
import numpy as np
import pytest
import SimpleITK as sitk
import slicer
import slicer.util
import torch
from synthetic_cardiac_ct import make_case as make_chest_case
from synthetic_head_ct import make_head_case

from LesionDetectLib.app.cli import EXIT_BAD_INPUT, main
from LesionDetectLib.detection.registry import get_detector
from LesionDetectLib.detectors.hemorrhage.detect import detect_hemorrhage
from LesionDetectLib.detectors.hemorrhage.labels import LABELS
from LesionDetectLib.detectors.hemorrhage.model import load_hemorrhage_model, save_hemorrhage_model
from LesionDetectLib.detectors.hemorrhage.options import HemorrhageOptions
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.volume import Volume
from LesionDetectLib.io.volume_io import write_nrrd
from LesionDetectLib.results.report import validate_report
from LesionDetectLib.scene import show_findings

LOW = "0.01"  # every label called positive by the untrained network


@pytest.fixture(scope="module")
def tiny_manifest(tmp_path_factory):
    from LesionDetectLib.nets.slice_sequence import SliceSequenceConfig, SliceSequenceNet

    torch.manual_seed(0)
    network = SliceSequenceNet(SliceSequenceConfig(width=0.125, blocks=(1, 1, 1, 1), reduced=8, lstm_hidden=8))
    return save_hemorrhage_model(network.eval(), 64, tmp_path_factory.mktemp("model"), {"version": "tiny-test"})


@pytest.fixture(scope="module")
def head():
    return make_head_case(1, matrix=96).volume


def _run(args, tmp_path, name="out"):
    out = tmp_path / name
    assert main(["hemorrhage", *args, "-o", str(out), "--progress", "none", "--no-snapshot"]) == 0
    return out, json.loads((out / "report.json").read_text())


def test_volume_mode_writes_the_report_tables_heatmap_and_boxes(head, tiny_manifest, tmp_path):
    write_nrrd(head, tmp_path / "head.nrrd")
    out, report = _run([str(tmp_path / "head.nrrd"), "--weights", str(tiny_manifest), "--threshold", LOW], tmp_path)
    validate_report(report)
    summary = report["summary"]
    assert summary["mode"] == "volume" and set(summary["probabilities"]) == set(LABELS)
    assert summary["positive"] == list(LABELS) and len(summary["slices"]) == head.array.shape[0]
    with open(out / "slices.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == head.array.shape[0] and list(rows[0]) == ["slice", *LABELS]
    assert float(rows[3]["any"]) == pytest.approx(summary["slices"][3]["any"], abs=1e-4)
    heatmap = sitk.ReadImage(str(out / "heatmap.nrrd"))
    assert sitk.GetArrayFromImage(heatmap).shape == head.array.shape
    assert np.allclose(heatmap.GetSpacing(), head.spacing) and sitk.GetArrayFromImage(heatmap).max() > 0
    markups = json.loads((out / "boxes.mrk.json").read_text())["markups"]
    assert len(markups) == len(report["lesions"]) >= 1
    assert all(lesion["label"] in LABELS[1:] for lesion in report["lesions"])


def test_slice_mode_runs_on_a_key_image_and_says_the_windows_were_approximated(head, tiny_manifest, tmp_path):
    grey = np.rint(np.clip(head.array[head.array.shape[0] // 2], 0, 80) / 80 * 255).astype(np.uint8)
    iio.imwrite(tmp_path / "key.png", grey)
    out, report = _run([str(tmp_path / "key.png"), "--weights", str(tiny_manifest), "--threshold", LOW], tmp_path)
    validate_report(report)
    assert report["summary"]["mode"] == "slice" and len(report["summary"]["slices"]) == 1
    assert any("approximated" in warning for warning in report["warnings"])
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(out / "heatmap.nrrd"))).shape == (1, *grey.shape)
    assert all(lesion["frame"] == 0 and len(lesion["box_px"]) == 4 for lesion in report["lesions"])


def test_a_volume_stored_the_other_way_gives_the_same_answer_and_heatmap(head, tiny_manifest):
    """Slices stored top to bottom, i running to the right (as a RAS NIfTI): read into the trained layout."""
    model = load_hemorrhage_model(tiny_manifest)
    options = HemorrhageOptions(threshold=0.01)
    flip = np.diag([-1.0, 1.0, -1.0, 1.0])  # i and k reversed
    shape_ijk = np.array(head.array.shape[::-1])
    moved = head.ijk_to_ras.copy()
    moved[:3, 3] = head.ijk_to_ras_points(np.array([[shape_ijk[0] - 1, 0, shape_ijk[2] - 1]]))[0]
    moved[:3, :3] = head.ijk_to_ras[:3, :3] @ flip[:3, :3]
    stored = Volume(np.ascontiguousarray(head.array[::-1, :, ::-1]), moved, "flipped", "CT")
    first, second = detect_hemorrhage(head, model, options), detect_hemorrhage(stored, model, options)
    assert first.probabilities == pytest.approx(second.probabilities, abs=1e-5)
    assert np.allclose(first.score_tables[0].values[::-1], second.score_tables[0].values, atol=1e-5)
    assert np.array_equal(first.heatmap[::-1, :, ::-1], second.heatmap)
    for a, b in zip(first.lesions, second.lesions):
        assert np.allclose(a.center_ras, b.center_ras) and a.label == b.label


def test_the_scene_gets_heatmap_overlay_boxes_tables_and_a_plot(head, tiny_manifest, mrml_scene):
    findings = detect_hemorrhage(head, load_hemorrhage_model(tiny_manifest), HemorrhageOptions(threshold=0.01))
    node = mrml_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "head CT")
    node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(head.ijk_to_ras))
    slicer.util.updateVolumeFromArray(node, head.array)
    run = show_findings(mrml_scene, node, findings)
    display = run.heatmap_node.GetDisplayNode()
    assert display.GetColorNodeID() == "vtkMRMLPETProceduralColorNodePET-Heat"
    assert slicer.util.arrayFromVolume(run.heatmap_node).shape == head.array.shape
    assert len(run.roi_nodes) == len(findings.lesions) >= 1
    assert run.roi_nodes[0].GetName().startswith(findings.lesions[0].label)
    probabilities = run.probability_table_node.GetTable()
    assert probabilities.GetNumberOfRows() == 6 and probabilities.GetColumnByName("probability") is not None
    slices = run.score_table_node.GetTable()
    assert slices.GetNumberOfRows() == head.array.shape[0] and slices.GetColumnByName("subdural") is not None
    chart = run.plot_chart_node
    assert chart.GetNumberOfPlotSeriesNodes() == 6 and len(run.plot_series_nodes) == 6
    series = run.plot_series_nodes[0]
    assert series.GetTableNode() is run.score_table_node and series.GetXColumnName() == "slice"


def _mr_like(head) -> np.ndarray:
    """Non-negative signal values, as an MR volume holds."""
    return (np.clip(head.array, -1000, 3000) + 1000).astype(np.int16)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda head: Volume(_mr_like(head), head.ijk_to_ras, "T1", "MR"), "is MR"),
        (lambda head: Volume(_mr_like(head), head.ijk_to_ras, "T1"), "not a CT in HU"),  # no modality said
        (lambda head: Volume(head.array[10:12], head.ijk_to_ras, "two slices", "CT"), "holds 2 slices"),
        (lambda head: make_chest_case(3, matrix=96).volume, "does not show a head"),
    ],
)
def test_bad_input_is_refused_naming_the_problem(head, make, message):
    detector = get_detector("hemorrhage")
    with pytest.raises(LesionDetectError, match=message):
        detector.check(make(head), HemorrhageOptions())


def _with_enhanced_vessels(head) -> Volume:
    """The head with contrast-filled tubes (250 HU, 4 mm across) running through its deep brain."""
    array = head.array.copy()
    rows, cols = np.indices(array.shape[1:])
    centre_row, centre_col = np.array(array.shape[1:]) / 2
    pixel = head.spacing[0]
    for offset_mm in (-12.0, 0.0, 12.0):
        tube = np.abs((cols - centre_col) * pixel - offset_mm) <= 2.0
        tube &= np.abs(rows - centre_row) * pixel <= 40.0
        array[:, tube] = 250
    return Volume(array, head.ijk_to_ras, "contrast head CT", "CT")


def test_a_contrast_enhanced_head_ct_is_warned_and_a_plain_one_is_not(head, tiny_manifest):
    model = load_hemorrhage_model(tiny_manifest)
    plain = detect_hemorrhage(head, model, HemorrhageOptions(heatmap=False))
    assert not any("contrast" in warning for warning in plain.warnings)
    enhanced = detect_hemorrhage(_with_enhanced_vessels(head), model, HemorrhageOptions(heatmap=False))
    assert any("looks contrast-enhanced" in warning for warning in enhanced.warnings)


def test_a_black_key_image_is_refused_by_the_cli_naming_the_problem(tiny_manifest, tmp_path, capsys):
    iio.imwrite(tmp_path / "black.png", np.zeros((64, 64), dtype=np.uint8))
    code = main(
        ["hemorrhage", str(tmp_path / "black.png"), "-o", str(tmp_path / "out"), "--weights", str(tiny_manifest)]
    )
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and "shows no head" in err and "Internal error" not in err
    assert not (tmp_path / "out").exists()

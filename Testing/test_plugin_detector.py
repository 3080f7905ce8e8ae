"""Adding a detector is one folder: toy detectors defined only here get a CLI command, a validated report,
result files that `--overwrite` manages exactly, and come back through the worker process."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import toy_detectors

from LesionDetectLib.app.cli import build_parser, main
from LesionDetectLib.detection import registry
from LesionDetectLib.io.volume_io import write_nrrd
from LesionDetectLib.results.output_folder import output_files
from LesionDetectLib.results.report import validate_report
from LesionDetectLib.results.result_files import load_results

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "LesionDetect" / "LesionDetectLib"


@pytest.fixture(autouse=True)
def toys():
    for detector in (toy_detectors.BlobDetector(), toy_detectors.SpotDetector()):
        registry.register(detector)
    yield
    for detector_id in ("blobs", "spots"):
        registry.unregister(detector_id)


def files_in(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def run(*args) -> int:
    return main([*map(str, args), "--progress", "none"])


def test_toys_get_their_commands_flags_and_list_entry(capsys):
    args = build_parser().parse_args(["blobs", "in.nrrd", "-o", "out", "--threshold", "400", "--min-voxels", "5"])
    assert (args.threshold, args.min_voxels, args.method) == (400.0, 5, "threshold")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["spots", "in.nrrd", "-o", "out", "--min-voxels", "5"])  # not a spots option
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "blobs: Bright blobs (toy) (volume" in listed and "spots: Moving spots (toy) (sequence, image" in listed


def test_volume_toy_end_to_end(tmp_path):
    volume = toy_detectors.blob_volume()
    write_nrrd(volume, tmp_path / "blobs.nrrd")
    out = tmp_path / "out"
    assert run("blobs", tmp_path / "blobs.nrrd", "-o", out, "--no-snapshot") == 0
    report = json.loads((out / "report.json").read_text())
    validate_report(report)
    assert report["params"] == {"threshold": 500.0, "min_voxels": 3}
    assert report["summary"] == {"count": 2} and report["input"]["kind"] == "volume"
    centers = sorted(lesion["center_ras"] for lesion in report["lesions"])
    expected = sorted(volume.ijk_to_ras_points(np.array(toy_detectors.BLOB_CENTERS_IJK, float)).tolist())
    assert np.allclose(centers, expected, atol=1e-6)
    assert (
        files_in(out)
        == set(output_files(report))
        == {
            "report.json",
            "lesions.csv",
            "boxes.mrk.json",
            "heatmap.nrrd",
        }
    )
    header = (out / "lesions.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["id", "label", "score", "voxels", "peak"] and "first_slice" not in header


def test_report_fragment_is_enforced(tmp_path):
    out = tmp_path / "out"
    assert run("blobs", "--sample", "-o", out) == 0
    report = json.loads((out / "report.json").read_text())
    report["lesions"][0]["voxels"] = 0
    with pytest.raises(Exception, match="minimum"):
        validate_report(report)


def test_overwrite_replaces_exactly_the_files_the_report_lists(tmp_path):
    out = tmp_path / "out"
    assert run("blobs", "--sample", "-o", out) == 0
    assert run("blobs", "--sample", "-o", out) == 3  # results there: refused
    (out / "notes.txt").write_text("the user's")
    first = json.loads((out / "report.json").read_text())
    assert run("blobs", "--sample", "-o", out, "--overwrite", "--threshold", "2000") == 0
    second = json.loads((out / "report.json").read_text())
    assert first["summary"]["count"] == 2 and second["summary"]["count"] == 0
    assert (out / "notes.txt").read_text() == "the user's"
    assert files_in(out) == set(output_files(second)) | {"notes.txt"}


def test_sequence_toy_writes_frame_lesions_tables_and_per_frame_heatmaps(tmp_path, mrml_scene):
    out = tmp_path / "out"
    assert run("spots", "--sample", "-o", out) == 0
    report = json.loads((out / "report.json").read_text())
    validate_report(report)
    assert report["input"]["kind"] == "sequence" and report["input"]["frames"] == 5
    assert [(lesion["frame"], lesion["box_px"]) for lesion in report["lesions"]] == [
        (1, [20, 10, 24, 14]),
        (3, [30, 10, 34, 14]),
    ]
    assert report["lesions"][0]["size_mm"] == pytest.approx([1.2, 1.2])
    assert report["probabilities"] == {"spot": pytest.approx(0.4)}
    assert (
        files_in(out)
        == set(output_files(report))
        == {
            "report.json",
            "lesions.csv",
            "boxes.mrk.json",
            "heatmap.nrrd",
            "frames.csv",
        }
    )
    findings = load_results(out)
    assert (
        findings.heatmap.shape == (5, 48, 64) and findings.heatmap[3, 11, 31] == 90 and findings.heatmap[1, 11, 31] == 0
    )
    assert findings.score_tables[0].values[:, 0].tolist() == [0, 255, 0, 255, 0]
    roi = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsROINode")
    storage = roi.CreateDefaultStorageNode()
    mrml_scene.AddNode(storage)
    storage.SetFileName(str(out / "boxes.mrk.json"))
    assert storage.ReadData(roi)
    center_ras, size_mm = findings.image.box_px_to_ras([20, 10, 24, 14])
    assert np.allclose(roi.GetCenter(), center_ras) and np.allclose(roi.GetSize(), size_mm)
    assert roi.GetNthControlPointDescription(0).startswith("frame 1")


def test_wrong_input_kind_is_refused_with_a_clear_message(tmp_path, capsys):
    write_nrrd(toy_detectors.blob_volume(), tmp_path / "blobs.nrrd")
    main(["spots", str(tmp_path / "blobs.nrrd"), "-o", str(tmp_path / "out"), "--progress", "json"])
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[-1]["exit_code"] == 2
    assert "is a volume, but the Moving spots (toy) detector needs a sequence or image" in events[-1]["message"]
    assert not (tmp_path / "out").exists()


def test_worker_process_finds_plug_ins_named_in_the_environment(tmp_path):
    env = {**os.environ, "LESIONDETECT_PLUGINS": "toy_detectors"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "Testing"), str(REPO / "LesionDetect"), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "LesionDetectLib.app.cli", "blobs", "--sample", "-o", str(tmp_path / "out")]
    result = subprocess.run([*command, "--progress", "json"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    done = json.loads(result.stdout.splitlines()[-1])
    assert done["event"] == "done" and done["lesions"] == 2


def test_no_platform_module_names_a_detector():
    """Outside detectors/<id>/ the core never names a specific detector, its measurements or its HU bands."""
    pattern = re.compile(
        r"calcium|agatston|arter(y|ies)|coronary|\bHU\b|hounsfield|hemorrhage|microbleed|stenosis", re.I
    )
    offenders = []
    for path in LIB.rglob("*.py"):
        if "detectors" in path.relative_to(LIB).parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(LIB)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_toys_findings_become_scene_nodes_by_input_kind(tmp_path, mrml_scene):
    """The volume toy's result folder → ROIs, table and heatmap; the sequence toy's → a browser over its frames."""
    from LesionDetectLib.scenarios import add_volume_node
    from LesionDetectLib.scene import show_findings

    assert run("blobs", "--sample", "-o", tmp_path / "blobs") == 0
    volume_node = add_volume_node(mrml_scene, toy_detectors.blob_volume())
    blobs = show_findings(mrml_scene, volume_node, load_results(tmp_path / "blobs"))
    assert len(blobs.roi_nodes) == 2 and blobs.table_node.GetNumberOfRows() == 2
    assert blobs.roi_nodes[0].GetDescription() == "score 1.00, 27 voxels, peak 900"  # the toy's own Column wording

    assert run("spots", "--sample", "-o", tmp_path / "spots") == 0
    findings = load_results(tmp_path / "spots")
    findings.image = toy_detectors.spot_sequence()  # the frames the panel would pass as the input node
    spots = show_findings(mrml_scene, None, findings)
    assert spots.browser_node is not None and spots.browser_node.GetNumberOfItems() == 5
    spots.browser_node.SetSelectedItemNumber(3)
    frame = slicer_array(spots.image_node)
    assert frame.max() == 255 and frame[0, 11, 31] == 255 and frame[0, 11, 21] == 0


def slicer_array(node):
    import slicer.util

    return slicer.util.arrayFromVolume(node)

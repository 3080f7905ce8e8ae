"""The `lesiondetect` CLI end to end: DICOM/NRRD/NIfTI in, report, CSV, markups, STL, PNG out."""

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from dicom_series import write_ct_series
from stl import mesh

from LesionDetectLib.app.cli import main
from LesionDetectLib.detectors.calcium.sample import make_sample
from LesionDetectLib.io.volume import Volume
from LesionDetectLib.io.volume_io import write_nrrd
from LesionDetectLib.results.report import validate_report

REPO = Path(__file__).resolve().parents[1]


def run_classical(scan, out, *options, snapshot=False) -> int:
    """The classical method in this process, quietly, without the snapshot unless asked: its exit code."""
    return main(
        ["calcium", "--method", "classical", str(scan), "-o", str(out), "--progress", "none", *map(str, options)]
        + ([] if snapshot else ["--no-snapshot"])
    )


def run_cli(*args):
    """The CLI as a user runs it: a separate process, JSON-lines progress on stdout."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "LesionDetect")}
    return subprocess.run(
        [sys.executable, "-m", "LesionDetectLib.app.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def small_ct(tmp_path_factory):
    """A 192×192×32 version of the bundled sample as NRRD, NIfTI and a DICOM series."""
    folder = tmp_path_factory.mktemp("inputs")
    volume, plaques, heart_mask = make_sample(shape_ijk=(192, 192, 32))
    write_nrrd(volume, folder / "ct.nrrd")
    image = sitk.ReadImage(str(folder / "ct.nrrd"))
    sitk.WriteImage(image, str(folder / "ct.nii.gz"))
    write_ct_series(volume, folder / "dicom")
    write_nrrd(Volume(heart_mask, volume.ijk_to_ras, "heart"), folder / "heart.nrrd")
    return folder, volume


def test_dicom_nrrd_and_nifti_give_the_same_valid_report(small_ct, tmp_path):
    folder, volume = small_ct
    reports = {}
    for name in ("dicom", "ct.nrrd", "ct.nii.gz"):
        out = tmp_path / name.replace(".", "_")
        assert run_classical(folder / name, out) == 0
        reports[name] = json.loads((out / "report.json").read_text())
        validate_report(reports[name])
    totals = {name: report["summary"]["agatston_total"] for name, report in reports.items()}
    assert totals["dicom"] > 0
    assert list(totals.values()) == pytest.approx([totals["dicom"]] * 3, rel=1e-6)  # NIfTI stores float32 spacing
    centers = [np.array([lesion["center_ras"] for lesion in report["lesions"]]) for report in reports.values()]
    assert all(np.allclose(c, centers[0], atol=1e-3) for c in centers)
    assert np.allclose(reports["dicom"]["input"]["ijk_to_ras"], volume.ijk_to_ras, atol=1e-4)


def test_outputs_are_complete_and_readable_by_other_tools(small_ct, tmp_path):
    folder, _ = small_ct
    out = tmp_path / "out"
    assert run_classical(folder / "ct.nrrd", out, "--region", str(folder / "heart.nrrd"), snapshot=True) == 0
    report = json.loads((out / "report.json").read_text())
    validate_report(report)
    assert report["summary"]["scope"] == "region" and report["lesions"]
    rows = list(csv.DictReader((out / "lesions.csv").open()))
    assert [float(row["agatston"]) for row in rows] == pytest.approx(
        [lesion["agatston"] for lesion in report["lesions"]]
    )
    combined = mesh.Mesh.from_file(str(out / "calcium.stl"))
    assert b"SPACE=LPS" in (out / "calcium.stl").read_bytes()[:80]
    per_lesion = [mesh.Mesh.from_file(str(out / lesion["stl"])) for lesion in report["lesions"]]
    assert len(combined.vectors) == sum(len(m.vectors) for m in per_lesion)
    for lesion, lesion_mesh in zip(report["lesions"], per_lesion):
        center_lps = np.array(lesion["center_ras"]) * [-1, -1, 1]
        points_lps = lesion_mesh.vectors.reshape(-1, 3)
        assert np.all(np.abs(points_lps.mean(axis=0) - center_lps) < np.array(lesion["size_mm"]))
    png = (out / "snapshot.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_stl_space_ras_on_request(small_ct, tmp_path):
    folder, _ = small_ct
    out = tmp_path / "ras"
    assert run_classical(folder / "ct.nrrd", out, "--stl-space", "RAS") == 0
    report = json.loads((out / "report.json").read_text())
    first = report["lesions"][0]
    points_ras = mesh.Mesh.from_file(str(out / first["stl"])).vectors.reshape(-1, 3)
    assert b"SPACE=RAS" in (out / first["stl"]).read_bytes()[:80]
    assert np.all(np.abs(points_ras.mean(axis=0) - first["center_ras"]) < np.array(first["size_mm"]))


def test_boxes_load_as_slicer_roi_markups(small_ct, tmp_path, mrml_scene):
    folder, _ = small_ct
    out = tmp_path / "out"
    assert run_classical(folder / "ct.nrrd", out) == 0
    report = json.loads((out / "report.json").read_text())
    roi = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsROINode")
    storage = roi.CreateDefaultStorageNode()
    mrml_scene.AddNode(storage)
    storage.SetFileName(str(out / "boxes.mrk.json"))
    assert storage.ReadData(roi)
    first = report["lesions"][0]
    assert np.allclose(roi.GetCenter(), first["center_ras"], atol=1e-3)
    assert np.allclose(roi.GetSize(), first["size_mm"], atol=1e-3)


def test_stl_is_manifold_for_a_3d_printing_slicer(small_ct, tmp_path):
    folder, _ = small_ct
    out = tmp_path / "out"
    assert run_classical(folder / "ct.nrrd", out) == 0
    info = subprocess.run(
        ["prusa-slicer", "--info", str(out / "calcium.stl")], capture_output=True, text=True, timeout=120
    )
    assert info.returncode == 0, info.stderr
    assert "manifold = yes" in info.stdout
    open_edges = [line for line in info.stdout.splitlines() if "open_edges" in line]
    assert all(line.split("=")[1].strip() == "0" for line in open_edges)


def test_json_progress_protocol(small_ct, tmp_path):
    folder, _ = small_ct
    result = run_cli(
        "calcium",
        "--method",
        "classical",
        folder / "ct.nrrd",
        "-o",
        tmp_path / "out",
        "--progress",
        "json",
        "--no-snapshot",
    )
    assert result.returncode == 0, result.stderr
    stream = events(result.stdout)
    assert stream[0]["event"] == "start" and stream[-1]["event"] == "done"
    fractions = [event["fraction"] for event in stream if event["event"] == "progress"]
    assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] == 1.0
    assert Path(stream[-1]["report"]).is_file() and stream[-1]["lesions"] > 0


def test_sigterm_cancels_and_leaves_no_partial_outputs(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO / "LesionDetect")}
    process = subprocess.Popen(
        [sys.executable, "-m", "LesionDetectLib.app.cli", "calcium", "--sample", "-o", str(out), "--progress", "json"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    for line in process.stdout:
        if '"progress"' in line:
            process.send_signal(signal.SIGTERM)
            break
    remaining = process.stdout.read()
    assert process.wait(timeout=60) == 130
    assert '"cancelled"' in remaining
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_results_are_refused_unless_overwrite(small_ct, tmp_path, capsys):
    folder, _ = small_ct
    out = tmp_path / "out"
    assert run_classical(folder / "ct.nrrd", out) == 0
    (out / "notes.txt").write_text("mine")
    before = {path.name: path.stat().st_mtime_ns for path in out.iterdir()}
    capsys.readouterr()
    assert run_classical(folder / "ct.nrrd", out) == 3
    assert "--overwrite" in capsys.readouterr().err, "a quiet run still says why it stopped"
    assert {path.name: path.stat().st_mtime_ns for path in out.iterdir()} == before
    assert run_classical(folder / "ct.nrrd", out, "--overwrite") == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "report.json").stat().st_mtime_ns != before["report.json"]


def test_write_sample_writes_the_detectors_bundled_sample(tmp_path):
    assert main(["calcium", "--write-sample", str(tmp_path / "sample.nrrd")]) == 0
    image = sitk.ReadImage(str(tmp_path / "sample.nrrd"))
    assert image.GetSize() == (512, 512, 64)
    assert main(["calcium", "--write-sample", str(tmp_path / "sample.nrrd")]) == 2  # never overwritten


def test_options_out_of_range_are_refused_before_running(small_ct, tmp_path):
    folder, _ = small_ct
    result = run_cli(
        "calcium", folder / "ct.nrrd", "-o", tmp_path / "out", "--threshold-hu", "20", "--progress", "json"
    )
    assert result.returncode == 2
    assert "--threshold-hu must be ≥ 100" in events(result.stdout)[-1]["message"]
    assert not (tmp_path / "out").exists()


def test_report_lists_every_file_it_wrote(small_ct, tmp_path):
    from LesionDetectLib.results.output_folder import output_files

    folder, _ = small_ct
    out = tmp_path / "out"
    assert run_classical(folder / "ct.nrrd", out, "--threshold-hu", "150", snapshot=True) == 0
    report = json.loads((out / "report.json").read_text())
    written = {str(path.relative_to(out)) for path in out.rglob("*") if path.is_file()}
    assert written == set(output_files(report)) and "snapshot.png" in written
    assert report["params"] == {"region": None, "threshold_hu": 150.0, "mass_calibration": 1.0}


def test_a_slicer_roi_file_restricts_the_count_like_the_roi_node(small_ct, tmp_path, mrml_scene):
    from LesionDetectLib.io.regions import roi_mask_from_markups_file
    from LesionDetectLib.scenarios import add_volume_node
    from LesionDetectLib.scene import region_mask_from_node

    folder, volume = small_ct
    full = tmp_path / "full"
    assert run_classical(folder / "ct.nrrd", full) == 0
    first = json.loads((full / "report.json").read_text())["lesions"][0]
    roi = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsROINode")
    roi.SetCenter(*first["center_ras"])
    roi.SetSize(*(np.array(first["size_mm"]) + 4.0))
    storage = roi.CreateDefaultStorageNode()
    mrml_scene.AddNode(storage)
    storage.SetFileName(str(tmp_path / "heart.mrk.json"))
    assert storage.WriteData(roi)
    node_mask = region_mask_from_node(roi, add_volume_node(mrml_scene, volume))
    assert np.array_equal(roi_mask_from_markups_file(tmp_path / "heart.mrk.json", volume), node_mask)
    out = tmp_path / "roi"
    assert run_classical(folder / "ct.nrrd", out, "--region", tmp_path / "heart.mrk.json") == 0
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["scope"] == "region"
    assert [lesion["center_ras"] for lesion in report["lesions"]] == [first["center_ras"]]


def test_main_in_slicers_process_leaves_its_numpy_and_heap_settings_alone(tmp_path):
    """The self-test calls `main` inside Slicer: only the `lesiondetect` program tunes the process."""
    multiarray = (getattr(np, "_core", None) or np.core).multiarray
    before = multiarray._set_madvise_hugepage(True)
    try:
        assert run_classical("--sample", tmp_path / "out") == 0
        assert multiarray._set_madvise_hugepage(True) is True  # still what this process chose
    finally:
        multiarray._set_madvise_hugepage(before)

"""The shipped microbleed model through the CLI on the bundled synthetic SWI: its file matches its manifest and
holds no feature-enhancement weights; it finds the sample's known microbleeds; --sensitivity and a phase volume
work; a phase off the input's grid, a multi-echo DICOM series and a CT are refused by name."""

import csv
import dataclasses
import json

import numpy as np
import pytest
from dicom_series import write_series
from safetensors import safe_open

from LesionDetectLib.app.cli import main as cli_main
from LesionDetectLib.detection.registry import get_detector
from LesionDetectLib.detection.weights import file_sha256
from LesionDetectLib.detectors.microbleed.model import DEFAULT_MANIFEST
from LesionDetectLib.detectors.microbleed.sample import SAMPLE_PATH, read_sample
from LesionDetectLib.io.volume_io import write_nrrd
from LesionDetectLib.results.report import validate_report

HIT_MM = 3.0
pytestmark = pytest.mark.skipif(not DEFAULT_MANIFEST.is_file(), reason="no microbleed model shipped yet (issue 12)")
RUN = ["--progress", "none", "--no-snapshot"]


def truth_centres() -> np.ndarray:
    return np.array(
        [m["center_ras_mm"] for m in json.loads(SAMPLE_PATH.with_suffix(".json").read_text())["microbleeds"]]
    )


def found(report: dict) -> int:
    """How many of the sample's microbleeds a report's lesions hit (centre within HIT_MM)."""
    centres = np.array([lesion["center_ras"] for lesion in report["lesions"]]).reshape(-1, 3)
    if not len(centres):
        return 0
    return int((np.linalg.norm(centres[:, None] - truth_centres()[None], axis=2) <= HIT_MM).any(axis=0).sum())


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("microbleed") / "out"
    assert cli_main(["microbleed", "--sample", "-o", str(out), *RUN]) == 0
    return out, json.loads((out / "report.json").read_text())


def test_shipped_weights_match_their_manifest_are_small_and_hold_no_feature_enhancement():
    manifest = json.loads(DEFAULT_MANIFEST.read_text())
    weights = DEFAULT_MANIFEST.parent / manifest["weights"]
    assert file_sha256(weights) == manifest["sha256"] and weights.stat().st_size <= 30 * 1024**2
    with safe_open(str(weights), "pt") as tensors:
        assert tensors.keys() and not [name for name in tensors.keys() if "enhance" in name]
    assert DEFAULT_MANIFEST.with_suffix(".md").is_file(), "the model card"
    assert get_detector("microbleed").default_method == "deep"


def test_cli_finds_the_samples_microbleeds_and_writes_every_file(sample_run):
    out, report = sample_run
    validate_report(report)
    assert found(report) >= len(truth_centres()) - 1, report["lesions"]
    assert report["summary"]["count"] == len(report["lesions"])
    assert report["summary"]["operating_point"]["sensitivity"] == 0.9
    assert all({"center_ras", "size_mm", "score"} <= set(lesion) for lesion in report["lesions"] + report["candidates"])
    threshold = report["summary"]["operating_point"]["score_threshold"]
    assert all(c["score"] < threshold <= lesion["score"] for c in report["candidates"] for lesion in report["lesions"])
    with open(out / "lesions.csv", newline="") as table:
        assert len(list(csv.DictReader(table))) == len(report["lesions"])
    boxes = json.loads((out / "boxes.mrk.json").read_text())
    assert len(boxes["markups"]) == len(report["lesions"])


def test_a_higher_sensitivity_keeps_every_microbleed_and_adds_candidates(sample_run, tmp_path):
    _, default = sample_run
    out = tmp_path / "wide"
    assert cli_main(["microbleed", "--sample", "--sensitivity", "0.99", "-o", str(out), *RUN]) == 0
    wide = json.loads((out / "report.json").read_text())
    assert wide["summary"]["operating_point"]["sensitivity"] == 0.99
    assert len(wide["lesions"]) + len(wide["candidates"]) == len(default["lesions"]) + len(default["candidates"])
    assert {tuple(lesion["center_ras"]) for lesion in default["lesions"]} <= {
        tuple(lesion["center_ras"]) for lesion in wide["lesions"]
    }


def test_magnitude_with_a_flat_phase_is_the_magnitude_and_a_phase_off_grid_is_refused(sample_run, tmp_path, capsys):
    _, default = sample_run
    sample = read_sample()
    write_nrrd(sample, tmp_path / "magnitude.nrrd")
    write_nrrd(dataclasses.replace(sample, array=np.zeros_like(sample.array)), tmp_path / "phase.nrrd")
    out = tmp_path / "swi"
    magnitude = ["microbleed", str(tmp_path / "magnitude.nrrd")]
    assert cli_main([*magnitude, "--phase", str(tmp_path / "phase.nrrd"), "-o", str(out), *RUN]) == 0
    assert json.loads((out / "report.json").read_text())["lesions"] == default["lesions"]

    write_nrrd(dataclasses.replace(sample, array=np.zeros_like(sample.array[:-1])), tmp_path / "short_phase.nrrd")
    refused = tmp_path / "refused"
    assert cli_main([*magnitude, "--phase", str(tmp_path / "short_phase.nrrd"), "-o", str(refused), *RUN]) == 2
    assert "not on the input's voxel grid" in capsys.readouterr().err
    assert not refused.exists()


def test_a_multi_echo_series_without_a_chosen_echo_and_a_ct_are_refused(tmp_path, capsys):
    series = tmp_path / "gre"
    for echo in (1, 2):
        write_series(
            series,
            series_uid="1.2.3.4",
            prefix=f"E{echo}_",
            modality="MR",
            hu_offset=100 * echo,
            tags={"EchoNumbers": echo, "EchoTime": 10.0 * echo},
        )
    assert cli_main(["microbleed", str(series), "-o", str(tmp_path / "a"), *RUN]) == 2
    assert "2 echoes" in capsys.readouterr().err
    write_series(tmp_path / "ct", modality="CT", hu_offset=-1000)
    assert cli_main(["microbleed", str(tmp_path / "ct"), "-o", str(tmp_path / "b"), *RUN]) == 2
    assert "CT" in capsys.readouterr().err

"""The shipped stenosis model through the CLI on the bundled synthetic cine: its file matches its manifest, holds
the attention module and is small; the run writes a valid report whose verdict is the sample's true label, with
key frames inside the sample's filled phase; one frame of it runs in frame mode."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
from safetensors import safe_open

from LesionDetectLib.app.cli import main as cli_main
from LesionDetectLib.detection.registry import get_detector
from LesionDetectLib.detection.weights import file_sha256
from LesionDetectLib.detectors.stenosis.model import DEFAULT_MANIFEST
from LesionDetectLib.detectors.stenosis.sample import SAMPLE_PATH, read_sample
from LesionDetectLib.results.report import validate_report

pytestmark = pytest.mark.skipif(not DEFAULT_MANIFEST.is_file(), reason="no stenosis model shipped yet (issue 11)")
RUN = ["--progress", "none"]  # a cine has no 3D snapshot
TRUTH = json.loads(SAMPLE_PATH.with_suffix(".json").read_text())


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stenosis") / "out"
    assert cli_main(["stenosis", "--sample", "-o", str(out), *RUN]) == 0
    return out, json.loads((out / "report.json").read_text())


def test_shipped_weights_match_their_manifest_are_small_and_hold_the_attention_module():
    manifest = json.loads(DEFAULT_MANIFEST.read_text())
    weights = DEFAULT_MANIFEST.parent / manifest["weights"]
    assert file_sha256(weights) == manifest["sha256"] and weights.stat().st_size <= 30 * 1024**2
    with safe_open(str(weights), "pt") as tensors:
        assert [name for name in tensors.keys() if name.startswith("attention.")]
    assert DEFAULT_MANIFEST.with_suffix(".md").is_file(), "the model card"
    assert get_detector("stenosis").default_method == "deep"


def test_the_sample_gets_its_true_verdict_from_key_frames_of_its_filled_phase(sample_run):
    out, report = sample_run
    validate_report(report)
    summary = report["summary"]
    assert summary["verdict"] == TRUTH["label"], summary
    assert {row["frame"] for row in summary["key_frames"]} <= set(TRUTH["filled_phase"])
    assert (out / "boxes.mrk.json").is_file() and report["lesions"]
    assert all(lesion["frame"] in TRUTH["filled_phase"] for lesion in report["lesions"])


def test_one_frame_of_the_sample_runs_in_frame_mode(sample_run, tmp_path):
    _, report = sample_run
    frame = report["summary"]["key_frames"][0]["frame"]
    iio.imwrite(tmp_path / "frame.png", read_sample().frames[frame].astype(np.uint8))  # its grey levels are 0…255
    out = tmp_path / "out"
    assert cli_main(["stenosis", str(tmp_path / "frame.png"), "-o", str(out), *RUN]) == 0
    one = json.loads((out / "report.json").read_text())
    validate_report(one)
    assert one["summary"]["mode"] == "frame" and len(one["summary"]["key_frames"]) == 1
    assert any("One frame was given" in warning for warning in one["warnings"])

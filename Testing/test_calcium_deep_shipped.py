"""The shipped calcium model: its file matches its manifest, and on an unseen synthetic scan it keeps
coronary calcium and drops the bone, aortic and valve calcium that the classical threshold counts."""

import json

import numpy as np
import pytest
from synthetic_cardiac_ct import make_case

from LesionDetectLib.app.cli import main as cli_main
from LesionDetectLib.detection.registry import get_detector
from LesionDetectLib.detectors.calcium.classical import CalciumParams, detect_calcium
from LesionDetectLib.detectors.calcium.deep import detect_calcium_deep
from LesionDetectLib.detectors.calcium.labels import ARTERIES, CORONARY_CODES
from LesionDetectLib.detectors.calcium.model import DEFAULT_MANIFEST, file_sha256, load_calcium_model
from LesionDetectLib.results.report import validate_report

UNSEEN_SEED = 9284  # not a training (1000–1039) or validation (5000–5003) seed; aortic calcium and coronary plaques
GATED_CONDITIONS = {"fov_mm": 200.0, "slice_thickness_mm": 3.0, "noise_hu": 20.0, "motion_blur_mm": 0.0}
PIXEL_SIZES_FOV_MM = (220.0, 400.0)  # 0.43 and 0.78 mm pixels on a 512 matrix


@pytest.fixture(scope="module")
def model():
    return load_calcium_model()


@pytest.fixture(scope="module")
def unseen_case():
    return make_case(UNSEEN_SEED, **GATED_CONDITIONS)


def test_shipped_weights_match_their_manifest_and_are_small():
    manifest = json.loads(DEFAULT_MANIFEST.read_text())
    weights = DEFAULT_MANIFEST.parent / manifest["weights"]
    assert file_sha256(weights) == manifest["sha256"]
    assert weights.stat().st_size <= 30 * 1024**2
    assert get_detector("calcium").default_method == "deep"


def coronary_total(case) -> float:
    """Agatston of the label map's coronary voxels, scored the clinical way."""
    region = np.isin(case.labels, list(CORONARY_CODES))
    return detect_calcium(case.volume, CalciumParams(region=region, surfaces=False)).summary["agatston_total"]


def test_deep_scores_the_coronary_calcium_and_not_the_rest(model, unseen_case):
    reference = coronary_total(unseen_case)
    deep = detect_calcium_deep(unseen_case.volume, model)
    classical = detect_calcium(unseen_case.volume, CalciumParams(region=deep.region.astype(bool), surfaces=False))
    assert reference > 0
    assert deep.summary["agatston_total"] == pytest.approx(reference, rel=0.1)
    assert classical.summary["agatston_total"] > 2 * reference  # the threshold alone counts aortic calcium and noise
    off_coronary = 0.0
    for lesion in deep.lesions:
        lo, hi = lesion.box_ijk
        inside = unseen_case.labels[lo[2] : hi[2] + 1, lo[1] : hi[1] + 1, lo[0] : hi[0] + 1]
        if not np.isin(inside, list(CORONARY_CODES)).any():
            off_coronary += lesion.measurements["agatston"]
        assert lesion.measurements["artery"] in ARTERIES
    assert off_coronary <= 0.02 * reference  # a noise speck may slip through; aortic calcium may not
    assert sum(deep.summary["per_artery"].values()) == pytest.approx(deep.summary["agatston_total"])
    assert any(entry["reason"].startswith("not coronary") for entry in deep.summary["excluded"])  # the detector's call


def test_heatmap_is_high_on_coronary_calcium_and_low_elsewhere(model, unseen_case):
    deep = detect_calcium_deep(unseen_case.volume, model)
    coronary = np.isin(unseen_case.labels, list(CORONARY_CODES))
    aortic_or_bone = np.isin(unseen_case.labels, [6, 7, 8])
    assert np.median(deep.heatmap[coronary]) >= 50
    assert np.percentile(deep.heatmap[aortic_or_bone], 95) < 50


def test_cli_sample_runs_the_deep_method_by_default(tmp_path):
    out = tmp_path / "out"
    assert cli_main(["calcium", "--sample", "-o", str(out), "--progress", "none", "--no-snapshot"]) == 0
    report = json.loads((out / "report.json").read_text())
    validate_report(report)
    assert report["method"] == "deep" and report["model"]["weights_sha256"] == load_calcium_model().sha256
    assert report["lesions"] and all(lesion["artery"] in ARTERIES for lesion in report["lesions"])
    assert report["outputs"]["heatmap"] == "heatmap.nrrd" and report["outputs"]["region"] == "region.nrrd"


@pytest.mark.xfail(
    strict=True,
    reason="issue 9, open: calcium-ssd-small-2 matches the totals (within 15 %) at 0.43 and 0.78 mm pixels, "
    "but calls one lesion of ≥ 5 points at one pixel size only",
)
def test_the_same_chest_at_two_pixel_sizes_gives_the_same_lesions(model):
    """mm-invariance: one seed's anatomy and plaques at 0.43 and 0.78 mm pixels; lesions matched by position."""
    found = {}
    for fov_mm in PIXEL_SIZES_FOV_MM:
        case = make_case(UNSEEN_SEED, **{**GATED_CONDITIONS, "fov_mm": fov_mm})
        deep = detect_calcium_deep(case.volume, model)
        found[fov_mm] = {
            "centres": np.array([lesion.center_ras for lesion in deep.lesions]).reshape(-1, 3),
            "agatston": [lesion.measurements["agatston"] for lesion in deep.lesions],
            "total": deep.summary["agatston_total"],
            "reference": coronary_total(case),
        }
    fine, coarse = (found[fov] for fov in PIXEL_SIZES_FOV_MM)
    assert fine["reference"] > 0 and len(fine["centres"]) > 0
    for total, reference in ((fine["total"], fine["reference"]), (coarse["total"], coarse["reference"])):
        assert total == pytest.approx(reference, rel=0.15)
    for centres, others, scores in (
        (fine["centres"], coarse["centres"], fine["agatston"]),
        (coarse["centres"], fine["centres"], coarse["agatston"]),
    ):
        for centre, agatston in zip(centres, scores):
            if agatston >= 5:  # a lesion worth 5 points or more is found at the other pixel size too
                assert np.linalg.norm(others - centre, axis=1).min() < 3.0

"""training/evaluate_calcium_real.py: its figures on made-up scores, and a run through the platform on a fake
COCA non-gated layout (no real data)."""

import json
import math
from types import SimpleNamespace

import pytest
from calcium_datasets import ReferenceScores
from evaluate_calcium import main as evaluate_main
from evaluate_calcium_real import (
    artery_agrees,
    predicted_per_artery,
    refused_record,
    scored_record,
    summarise_real,
)
from test_calcium_datasets import nongated_volume, two_patients, write_nongated_layout

from LesionDetectLib.detectors.calcium.classical import detect_calcium
from LesionDetectLib.detectors.calcium.heart_region import find_heart_region
from LesionDetectLib.detectors.calcium.options import CalciumParams


def reference(total, lm=0.0, lad=0.0, lcx=0.0, rca=0.0, row="") -> ReferenceScores:
    return ReferenceScores(total, {"LM": lm, "LAD": lad, "LCX": lcx, "RCA": rca}, row)


def arteries(lm=0.0, lad=0.0, lcx=0.0, rca=0.0) -> dict:
    return {"LM": lm, "LAD": lad, "LCX": lcx, "RCA": rca}


def made_up_set() -> list[dict]:
    """Five patients like the real set (totals 0, 300, 1043, 733, 0), one refused, with known predictions."""
    return [
        scored_record("1", reference(0), 4, arteries(lm=4)),  # 1-10 vs 0: wrong category, but < 10
        scored_record("2", reference(300, 132, 1.91, 128, 37.5), 350, arteries(150, 20, 50, 130)),  # LM, LAD within
        scored_record("3", reference(1043, 260, 612, 52.4, 119), 2000, arteries(300, 1500, 0, 200)),  # LM within
        refused_record("4", reference(732.78, 0, 452.76, 0, 280.02), "pixel size 0.75 mm is outside 0.31–0.47 mm"),
        scored_record("5", reference(0), 12, arteries(rca=12)),  # 11-100 vs 0, and not < 10
    ]


def test_artery_agreement_is_half_the_reference_or_25_points():
    assert artery_agrees(100, 150) and artery_agrees(100, 50) and not artery_agrees(100, 150.5)
    assert artery_agrees(10, 35) and not artery_agrees(10, 35.5)
    assert artery_agrees(0, 25) and not artery_agrees(0, 26)


def test_set_figures_on_made_up_scores():
    summary = summarise_real(made_up_set())
    assert summary["patients"] == 5 and summary["scored"] == 4 and summary["refused"] == ["4"]
    assert summary["category_agreement"] == {"agree": 2, "of": 5, "fraction": 0.4}  # patients 2 and 3
    # ranks of the reference totals (0, 300, 1043, 0) → 1.5, 3, 4, 1.5; of the predicted (4, 350, 2000, 12) → 1, 3, 4, 2
    assert summary["spearman_totals"]["rho"] == pytest.approx(math.sqrt(0.9))
    assert summary["spearman_totals"]["patients"] == 4
    # within: patient 1 all 4, patient 2 LM and LAD, patient 3 LM, patient 5 all 4; the refused one's 4 count as misses
    assert summary["artery_within_50pct_or_25"] == {"within": 11, "of": 20, "fraction": 0.55}
    assert summary["zero_calcium_below_10"] == {"below": 1, "of": 2, "refused": 0}
    assert summary["total_abs_difference_mean"] == pytest.approx((4 + 50 + 957 + 12) / 4)


def test_refused_patients_are_never_scored_zero():
    records = [refused_record("1", reference(0), "no"), refused_record("2", reference(300, lm=300), "no")]
    assert records[0]["predicted"] is None and records[0]["status"] == "refused" and records[0]["message"] == "no"
    summary = summarise_real(records)
    assert summary["category_agreement"]["agree"] == 0  # a refused zero-calcium scan is not "category 0"
    assert summary["zero_calcium_below_10"] == {"below": 0, "of": 1, "refused": 1}
    assert summary["spearman_totals"]["rho"] is None and summary["total_abs_difference_mean"] is None
    assert summary["artery_within_50pct_or_25"]["fraction"] == 0.0


def test_a_method_without_arteries_has_no_artery_figure():
    records = [scored_record(str(n), reference(t), p, None) for n, (t, p) in enumerate([(0, 0), (50, 70), (500, 300)])]
    summary = summarise_real(records)
    assert summary["artery_within_50pct_or_25"]["fraction"] is None
    assert summary["category_agreement"]["agree"] == 2 and summary["spearman_totals"]["rho"] == pytest.approx(1.0)


def test_predicted_arteries_come_from_the_summary_or_are_not_given():
    lesions = [SimpleNamespace(measurements={"agatston": 5.0})]
    with_lad = SimpleNamespace(summary={"per_artery": {"LAD": 7.5}}, lesions=lesions)
    assert predicted_per_artery(with_lad, "deep") == arteries(lad=7.5)
    nothing = SimpleNamespace(summary={"per_artery": None}, lesions=[])
    assert predicted_per_artery(nothing, "deep") == arteries()  # the deep method found no coronary calcium
    assert predicted_per_artery(SimpleNamespace(summary={"per_artery": None}, lesions=lesions), "classical") is None


def test_evaluation_runs_the_platform_on_each_patient_and_reports_a_refusal(tmp_path):
    volumes = two_patients()
    volumes["3"] = nongated_volume()
    volumes["3"].array[:] = 40  # no air: not CT in HU, which the calcium detector refuses
    root = tmp_path / "deidentified_nongated"
    write_nongated_layout(root, volumes)
    out = tmp_path / "out"
    assert evaluate_main(["--nongated", str(root), "--method", "classical", "--device", "cpu", "--out", str(out)]) == 0
    written = json.loads((out / "metrics.json").read_text())
    assert (out / "totals.png").stat().st_size > 1000
    first, second, third = written["patients"]
    assert [first["status"], second["status"], third["status"]] == ["scored", "scored", "refused"]
    assert first["predicted"]["total"] == 0.0 and first["category_agrees"]
    expected = detect_calcium(volumes["2"], CalciumParams(surfaces=False)).summary["agatston_total"]
    assert expected > 0 and second["predicted"]["total"] == pytest.approx(expected, rel=1e-6)
    assert second["reference"]["per_artery"]["LM"] == 132 and second["predicted"]["per_artery"] is None
    assert third["predicted"] is None and "does not look like CT" in third["message"]
    assert second["scan"] == {"slices": 5, "pixel_mm": [0.7, 0.7], "slice_mm": 5.0}
    summary = written["summary"]
    assert summary["method"] == "classical" and summary["refused"] == ["3"]
    assert summary["zero_calcium_below_10"] == {"below": 1, "of": 1, "refused": 0}  # patient 3's row 3A is 1043


def test_weights_with_the_classical_method_are_refused(tmp_path):
    with pytest.raises(SystemExit):
        evaluate_main(["--nongated", str(tmp_path), "--method", "classical", "--weights", "m.json", "--out", "x"])


def test_classical_inside_the_found_heart_region(tmp_path):
    volumes = two_patients()
    root = tmp_path / "deidentified_nongated"
    write_nongated_layout(root, volumes)
    out = tmp_path / "out"
    args = ["--nongated", str(root), "--method", "classical", "--heart-region", "--device", "cpu", "--out", str(out)]
    assert evaluate_main(args) == 0
    written = json.loads((out / "metrics.json").read_text())
    assert written["summary"]["method"] == "classical in the heart region"
    region = find_heart_region(volumes["2"]).mask
    expected = detect_calcium(volumes["2"], CalciumParams(surfaces=False, region=region)).summary["agatston_total"]
    assert written["patients"][1]["predicted"]["total"] == pytest.approx(expected, rel=1e-6)

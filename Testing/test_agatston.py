"""Agatston, volume and mass scores on phantoms whose scores are known by construction."""

import pytest
from phantoms import ct_volume

from LesionDetectLib.detectors.calcium.agatston import agatston_category, agatston_weight, cac_drs
from LesionDetectLib.detectors.calcium.classical import CalciumParams, detect_calcium


def square_lesion(volume, k, j0, i0, side, hu):
    volume.array[k, j0 : j0 + side, i0 : i0 + side] = hu


def test_one_square_on_one_3mm_slice_scores_area_times_weight():
    volume = ct_volume((5, 64, 64), (0.5, 0.5, 3.0))
    square_lesion(volume, 2, 20, 20, 10, 250)  # 10×10 px of 0.25 mm² = 25 mm², weight 2
    findings = detect_calcium(volume, CalciumParams(surfaces=False))
    assert len(findings.lesions) == 1
    lesion = findings.lesions[0].measurements
    assert lesion["agatston"] == pytest.approx(50.0)
    assert lesion["volume_mm3"] == pytest.approx(100 * 0.25 * 3.0)
    assert lesion["mass_mg"] == pytest.approx(1.0 * 250 * 100 * 0.75 / 1000.0)
    assert lesion["peak_hu"] == 250 and lesion["slices"] == [2, 2]
    assert findings.summary["category"] == "11-100" and findings.summary["cac_drs"] == "A1"


def test_two_lesions_in_different_weight_bands():
    volume = ct_volume((5, 64, 64), (0.5, 0.5, 3.0))
    square_lesion(volume, 1, 5, 5, 4, 150)  # 4 mm², weight 1
    square_lesion(volume, 3, 40, 40, 8, 450)  # 16 mm², weight 4
    findings = detect_calcium(volume, CalciumParams(surfaces=False))
    scores = sorted(lesion.measurements["agatston"] for lesion in findings.lesions)
    assert scores == pytest.approx([4.0, 64.0])
    assert findings.summary["agatston_total"] == pytest.approx(68.0)


def test_thin_slices_are_scaled_by_thickness_over_3mm():
    thick = ct_volume((5, 64, 64), (0.5, 0.5, 3.0))
    square_lesion(thick, 2, 20, 20, 10, 350)
    thin = ct_volume((10, 64, 64), (0.5, 0.5, 1.5))
    square_lesion(thin, 4, 20, 20, 10, 350)
    square_lesion(thin, 5, 20, 20, 10, 350)
    thick_score = detect_calcium(thick, CalciumParams(surfaces=False)).summary["agatston_total"]
    thin_score = detect_calcium(thin, CalciumParams(surfaces=False)).summary["agatston_total"]
    assert thick_score == pytest.approx(75.0)
    assert thin_score == pytest.approx(thick_score)


def test_pieces_under_1mm2_do_not_count_and_peak_sets_the_weight():
    volume = ct_volume((5, 64, 64), (0.5, 0.5, 3.0))
    volume.array[1, 10, 10:13] = 900  # 0.75 mm²: below the minimum area
    square_lesion(volume, 3, 30, 30, 4, 140)  # 4 mm² at 140 HU ...
    volume.array[3, 31, 31] = 420  # ... with one voxel at 420 HU: weight 4
    findings = detect_calcium(volume, CalciumParams(surfaces=False))
    assert len(findings.lesions) == 1
    assert findings.lesions[0].measurements["agatston"] == pytest.approx(16.0)


def test_mass_uses_the_calibration_factor():
    volume = ct_volume((5, 64, 64), (0.5, 0.5, 3.0))
    square_lesion(volume, 2, 20, 20, 4, 500)
    mass = detect_calcium(volume, CalciumParams(mass_calibration=0.8, surfaces=False)).summary["mass_mg_total"]
    assert mass == pytest.approx(0.8 * 500 * 16 * 0.75 / 1000.0)


def test_weight_bands():
    assert agatston_weight([130, 199, 200, 299, 300, 399, 400, 1500]).tolist() == [1, 1, 2, 2, 3, 3, 4, 4]


@pytest.mark.parametrize(
    "total, category, grade",
    [
        (0, "0", "A0"),
        (0.4, "1-10", "A1"),
        (10, "1-10", "A1"),
        (10.5, "11-100", "A1"),
        (99.9, "11-100", "A1"),
        (100, "11-100", "A2"),
        (101, "101-400", "A2"),
        (300, "101-400", "A3"),
        (400, "101-400", "A3"),
        (400.1, ">400", "A3"),
    ],
)
def test_category_boundaries(total, category, grade):
    assert agatston_category(total) == category
    assert cac_drs(total) == grade

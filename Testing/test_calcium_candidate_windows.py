"""Candidate windows of the deep calcium path: every piece the Agatston rules can score is looked at, in mm.

A phantom slice drawn in millimetres (specks, a dense 150 mm² plaque, a long arc, a sub-millimetre
dot) is rasterised at 0.4 mm and 1.0 mm pixels; the windows must cover every ≥ 1 mm² piece at both
pixel sizes, skip what cannot score, and sit at the same places and sizes on the patient.
"""

import numpy as np
import pytest

from LesionDetectLib.detectors.calcium.candidate_windows import WINDOW_MM, large_pieces, piece_windows

FIELD_MM = 160.0
SPECKS_MM = [(30.0, 30.0), (30.0, 60.0), (45.0, 110.0), (120.0, 40.0)]  # 1.5 mm squares: 2.25 mm²
SPECK_SIDE_MM = 1.5
DENSE_CENTRE_MM, DENSE_RADIUS_MM = (80.0, 80.0), 7.0  # ≈ 154 mm²
ARC_ROW_MM, ARC_COLS_MM = 130.0, (70.0, 120.0)  # 50 mm long, 2 mm wide: larger than the largest window
DOT_MM = (100.0, 140.0)  # one 0.4 mm pixel: 0.16 mm², below the Agatston minimum


def phantom_slice(pixel_mm: float) -> np.ndarray:
    """bool (1, j, i): calcium pixels of the phantom, a pixel being in an object when its centre is."""
    n = int(round(FIELD_MM / pixel_mm))
    centres = (np.arange(n) + 0.5) * pixel_mm
    rows, cols = np.meshgrid(centres, centres, indexing="ij")
    calcium = np.zeros((n, n), dtype=bool)
    half = SPECK_SIDE_MM / 2
    for row, col in SPECKS_MM:
        calcium |= (np.abs(rows - row) <= half) & (np.abs(cols - col) <= half)
    calcium |= np.hypot(rows - DENSE_CENTRE_MM[0], cols - DENSE_CENTRE_MM[1]) <= DENSE_RADIUS_MM
    calcium |= (np.abs(rows - ARC_ROW_MM) <= 1.0) & (cols >= ARC_COLS_MM[0]) & (cols <= ARC_COLS_MM[1])
    if pixel_mm < 0.5:
        dot = tuple(int(v // pixel_mm) for v in DOT_MM)
        calcium[dot] = True
    return calcium[None]


def covered(shape_kji, windows) -> np.ndarray:
    """bool (k, j, i): pixels whose centres lie inside a window of their slice."""
    mask = np.zeros(shape_kji, dtype=bool)
    rows, cols = np.meshgrid(np.arange(shape_kji[1]) + 0.5, np.arange(shape_kji[2]) + 0.5, indexing="ij")
    for window in windows:
        j0, i0, j1, i1 = window.box_ji()
        mask[window.k] |= (rows >= j0) & (rows <= j1) & (cols >= i0) & (cols <= i1)
    return mask


@pytest.mark.parametrize("pixel_mm", [0.4, 1.0])
def test_every_scorable_piece_is_inside_a_window(pixel_mm):
    calcium = phantom_slice(pixel_mm)
    windows = piece_windows(calcium, pixel_mm)
    scorable = large_pieces(calcium[0], pixel_mm)
    assert scorable.sum() > 0.9 * calcium.sum()  # the phantom's pieces are all ≥ 1 mm² (the dot aside)
    assert covered(calcium.shape, windows)[0][scorable].all()
    sides_mm = np.array([w.side_px for w in windows]) * pixel_mm
    assert sides_mm.min() >= WINDOW_MM[0] - 1e-6 and sides_mm.max() <= WINDOW_MM[1] + 1e-6


def test_each_small_piece_gets_a_window_centred_on_it():
    pixel_mm = 0.4
    windows = piece_windows(phantom_slice(pixel_mm), pixel_mm)
    centres_mm = np.array([w.center_ji for w in windows]) * pixel_mm
    for speck in [*SPECKS_MM, DENSE_CENTRE_MM]:
        assert np.hypot(*(centres_mm - speck).T).min() < 1.0


def test_a_piece_below_one_square_millimetre_gets_no_window():
    pixel_mm = 0.4
    calcium = phantom_slice(pixel_mm)
    dot = tuple(int(v // pixel_mm) for v in DOT_MM)
    assert calcium[(0, *dot)] and not large_pieces(calcium[0], pixel_mm)[dot]
    assert not covered(calcium.shape, piece_windows(calcium, pixel_mm))[(0, *dot)]


def test_windows_are_the_same_on_the_patient_at_two_pixel_sizes():
    placed = {}
    for pixel_mm in (0.4, 1.0):
        windows = piece_windows(phantom_slice(pixel_mm), pixel_mm)
        placed[pixel_mm] = sorted(
            (round(w.center_ji[0] * pixel_mm), round(w.center_ji[1] * pixel_mm), w.side_px * pixel_mm) for w in windows
        )
    fine, coarse = (np.array(placed[p], dtype=float) for p in (0.4, 1.0))
    assert len(fine) == len(coarse) == len(SPECKS_MM) + 1 + 3  # four specks, the plaque, three tiles of the arc
    np.testing.assert_allclose(fine[:, :2], coarse[:, :2], atol=2.0)  # centres, mm
    np.testing.assert_allclose(fine[:, 2], coarse[:, 2], atol=2.5)  # sides, mm (the extent rounds to a pixel)


def test_close_pieces_share_one_window():
    pixel_mm = 0.5
    calcium = np.zeros((1, 100, 100), dtype=bool)
    calcium[0, 40:43, 40:43] = calcium[0, 40:43, 45:48] = True  # 1 mm apart
    calcium[0, 80:83, 80:83] = True  # far away
    windows = piece_windows(calcium, pixel_mm)
    assert len(windows) == 2
    assert covered(calcium.shape, windows)[calcium].all()


def test_an_empty_mask_gives_no_windows():
    assert piece_windows(np.zeros((3, 40, 40), dtype=bool), 0.5) == []


def test_a_dense_plaque_beyond_the_classical_bone_limit_is_still_looked_at():
    """A 2.4 mL plaque inside the region: the classical path's 1.5 mL bone limit drops it, the deep path does not."""
    from LesionDetectLib.detectors.calcium.candidate_windows import component_windows
    from LesionDetectLib.detectors.calcium.candidates import find_candidates
    from LesionDetectLib.detectors.calcium.deep import deep_candidates
    from LesionDetectLib.detectors.calcium.options import CalciumParams
    from LesionDetectLib.io.volume import Volume

    hu = np.full((10, 120, 120), 40, dtype=np.int16)
    hu[4:7, 40:80, 40:80] = 900  # 3 slices of 2 mm × 20 mm × 20 mm
    volume = Volume(hu, np.diag([0.5, 0.5, 2.0, 1.0]), modality="CT")
    params = CalciumParams()
    plaque = hu >= 130
    assert find_candidates(volume, params.threshold_hu, params.bone).kept == []
    windows = component_windows(deep_candidates(volume, params), np.ones(hu.shape, dtype=bool), volume.spacing)
    assert covered(hu.shape, windows)[plaque].all()

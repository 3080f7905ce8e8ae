"""ACF channels, the numpy tree evaluator, the safetensors round trip and proposals on the sample phantom."""

import time

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from train_acf import case_blocks, fit_acf, save_acf, trees_from_sklearn, window_mask

from LesionDetectLib.detectors.calcium.acf import load_acf, score_map, windows_from_scores
from LesionDetectLib.detectors.calcium.acf_channels import (
    CHANNELS,
    HU_BANDS,
    N_FEATURES,
    aggregate,
    block_features,
    pixel_channels,
    scored_blocks,
    window_features,
)
from LesionDetectLib.detectors.calcium.heart_region import find_heart_region
from LesionDetectLib.detectors.calcium.sample import make_sample

ARTERY_CODES = {"LM": 1, "LAD": 2, "LCX": 3, "RCA": 4}
BONE = 8


def sample_labels(volume, plaques) -> np.ndarray:
    """Structure codes of the sample's voxels ≥ 130 HU: the plaque's artery within 1.5 mm of it, else bone."""
    labels = np.where(volume.array >= 130, BONE, 0).astype(np.uint8)
    k, j, i = np.nonzero(labels)
    lps = volume.ijk_to_ras_points(np.stack([i, j, k], axis=1)) * [-1, -1, 1]
    for plaque in plaques:
        inside = (((lps - plaque.center_lps) / (np.array(plaque.radii_mm) + 1.5)) ** 2).sum(axis=1) <= 1
        labels[k[inside], j[inside], i[inside]] = ARTERY_CODES[plaque.artery]
    return labels


@pytest.fixture(scope="module")
def sample():
    volume, plaques, _ = make_sample(shape_ijk=(256, 256, 32))
    return volume, plaques, sample_labels(volume, plaques), find_heart_region(volume).mask


@pytest.fixture(scope="module")
def trained(sample):
    """A tiny model: trained on every bright block (the heart region leaves no bone), validated in the region."""
    volume, _, labels, region = sample
    return fit_acf([(volume, labels, None)], [(volume, labels, region)], max_iter=20, max_depth=2)


def test_channels_have_one_plane_per_channel_and_blocks_sum_them():
    rng = np.random.default_rng(1)
    slice_hu = rng.normal(0, 400, (22, 27)).astype(np.float32)
    channels = pixel_channels(slice_hu, pixel_mm=0.5)
    assert channels.shape == (CHANNELS, 22, 27) and channels.dtype == np.float32
    sums = aggregate(channels, shrink=4)
    assert sums.shape == (CHANNELS, 5, 6)
    direct = [[channels[:, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4].sum(axis=(1, 2)) for c in range(6)] for r in range(5)]
    assert np.allclose(sums, np.moveaxis(np.array(direct), -1, 0), rtol=1e-5, atol=1e-4)


def test_band_channels_count_pixels_in_their_hu_band():
    slice_hu = np.array([[150.0, 500.0, 900.0, -100.0, 40.0, -800.0]])
    bands = pixel_channels(slice_hu, pixel_mm=0.5)[: len(HU_BANDS)]
    assert np.array_equal(bands, np.eye(len(HU_BANDS), dtype=np.float32)[:, None, :])


def test_only_blocks_with_a_calcium_pixel_in_the_region_are_scored():
    slice_hu = np.full((32, 32), 40.0)
    slice_hu[5, 5] = 200.0  # block (1, 1)
    slice_hu[20, 30] = 400.0  # block (5, 7), outside the region below
    region = np.zeros((32, 32), dtype=bool)
    region[:16, :16] = True
    assert np.argwhere(scored_blocks(slice_hu, None, 4)).tolist() == [[1, 1], [5, 7]]
    features, blocks = block_features(slice_hu, 0.5, region, shrink=4)
    assert blocks.tolist() == [[1, 1]] and features.shape == (1, N_FEATURES)


def test_features_on_the_cropped_box_equal_features_on_the_whole_slice(sample):
    volume, _, _, _ = sample
    slice_hu = volume.array[16]
    features, blocks = block_features(slice_hu, 0.78, shrink=4)
    whole = aggregate(pixel_channels(slice_hu, 0.78), 4) / 16
    assert len(blocks) > 0
    assert np.allclose(features, window_features(whole, blocks), atol=1e-5)


def test_numpy_trees_agree_with_scikit_learn():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 12)).astype(np.float32)
    y = (X[:, 0] + X[:, 3] * X[:, 5] + rng.normal(0, 0.5, 400)) > 0.3
    model = HistGradientBoostingClassifier(max_iter=25, max_depth=3, random_state=0).fit(X, y)
    trees = trees_from_sklearn(model)
    X_new = rng.normal(size=(300, 12)).astype(np.float32)
    assert np.allclose(trees.score(X_new), model.predict_proba(X_new)[:, 1], atol=1e-10)
    assert np.allclose(trees.score(X), model.predict_proba(X)[:, 1], atol=1e-10)


def test_trees_round_trip_through_safetensors(tmp_path, trained):
    trees, threshold, _ = trained
    path = tmp_path / "acf.safetensors"
    save_acf(trees, threshold, path, shrink=4)
    loaded, loaded_threshold, shrink = load_acf(path)
    X = np.random.default_rng(3).normal(size=(50, N_FEATURES)).astype(np.float32)
    assert np.array_equal(loaded.score(X), trees.score(X))
    assert loaded_threshold == threshold and shrink == 4
    for name, array in trees.to_arrays().items():
        assert np.array_equal(loaded.to_arrays()[name], array)


def test_training_blocks_score_like_the_inference_map(sample, trained):
    volume, _, labels, region = sample
    trees, _, _ = trained
    assert np.array_equal(case_blocks(volume, labels, region, 4).score_map(trees), score_map(volume, trees, region, 4))


def test_tiny_model_proposes_windows_around_every_plaque_and_scores_few_blocks(sample, trained):
    volume, plaques, _, region = sample
    trees, threshold, stats = trained
    started = time.perf_counter()
    scores = score_map(volume, trees, region)
    candidates = windows_from_scores(scores, threshold, float(np.mean(volume.spacing[:2])))
    seconds = time.perf_counter() - started
    covered = window_mask(volume.array.shape, candidates)
    centers_ras = np.array([plaque.center_lps for plaque in plaques]) * [-1, -1, 1]
    i, j, k = np.rint(volume.ras_to_ijk_points(centers_ras)).astype(int).T
    assert covered[k, j, i].all()
    assert stats["recall_3d"] == 1.0 and stats["found_3d"] == len(plaques) and stats["recall_2d"] == 1.0
    fraction_scored = np.count_nonzero(scores) / scores.size
    assert fraction_scored < 0.01
    assert np.count_nonzero(covered) < 0.05 * covered.size  # the windows show a small part of the volume
    pixel_mm = float(volume.spacing[0])
    assert all(8.0 / pixel_mm - 1e-6 <= c.side_px <= 40.0 / pixel_mm + 1e-6 for c in candidates)
    print(f"scored blocks {fraction_scored:.4%}, windows cover {covered.mean():.3%}, {len(candidates)} windows")
    print(f"score map and windows: {seconds:.2f} s for {len(scores)} slices")


def test_a_large_group_is_tiled_with_the_largest_windows():
    scores = np.zeros((1, 64, 64), dtype=np.float32)
    scores[0, 10:50, 12:20] = 0.9  # 40×8 blocks of 4 px at 0.5 mm: 80 × 16 mm
    scores[0, 60, 60] = 0.8  # one block: 2 mm → the smallest window
    candidates = windows_from_scores(scores, 0.5, pixel_mm=0.5, shrink=4, window_mm=(8.0, 40.0))
    sides = sorted(c.side_px for c in candidates)
    assert sides[0] == pytest.approx(16.0)  # 8 mm
    assert all(side == pytest.approx(80.0) for side in sides[1:]) and len(sides) >= 3
    covered = window_mask((1, 256, 256), candidates)
    assert covered[0, 40:200, 48:80].all()
    assert [c.score for c in candidates if c.side_px == pytest.approx(16.0)] == [pytest.approx(0.8)]

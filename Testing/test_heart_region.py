"""Heart region from anatomy on the sample phantom: small and full-chest fields of view, no lungs, orientation."""

import time

import numpy as np
import pytest
from scipy import ndimage

from LesionDetectLib.detectors.calcium.heart_region import find_heart_region
from LesionDetectLib.detectors.calcium.sample import make_sample
from LesionDetectLib.io.volume import Volume

SHAPE_IJK = (256, 256, 32)


@pytest.fixture(scope="module")
def sample():
    return make_sample(shape_ijk=SHAPE_IJK)


def voxel_lps(volume: Volume) -> np.ndarray:
    """(k, j, i, 3) LPS centres of the voxels."""
    k, j, i = np.indices(volume.array.shape)
    ijk = np.stack([i, j, k], axis=-1).reshape(-1, 3)
    return (volume.ijk_to_ras_points(ijk) * [-1, -1, 1]).reshape(*volume.array.shape, 3)


def spine_and_rib_voxels(volume: Volume, heart_mask: np.ndarray) -> np.ndarray:
    """Voxels ≥ 130 HU outside the heart and behind the sternum: the phantom's spine and ribs."""
    behind_sternum = voxel_lps(volume)[..., 1] > -85.0
    return (volume.array >= 130) & behind_sternum & ~heart_mask.astype(bool)


def plaque_voxels(volume: Volume, plaques) -> tuple[np.ndarray, ...]:
    centers_ras = np.array([p.center_lps for p in plaques]) * [-1, -1, 1]
    i, j, k = np.rint(volume.ras_to_ijk_points(centers_ras)).astype(int).T
    return k, j, i


def padded(volume: Volume, tissue_px: int, air_px: int) -> Volume:
    """The volume in a wider field of view: a ring of soft tissue (closing the body), then outside air."""
    array = np.pad(volume.array, ((0, 0), (tissue_px, tissue_px), (tissue_px, tissue_px)), constant_values=40)
    array = np.pad(array, ((0, 0), (air_px, air_px), (air_px, air_px)), constant_values=-1000)
    ijk_to_ras = volume.ijk_to_ras.copy()
    ijk_to_ras[:3, 3] -= ijk_to_ras[:3, :2] @ np.array([tissue_px + air_px] * 2)
    return Volume(array, ijk_to_ras, modality="CT")


def assert_covers_heart(region, volume, plaques, heart_mask):
    heart = heart_mask.astype(bool)
    assert region.found, region.note
    assert np.count_nonzero(region.mask & heart) >= 0.95 * np.count_nonzero(heart)
    assert region.mask[plaque_voxels(volume, plaques)].all()
    bone = spine_and_rib_voxels(volume, heart_mask)
    assert np.count_nonzero(region.mask & bone) < 0.05 * np.count_nonzero(bone)


def test_small_field_of_view_region_covers_heart_and_plaques_not_spine(sample):
    volume, plaques, heart_mask = sample
    started = time.perf_counter()
    region = find_heart_region(volume)
    seconds = time.perf_counter() - started
    assert_covers_heart(region, volume, plaques, heart_mask)
    assert region.mask.shape == volume.array.shape and region.mask.dtype == bool
    assert region.mask.mean() < 0.7  # lungs, chest wall and spine are left out
    center_lps = region.center_ras * [-1, -1, 1]
    assert np.linalg.norm(center_lps[:2] - np.array([-5.0, -15.0])) < 25.0
    assert seconds < 2.0


def test_full_chest_field_of_view_with_outside_air(sample):
    volume, plaques, heart_mask = sample
    wide = padded(volume, tissue_px=10, air_px=40)
    wide_heart = np.pad(heart_mask, ((0, 0), (50, 50), (50, 50)))
    region = find_heart_region(wide)
    assert_covers_heart(region, wide, plaques, wide_heart)
    outside_air = wide.array < -950
    assert np.count_nonzero(region.mask & outside_air) == 0


def test_padding_outside_the_reconstruction_circle_is_ignored(sample):
    volume, plaques, heart_mask = sample
    circled = Volume(volume.array.copy(), volume.ijk_to_ras, modality="CT")
    j, i = np.indices(volume.array.shape[1:])
    radius = volume.array.shape[2] / 2
    circled.array[:, np.hypot(j - radius + 0.5, i - radius + 0.5) > radius] = -2048
    region = find_heart_region(circled)
    assert_covers_heart(region, circled, plaques, heart_mask)


def test_rows_stored_the_other_way_give_the_same_region(sample):
    volume, _, _ = sample
    flipped_matrix = volume.ijk_to_ras.copy()
    rows = volume.array.shape[1]
    flipped_matrix[:3, 3] += flipped_matrix[:3, 1] * (rows - 1)
    flipped_matrix[:3, 1] *= -1
    flipped = find_heart_region(Volume(volume.array[:, ::-1], flipped_matrix, modality="CT"))
    region = find_heart_region(volume)
    assert flipped.found
    differ = flipped.mask[:, ::-1] ^ region.mask  # the coarse grid's blocks start at the other edge
    assert np.count_nonzero(differ) < 0.05 * np.count_nonzero(region.mask)
    spacing_kji = volume.spacing[::-1]
    to_boundary = np.where(
        region.mask,
        ndimage.distance_transform_edt(region.mask, sampling=spacing_kji),
        ndimage.distance_transform_edt(~region.mask, sampling=spacing_kji),
    )
    assert to_boundary[differ].max() < 10.0
    assert np.allclose(flipped.center_ras, region.center_ras, atol=2.0)


def test_without_lungs_falls_back_to_the_whole_body(sample):
    volume, _, _ = sample
    no_lungs = Volume(np.where(volume.array < -400, 40, volume.array).astype(np.int16), volume.ijk_to_ras)
    region = find_heart_region(no_lungs)
    assert not region.found
    assert "no lungs" in region.note and "whole body" in region.note
    assert region.mask.all()


@pytest.mark.parametrize("seed", [5, 7])
def test_synthetic_case_region_holds_heart_and_coronary_calcium_not_spine_or_ribs(seed):
    from synthetic_cardiac_ct import make_case

    case = make_case(seed, matrix=256)
    region = find_heart_region(case.volume)
    heart = case.heart_mask.astype(bool)
    assert region.found, region.note
    assert np.count_nonzero(region.mask & heart) >= 0.95 * np.count_nonzero(heart)
    coronary = (case.labels >= 1) & (case.labels <= 5)
    assert coronary.any() and region.mask[coronary].all()
    behind_sternum = np.arange(heart.shape[1])[None, :, None] >= np.nonzero(heart.any(axis=(0, 2)))[0].min()
    spine_and_ribs = (case.labels == 8) & behind_sternum
    assert np.count_nonzero(region.mask & spine_and_ribs) < 0.05 * np.count_nonzero(spine_and_ribs)


def with_belly_below(volume: Volume, slices: int) -> Volume:
    """The volume with `slices` of lung-free soft tissue (liver-like, noisy 60 HU) added below its lowest slice."""
    body = volume.array[0] > -400
    belly = np.where(body | (volume.array[0] < -950), volume.array[0], 60).astype(np.int16)
    noise = np.random.default_rng(0).normal(0, 50, (slices, *belly.shape))
    stack = np.where(belly > -950, belly + noise, belly).astype(np.int16)
    ijk_to_ras = volume.ijk_to_ras.copy()
    step = ijk_to_ras[:3, 2]
    assert step[2] > 0  # slice 0 is the lowest
    ijk_to_ras[:3, 3] -= step * slices
    return Volume(np.concatenate([stack, volume.array]), ijk_to_ras, modality="CT")


def test_a_chest_ct_leaves_out_the_belly_below_the_lungs_and_the_chest_wall_beside_them(sample):
    volume, plaques, heart_mask = sample
    wide = padded(volume, tissue_px=10, air_px=40)
    belly_slices = 10
    chest = with_belly_below(wide, belly_slices)
    heart = np.pad(heart_mask, ((belly_slices, 0), (50, 50), (50, 50)))
    region = find_heart_region(chest)
    assert_covers_heart(region, chest, plaques, heart)
    margin_slices = int(np.ceil(10.0 / chest.spacing[2]))  # the region's 10 mm margin
    assert not region.mask[: belly_slices - margin_slices].any()
    chest_wall = np.zeros(chest.array.shape, dtype=bool)
    chest_wall[:, 40:-40, 40:-40] = True
    chest_wall[:, 50:-50, 50:-50] = False  # the tissue ring outside the lungs
    assert not (region.mask & chest_wall).any()

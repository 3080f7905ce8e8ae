"""The synthetic cardiac CT generator: determinism, geometry, exact labels, realistic ranges, files."""

import functools
import json

import numpy as np
import pytest
import SimpleITK as sitk
from synthetic_cardiac_ct import (
    FOV_RANGE_MM,
    GENERATOR_VERSION,
    LOW_DOSE_NOISE_HU,
    SLICE_THICKNESSES_MM,
    STANDARD_DOSE_NOISE_HU,
    draw_scan,
    main,
    make_case,
    write_case,
)

from LesionDetectLib.detectors.calcium.agatston import agatston_category, score_lesion
from LesionDetectLib.detectors.calcium.labels import CORONARY_CODES

PLAQUE_SEED = 7  # level-3 burden, no metal: a dozen coronary plaques
ZERO_CALCIUM_SEED = 3


@functools.cache
def case(seed: int, matrix: int = 256, thickness: float = 3.0):
    return make_case(seed, matrix=matrix, slice_thickness_mm=thickness)


def voxel_of(volume, center_lps) -> tuple[int, int, int]:
    """(k, j, i) of the voxel holding an LPS point; RAS is LPS with x and y negated."""
    ras = np.array(center_lps) * [-1.0, -1.0, 1.0]
    i, j, k = np.round(volume.ras_to_ijk_points(ras[None])[0]).astype(int)
    return k, j, i


def inside(shape, kji) -> bool:
    return all(0 <= n < size for n, size in zip(kji, shape))


def agatston_total(synthetic) -> float:
    """Agatston score of the coronary label voxels, lesion by lesion."""
    spacing = synthetic.volume.spacing
    total = 0.0
    for lesion in synthetic.lesions:
        if lesion.code in CORONARY_CODES:
            scores = score_lesion(
                synthetic.volume.array,
                synthetic.instances == lesion.lesion_id,
                spacing[0] * spacing[1],
                float(np.prod(spacing)),
                spacing[2],
                1.0,
            )
            total += scores.agatston if scores else 0.0
    return total


def test_same_seed_gives_the_same_case_and_another_seed_another():
    first = make_case(PLAQUE_SEED, matrix=128, slice_thickness_mm=3.0)
    again = make_case(PLAQUE_SEED, matrix=128, slice_thickness_mm=3.0)
    other = make_case(PLAQUE_SEED + 1, matrix=128, slice_thickness_mm=3.0)
    np.testing.assert_array_equal(first.volume.array, again.volume.array)
    np.testing.assert_array_equal(first.labels, again.labels)
    np.testing.assert_array_equal(first.instances, again.instances)
    np.testing.assert_array_equal(first.volume.ijk_to_ras, again.volume.ijk_to_ras)
    assert first.lesions == again.lesions and first.settings == again.settings
    assert first.volume.array.shape != other.volume.array.shape or not np.array_equal(
        first.volume.array, other.volume.array
    )
    assert first.settings != other.settings


def test_output_types_geometry_and_drawn_settings():
    synthetic = case(PLAQUE_SEED)
    volume, settings = synthetic.volume, synthetic.settings
    assert volume.array.dtype == np.int16 and volume.modality == "CT"
    assert synthetic.labels.dtype == np.uint8 and synthetic.instances.dtype == np.uint16
    assert synthetic.heart_mask.dtype == bool
    assert synthetic.labels.shape == synthetic.instances.shape == synthetic.heart_mask.shape == volume.array.shape
    assert volume.array.min() >= -1024 and volume.array.max() <= 3071
    assert volume.array.shape[1:] == (256, 256)
    np.testing.assert_allclose(volume.spacing, [settings["pixel_mm"], settings["pixel_mm"], 3.0])
    np.testing.assert_allclose(np.diag(volume.ijk_to_ras)[:3], [-settings["pixel_mm"], -settings["pixel_mm"], 3.0])
    assert settings["pixel_mm"] == pytest.approx(settings["fov_mm"] / 256)
    assert FOV_RANGE_MM[0] <= settings["fov_mm"] <= FOV_RANGE_MM[1]
    assert 100.0 <= settings["z_coverage_mm"] <= 150.0 + 3.0
    assert 0.4 <= settings["psf_sigma_mm"] <= 0.8
    json.dumps(settings)


def test_drawn_scan_settings_cover_the_documented_ranges():
    scans = [draw_scan(np.random.default_rng(seed)) for seed in range(300)]
    assert {s["slice_thickness_mm"] for s in scans} == set(SLICE_THICKNESSES_MM)
    assert all(FOV_RANGE_MM[0] <= s["fov_mm"] <= FOV_RANGE_MM[1] for s in scans)
    for scan in scans:
        low, high = LOW_DOSE_NOISE_HU if scan["dose"] == "low" else STANDARD_DOSE_NOISE_HU
        assert low <= scan["noise_hu"] <= high
    low_dose = sum(s["dose"] == "low" for s in scans) / len(scans)
    assert 0.2 < low_dose < 0.4


def test_labelled_voxels_are_at_least_130_hu_and_instances_carry_their_lesion_code():
    synthetic = case(PLAQUE_SEED)
    image, labels, instances = synthetic.volume.array, synthetic.labels, synthetic.instances
    assert np.all(image[labels > 0] >= 130)
    assert np.all(labels[instances > 0] > 0)
    assert set(np.unique(labels[(labels > 0) & (instances == 0)])) <= {8}  # only bone has no instance
    ids = np.unique(instances[instances > 0])
    assert list(ids) == [lesion.lesion_id for lesion in synthetic.lesions]
    for lesion in synthetic.lesions:
        assert set(np.unique(labels[instances == lesion.lesion_id])) == {lesion.code}
    assert np.any(labels == 8)  # ribs, sternum or spine in the field of view


def test_noise_specks_above_130_hu_stay_background():
    synthetic = make_case(ZERO_CALCIUM_SEED, matrix=128, slice_thickness_mm=3.0, noise_hu=45.0)
    specks = (synthetic.volume.array >= 130) & (synthetic.labels == 0) & synthetic.heart_mask
    assert specks.sum() > 0
    assert not np.any(np.isin(synthetic.labels, list(CORONARY_CODES)))


def test_noise_has_the_requested_sd_around_the_true_tissue_density():
    for noise_hu in (15.0, 40.0):
        synthetic = make_case(ZERO_CALCIUM_SEED, matrix=128, slice_thickness_mm=3.0, noise_hu=noise_hu)
        anatomy, volume = synthetic.settings["anatomy"], synthetic.volume
        k, j, i = voxel_of(volume, anatomy["heart_center_lps"])
        half = int(8 / volume.spacing[0])
        myocardium = volume.array[k - 2 : k + 3, j - half : j + half, i - half : i + half].astype(float)
        assert myocardium.std() == pytest.approx(noise_hu, rel=0.1)
        assert myocardium.mean() == pytest.approx(anatomy["densities_hu"]["myocardium"], abs=5.0)


def test_plaque_centres_map_to_voxels_of_their_lesion():
    synthetic = case(PLAQUE_SEED)
    plaques = [lesion for lesion in synthetic.lesions if lesion.code in CORONARY_CODES]
    assert len(plaques) >= 5, "the chosen seed should carry several coronary plaques"
    for plaque in (p for p in plaques if p.peak_hu >= 200):  # noise may break up the faintest ones
        k, j, i = voxel_of(synthetic.volume, plaque.center_lps)
        near = (slice(k - 1, k + 2), slice(j - 1, j + 2), slice(i - 1, i + 2))
        assert plaque.lesion_id in synthetic.instances[near], plaque
        assert plaque.code in synthetic.labels[near], plaque


def test_coronary_plaques_lie_in_epicardial_fat_inside_the_heart_mask():
    synthetic = case(PLAQUE_SEED)
    image, spacing = synthetic.volume.array, synthetic.volume.spacing
    rows, columns = np.indices(image.shape[1:])
    for plaque in (lesion for lesion in synthetic.lesions if lesion.code in CORONARY_CODES):
        k, j, i = voxel_of(synthetic.volume, plaque.center_lps)
        assert synthetic.heart_mask[k, j, i], plaque
        distance = np.hypot((rows - j) * spacing[1], (columns - i) * spacing[0])
        ring = (distance >= 2.5) & (distance <= 4.5) & (image[k] < 130)
        assert np.median(image[k][ring]) < -30, plaque  # fat (≈ −100 HU), not myocardium or blood (≈ 40 HU)


def test_thirty_seeds_cover_zero_calcium_and_several_agatston_categories():
    categories = [agatston_category(agatston_total(case(seed, matrix=128))) for seed in range(30)]
    assert categories.count("0") >= 3
    assert len(set(categories) - {"0"}) >= 3


def test_write_case_round_trips_through_simpleitk(tmp_path):
    synthetic = case(PLAQUE_SEED, matrix=128)
    write_case(synthetic, tmp_path / "case")
    image = sitk.ReadImage(str(tmp_path / "case" / "image.nrrd"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), synthetic.volume.array)
    ijk_to_lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ synthetic.volume.ijk_to_ras
    np.testing.assert_allclose(image.GetSpacing(), synthetic.volume.spacing)
    np.testing.assert_allclose(image.GetOrigin(), ijk_to_lps[:3, 3])
    np.testing.assert_allclose(np.reshape(image.GetDirection(), (3, 3)), np.eye(3))
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "case" / "labels.nrrd")))
    instances = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "case" / "instances.nrrd")))
    np.testing.assert_array_equal(labels, synthetic.labels)
    np.testing.assert_array_equal(instances, synthetic.instances)
    description = json.loads((tmp_path / "case" / "case.json").read_text())
    assert description["seed"] == PLAQUE_SEED and description["generator_version"] == GENERATOR_VERSION
    assert len(description["lesions"]) == len(synthetic.lesions)
    assert description["lesions"][0]["center_lps"] == list(synthetic.lesions[0].center_lps)


def test_command_line_writes_one_folder_per_seed(tmp_path):
    main(["--first-seed", "11", "--count", "2", "-o", str(tmp_path), "--matrix", "64", "--slice-thickness", "3"])
    for seed in (11, 12):
        folder = tmp_path / f"case_{seed}"
        assert {p.name for p in folder.iterdir()} == {"image.nrrd", "labels.nrrd", "instances.nrrd", "case.json"}
        assert json.loads((folder / "case.json").read_text())["settings"]["matrix"] == 64

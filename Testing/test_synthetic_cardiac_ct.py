"""The synthetic cardiac CT generator: determinism, geometry, exact labels, the randomised ranges it reaches
(field of view, slices, noise, kernels, motion, dense plaques, calcium by the ostia, metal), speed, files."""

import functools
import json
import time
from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk
from synthetic_anatomy import draw_layout, paint_bones, render_soft_tissue
from synthetic_cardiac_ct import (
    FOV_RANGE_MM,
    GENERATOR_VERSION,
    KERNELS,
    NOISE_RANGE_HU,
    SLICE_THICKNESSES_MM,
    draw_scan,
    main,
    make_case,
    write_case,
)
from synthetic_shapes import Grid, Tracker, line_blur

from LesionDetectLib.detectors.calcium.agatston import agatston_category, score_lesion
from LesionDetectLib.detectors.calcium.labels import CORONARY_CODES

PLAQUE_SEED = 7  # level-3 burden, no metal: a dozen coronary plaques
ZERO_CALCIUM_SEED = 4
DENSE_SEED = 21  # a dense proximal RCA plaque and a dense LM plaque
OSTIAL_SEED = 25  # aortic valve cusps, aortic root calcium beside an ostium, mitral annular calcium
METAL_SEEDS = (36, 38)  # sternal wires and surgical clips; a pacemaker lead
RANGE_SEEDS = range(40)


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
    low, high = KERNELS[settings["kernel"]]["psf_mm"]
    assert low <= settings["psf_sigma_mm"] <= high
    assert settings["generator_version"] == GENERATOR_VERSION == "2.0.0"
    json.dumps(settings)


def test_drawn_scan_settings_cover_the_documented_ranges():
    scans = [draw_scan(np.random.default_rng(seed)) for seed in range(300)]
    assert {s["slice_thickness_mm"] for s in scans} == set(SLICE_THICKNESSES_MM) >= {0.5, 5.0}
    assert all(FOV_RANGE_MM[0] <= s["fov_mm"] <= FOV_RANGE_MM[1] for s in scans)
    assert FOV_RANGE_MM == (150.0, 500.0) and NOISE_RANGE_HU == (10.0, 60.0)
    assert all(NOISE_RANGE_HU[0] <= s["noise_hu"] <= NOISE_RANGE_HU[1] for s in scans)
    assert {s["kernel"] for s in scans} == set(KERNELS)
    assert all((s["edge_enhancement"] > 0) == (s["kernel"] == "sharp") for s in scans)
    moving = [s for s in scans if s["motion_blur_mm"] > 0]
    assert not any(s["gated"] for s in moving)  # motion blur only on non-gated scans
    assert 0.2 < len(moving) / len(scans) < 0.4
    assert min(s["motion_blur_mm"] for s in moving) >= 1.5 and max(s["motion_blur_mm"] for s in moving) <= 6.0


@functools.cache
def range_survey():
    """Over 40 seeds at 128²: drawn field of view, slice spacing, noise SD measured in the heart's blood pool."""
    rows = []
    for seed in RANGE_SEEDS:
        synthetic = make_case(seed, matrix=128)
        image, labels = synthetic.volume.array, synthetic.labels
        assert np.all(image[labels > 0] >= 130), seed  # every labelled voxel is calcium-bright
        k, j, i = voxel_of(synthetic.volume, synthetic.settings["anatomy"]["heart_center_lps"])
        half = max(2, int(round(6 / synthetic.volume.spacing[0])))
        depth = max(1, int(round(3 / synthetic.volume.spacing[2])))
        block = image[k - depth : k + depth + 1, j - half : j + half, i - half : i + half].astype(float)
        rows.append(
            (synthetic.settings["fov_mm"], synthetic.volume.spacing[2], block.std(), synthetic.settings["noise_hu"])
        )
    return np.array(rows)


def test_forty_seeds_reach_the_field_of_view_slice_and_noise_ranges():
    fov, spacing, measured, drawn = range_survey().T
    assert fov.min() <= 165 and fov.max() >= 450
    assert (fov / 512).min() <= 0.33 and (fov / 512).max() >= 0.88  # pixels at 512²
    assert spacing.min() == pytest.approx(0.5) and spacing.max() == pytest.approx(5.0)
    np.testing.assert_allclose(measured, drawn, rtol=0.2, atol=3.0)
    assert measured.min() <= 14 and measured.max() >= 54


def test_a_dense_proximal_plaque_reaches_100_mm2_on_a_slice_and_1500_hu():
    synthetic = make_case(DENSE_SEED)
    image, spacing = synthetic.volume.array, synthetic.volume.spacing
    dense = [lesion for lesion in synthetic.lesions if lesion.kind == "dense"]
    assert dense and all(lesion.code in (1, 2, 4) for lesion in dense)  # LM, LAD or RCA
    ostia = np.array(synthetic.settings["anatomy"]["ostia_lps"])
    best_area, best_peak = 0.0, 0
    for lesion in dense:
        voxels = synthetic.instances == lesion.lesion_id
        assert set(np.unique(synthetic.labels[voxels])) == {lesion.code}
        assert np.linalg.norm(ostia - lesion.center_lps, axis=1).min() < 50.0  # proximal
        best_area = max(best_area, voxels.sum(axis=(1, 2)).max() * spacing[0] * spacing[1])
        best_peak = max(best_peak, int(image[voxels].max()))
    assert 100.0 <= best_area <= 250.0
    assert best_peak >= 1500


def test_plaques_range_from_specks_to_long_arcs():
    kinds, speck_areas, arc_lengths = set(), [], []
    for seed in (0, 5, 14, 16):
        synthetic = case(seed)
        spacing = synthetic.volume.spacing
        for lesion in synthetic.lesions:
            kinds.add(lesion.kind)
            voxels = synthetic.instances == lesion.lesion_id
            if lesion.kind == "speck" and lesion.peak_hu >= 250:
                speck_areas.append(voxels.sum(axis=(1, 2)).max() * spacing[0] * spacing[1])
            if lesion.kind == "arc":
                arc_lengths.append(max(lesion.size_mm))
    assert {"speck", "spot", "arc"} <= kinds
    assert speck_areas and min(speck_areas) <= 4.0
    assert arc_lengths and max(arc_lengths) >= 15.0


def test_calcium_by_the_ostia_is_aortic_or_valve_never_coronary():
    synthetic = make_case(OSTIAL_SEED, matrix=256)
    ostia = np.array(synthetic.settings["anatomy"]["ostia_lps"])
    expected = {"valve": 7, "mitral": 7, "ostial aortic": 6}
    found = {kind: 0 for kind in expected}
    for lesion in synthetic.lesions:
        if lesion.kind in expected:
            found[lesion.kind] += 1
            assert lesion.code == expected[lesion.kind]
            voxels = synthetic.instances == lesion.lesion_id
            assert set(np.unique(synthetic.labels[voxels])) == {expected[lesion.kind]}
            assert not np.isin(synthetic.labels[voxels], list(CORONARY_CODES)).any()
            if lesion.kind != "mitral":
                assert np.linalg.norm(ostia - lesion.center_lps, axis=1).min() < 25.0, lesion
    assert all(found.values()), found


@pytest.mark.parametrize("seed", METAL_SEEDS)
def test_wires_leads_clips_and_stents_are_metal_never_coronary(seed):
    synthetic = make_case(seed, matrix=256)
    metal = [lesion for lesion in synthetic.lesions if lesion.kind in ("wire", "lead", "clip", "stent")]
    assert metal
    for lesion in metal:
        assert lesion.code == 9
        voxels = synthetic.instances == lesion.lesion_id
        assert set(np.unique(synthetic.labels[voxels])) == {9}
        assert synthetic.volume.array[voxels].max() >= 1000
    assert np.all(synthetic.volume.array[synthetic.labels > 0] >= 130)


def test_calcified_costal_cartilage_is_labelled_bone():
    layout = draw_layout(np.random.default_rng(3))
    ribs = layout.ribs
    x = np.arange(-150.0, 150.0, 1.5) + layout.chest.cavity_center[0]
    y = np.arange(-150.0, 150.0, 1.5) + layout.chest.cavity_center[1]
    z = np.arange(layout.z_range[0], layout.z_range[0] + 60.0, 3.0)
    grid = Grid.for_scan(x, y, z, 3.0, 0.5, 0.4)
    counts = []
    for calcified_to in (0.0, ribs.cartilage_from + 0.2):
        drawn = replace(layout, ribs=replace(ribs, cartilage_calcified_to=calcified_to))
        volume, _ = render_soft_tissue(grid, drawn)
        tracker = Tracker(grid.shape)
        paint_bones(volume, grid, drawn, tracker)
        labels, _ = tracker.label_maps(volume, 130.0, 30.0)
        assert set(np.unique(labels)) <= {0, 8}
        assert np.all(volume[labels == 8] >= 130)
        counts.append(np.count_nonzero(labels == 8))
    assert counts[1] > counts[0] * 1.02  # calcified cartilage adds bone-labelled voxels


def test_motion_blur_changes_the_heart_and_leaves_the_spine_alone():
    still = make_case(PLAQUE_SEED, matrix=128, slice_thickness_mm=3.0, motion_blur_mm=0.0)
    moving = make_case(PLAQUE_SEED, matrix=128, slice_thickness_mm=3.0, motion_blur_mm=6.0)
    heart = still.heart_mask
    difference = np.abs(still.volume.array.astype(int) - moving.volume.array)
    assert difference[heart].mean() > 2.0
    spine = still.labels == 8
    spine &= np.arange(spine.shape[1])[None, :, None] > np.nonzero(heart.any(axis=(0, 2)))[0].max() + 10
    assert spine.any() and difference[spine].max() == 0
    assert np.all(moving.volume.array[moving.labels > 0] >= 130)


def test_line_blur_spreads_a_point_along_its_direction_only():
    point = np.zeros((1, 21, 21), dtype=np.float32)
    point[0, 10, 10] = 1.0
    blurred = line_blur(point, (0.0, 1.0), 6.0)
    assert blurred.sum() == pytest.approx(1.0)
    assert np.count_nonzero(blurred[0, 10]) == 7 and np.count_nonzero(blurred[0, :, 10]) == 1


def test_dominance_and_heart_size_vary_over_seeds():
    layouts = [draw_layout(np.random.default_rng(seed)) for seed in range(60)]
    assert {layout.coronary.dominance for layout in layouts} == {"right", "left", "co"}
    for layout in layouts:
        pda = next(artery for artery in layout.coronary.arteries if artery.name == "PDA")
        assert pda.code == (3 if layout.coronary.dominance == "left" else 4)
        names = {artery.name for artery in layout.coronary.arteries}
        assert ("PL" in names) == (layout.coronary.dominance == "co")
    long_axes = [layout.heart.half_axes[0] for layout in layouts]
    assert max(long_axes) / min(long_axes) > 1.4


def test_a_wide_field_of_view_case_is_fast():
    start = time.perf_counter()
    synthetic = make_case(3, fov_mm=480.0, slice_thickness_mm=3.0)
    assert time.perf_counter() - start < 5.0
    assert synthetic.volume.array.shape[1:] == (512, 512) and synthetic.settings["pixel_mm"] > 0.9


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
        half = int(12 / volume.spacing[0])
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
    compact = [lesion for lesion in synthetic.lesions if lesion.kind in ("speck", "spot")]
    assert len(compact) >= 3
    for plaque in (lesion for lesion in synthetic.lesions if lesion.code in CORONARY_CODES):
        k, j, i = voxel_of(synthetic.volume, plaque.center_lps)
        assert synthetic.heart_mask[k, j, i], plaque
        if plaque not in compact:
            continue  # arcs and dense plaques wrap the lumen: their ring holds blood
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

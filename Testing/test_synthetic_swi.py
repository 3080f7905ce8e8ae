"""The synthetic SWI generator: deterministic per seed, microbleeds darker than white matter whose masks, records
and slice boxes agree, veins that run across slices, scans without microbleeds, Rician background noise, and the
calibration script."""

import functools
import json

import numpy as np
import pytest
from microbleed_label_statistics import label_statistics
from scipy import ndimage
from synthetic_swi import (
    CODE,
    COVERAGE_MM,
    FOV_MM,
    LOBAR_REGIONS,
    MAX_MICROBLEEDS,
    PIXEL_MM,
    REGION_TISSUE,
    SLICE_MM,
    draw_head,
    draw_microbleed_count,
    draw_microbleed_shape,
    draw_scan,
    make_swi_case,
    write_case,
)

from LesionDetectLib.io.volume_io import read_volume

PIXEL = 1.0
THICKNESS = 2.5


def microbleeds_drawn(seed: int) -> int:
    """How many microbleeds a seed draws (cheap: no rendering)."""
    return draw_microbleed_count(np.random.default_rng([seed, 4]))[0]


def first_seed(predicate) -> int:
    return next(seed for seed in range(200) if predicate(microbleeds_drawn(seed)))


@functools.cache
def case(seed: int, slice_mm: float = THICKNESS, n_slices: int | None = None):
    return make_swi_case(seed, pixel_mm=PIXEL, slice_mm=slice_mm, n_slices=n_slices)


def many_microbleeds():
    return case(first_seed(lambda count: count >= 6))


def test_the_same_seed_gives_the_same_scan_and_seeds_differ():
    seed = first_seed(lambda count: count >= 6)
    again = make_swi_case(seed, pixel_mm=PIXEL, slice_mm=THICKNESS)
    assert np.array_equal(again.volume.array, case(seed).volume.array)
    assert np.array_equal(again.masks["microbleeds"], case(seed).masks["microbleeds"])
    assert again.microbleeds == case(seed).microbleeds
    other = make_swi_case(seed + 1, pixel_mm=PIXEL, slice_mm=THICKNESS, n_slices=10)
    assert not np.array_equal(other.volume.array, case(seed).volume.array[-10:])


def test_microbleeds_are_darker_than_the_white_matter_around_them():
    c = case(first_seed(lambda count: count >= 6), slice_mm=1.5, n_slices=60)
    assert len(c.microbleeds) >= 3
    white = (c.tissue == CODE["white"]) & ~c.masks["veins"] & (c.masks["mimics"] == 0)
    reach = np.rint(15.0 / c.volume.spacing[::-1]).astype(int)  # voxels within 15 mm along k, j, i
    for record in c.microbleeds:
        centre = np.rint(record["center_ijk"][::-1]).astype(int)
        box = tuple(slice(max(n - r, 0), n + r + 1) for n, r in zip(centre, reach))
        nearby_white = c.volume.array[box][white[box]]
        assert nearby_white.size > 50
        mask = c.masks["microbleeds"] == record["id"]
        assert c.volume.array[mask].mean() < 0.9 * np.median(nearby_white), record["region"]


def test_masks_match_the_records_in_centre_diameter_and_region():
    c = many_microbleeds()
    spacing = c.volume.spacing  # i, j, k
    labels = c.masks["microbleeds"]
    assert sorted(np.unique(labels[labels > 0]).tolist()) == [r["id"] for r in c.microbleeds]
    for record in c.microbleeds:
        mask = labels == record["id"]
        centroid_ijk = np.argwhere(mask).mean(axis=0)[::-1]
        assert np.all(np.abs(centroid_ijk - record["center_ijk"]) <= 1.0), record
        assert np.allclose(c.volume.ijk_to_ras_points([record["center_ijk"]])[0], record["center_ras_mm"])
        equivalent_diameter = np.cbrt(6.0 * mask.sum() * np.prod(spacing) / np.pi)
        assert abs(equivalent_diameter - record["diameter_mm"]) <= 2.0 * spacing[0], record
        assert np.cbrt(np.prod(record["semi_axes_mm"])) == pytest.approx(record["diameter_mm"] / 2.0)
        centre_voxel = tuple(np.rint(record["center_ijk"][::-1]).astype(int))
        assert c.tissue[centre_voxel] == CODE[REGION_TISSUE[record["region"]]]
        assert record["location"] == ("lobar" if record["region"] in LOBAR_REGIONS else "deep")
        assert record["slices"] == [int(k) for k in np.flatnonzero(mask.any(axis=(1, 2)))[[0, -1]]]
    assert not (labels.astype(bool) & (c.masks["veins"] | (c.masks["mimics"] > 0))).any()


def test_veins_run_across_slices_and_microbleeds_span_few():
    c = many_microbleeds()
    veins, thickness = c.masks["veins"], c.volume.spacing[2]
    components, count = ndimage.label(veins, structure=np.ones((3, 3, 3)))
    spans = [
        box[0].stop - box[0].start
        for box in ndimage.find_objects(components)
        if box[0].start > 0 and box[0].stop < veins.shape[0]  # not cut by the ends of the slab
    ]
    assert count >= 5 and len(spans) >= 3
    assert min(spans) >= 3
    assert np.median(c.volume.array[veins & (c.tissue == CODE["white"])]) < np.median(
        c.volume.array[c.tissue == CODE["white"]]
    )
    for record in c.microbleeds:
        first, last = record["slices"]
        assert last - first + 1 <= np.ceil(2.0 * max(record["semi_axes_mm"]) / thickness) + 1, record


def test_slice_boxes_hold_every_mask_pixel_and_no_more():
    c = many_microbleeds()
    labels = c.masks["microbleeds"]
    boxes = {(b["microbleed"], b["slice"]): b["box_xyxy"] for b in c.boxes}
    assert len(boxes) == len(c.boxes)
    for record in c.microbleeds:
        mask = labels == record["id"]
        slices = set(np.flatnonzero(mask.any(axis=(1, 2))).tolist())
        assert {k for (label, k) in boxes if label == record["id"]} == slices
        for k in slices:
            x0, y0, x1, y1 = boxes[record["id"], k]
            rows, columns = np.nonzero(mask[k])
            assert (x0, y0, x1, y1) == (columns.min(), rows.min(), columns.max() + 1, rows.max() + 1)


def test_the_scan_grid_varies_with_the_seed_within_its_ranges():
    scans = []
    for seed in range(60):
        head = draw_head(np.random.default_rng([seed, 0]))
        scans.append(draw_scan(np.random.default_rng([seed, 1]), head))
    pixels = np.array([s["pixel_mm"] for s in scans])
    thicknesses = np.array([s["slice_mm"] for s in scans])
    assert PIXEL_MM[0] <= pixels.min() and pixels.max() <= PIXEL_MM[1] and np.ptp(pixels) > 0.4
    assert SLICE_MM[0] <= thicknesses.min() and thicknesses.max() <= SLICE_MM[1] and np.ptp(thicknesses) > 1.5
    assert len({s["matrix"] for s in scans}) > 30
    for s in scans:
        assert FOV_MM[0] - 2 * s["pixel_mm"] <= s["fov_mm"] <= FOV_MM[1] + 2 * s["pixel_mm"]
        assert COVERAGE_MM[0] - s["slice_mm"] <= s["coverage_mm"] <= COVERAGE_MM[1] + s["slice_mm"]
    c = case(first_seed(lambda count: count == 0))
    assert np.allclose(c.volume.spacing, [PIXEL, PIXEL, THICKNESS])
    assert c.settings["pixel_mm"] == PIXEL and c.settings["slice_mm"] == THICKNESS


def test_a_scan_can_hold_no_microbleeds_but_still_veins_and_mimics():
    c = case(first_seed(lambda count: count == 0))
    assert c.microbleeds == [] and c.boxes == [] and not c.masks["microbleeds"].any()
    assert c.settings["microbleeds_drawn"] == 0
    assert c.masks["veins"].any()
    counts = [microbleeds_drawn(seed) for seed in range(300)]
    assert 0.2 < counts.count(0) / len(counts) < 0.4 and max(counts) <= MAX_MICROBLEEDS


def test_background_noise_is_rician():
    c = case(first_seed(lambda count: count == 0))
    background = c.volume.array[:, :25, :25]  # a corner of the field of view, outside the head
    assert (c.tissue[:, :25, :25] == CODE["background"]).all()
    assert background.min() >= 0.0
    sd = c.settings["noise_sd"]
    assert background.mean() == pytest.approx(sd * np.sqrt(np.pi / 2.0), rel=0.03)  # Rayleigh, as Rician at zero
    assert background.mean() / background.std() == pytest.approx(np.sqrt(np.pi / (4.0 - np.pi)), rel=0.05)


def test_sizes_shapes_and_counts_follow_the_calibration():
    rng = np.random.default_rng(0)
    shapes = [draw_microbleed_shape(rng) for _ in range(3000)]
    diameters = np.array([d for d, _ in shapes])
    assert 2.0 <= diameters.min() and diameters.max() <= 10.0
    assert np.median(diameters) == pytest.approx(2.95, abs=0.08)
    for diameter, semi_axes in shapes[:50]:
        assert np.cbrt(np.prod(semi_axes)) == pytest.approx(diameter / 2.0)
        assert semi_axes[0] >= semi_axes[1] >= semi_axes[2]


def test_written_case_reads_back_with_its_geometry(tmp_path):
    c = many_microbleeds()
    write_case(c, tmp_path)
    volume = read_volume(tmp_path / "swi.nrrd")
    assert np.allclose(volume.ijk_to_ras, c.volume.ijk_to_ras, atol=1e-4)
    assert np.allclose(volume.array, c.volume.array)
    labels = read_volume(tmp_path / "microbleeds.nrrd")
    assert np.array_equal(labels.array, c.masks["microbleeds"])
    record = json.loads((tmp_path / "case.json").read_text())
    assert len(record["microbleeds"]) == len(c.microbleeds) and record["boxes"] == c.boxes


def test_label_statistics_of_a_small_table():
    def row(scan, radius, location, sequence="SWI"):
        return {
            "seriesUID": scan,
            "radius": str(radius),
            "Location": location,
            "seq_type": sequence,
            "shape_Elongation": "0.9",
            "shape_Flatness": "0.8",
        }

    rows = [
        row("a", 3.0, "Cortex / grey-white junction"),
        row("a", 4.0, "Subcortical white matter"),
        row("a", 2.0, "Thalamus"),
        row("b", 5.0, "Brainstem"),
        row("c", 6.0, "", sequence="T2S"),
    ]
    stats = label_statistics(rows, voxel_mm=0.5)
    assert stats["diameter_mm_quantiles"]["0"] == 2.0 and stats["diameter_mm_quantiles"]["1"] == 5.0
    assert stats["lobar_fraction"] == 0.5 and stats["located_scans"] == 2
    assert stats["region_counts"] == {
        "cortex / grey-white junction": 1,
        "subcortical white matter": 1,
        "thalamus": 1,
        "brainstem": 1,
    }
    n, p = stats["count_minus_one_negative_binomial"]
    assert n > 0 and 0 < p < 1

"""The synthetic coronary angiography generator: deterministic runs, dark vessels on a brighter background, contrast
that fills the tree and washes out, stenoses as narrow as stated and boxed where they show, text in the corners,
spacing recorded, box statistics near the real annotations', and the CLI's PNG folder + JSON."""

import functools
import json

import numpy as np
import pytest
from scipy import ndimage
from stenosis_box_statistics import comparison_table, read_real_boxes
from synthetic_angiography import (
    FIELD_MM,
    FILLED_FRACTION,
    FRAME_RATES,
    NATIVE_MATRIX,
    QUANTILE_LEVELS,
    REAL_BOX_CENTRE_X,
    REAL_BOX_CENTRE_Y,
    REAL_BOX_HEIGHT,
    REAL_BOX_SIZE,
    REAL_BOX_WIDTH,
    REAL_CENTRE_SPREAD_IN_RUN,
    SEVERITY_RANGE,
    TubeRenderer,
    main,
    make_angiography_clip,
)

from LesionDetectLib.io.read_input import read_input

SMALL = 128
FRAMES = 12


@functools.cache
def truth(seed: int, matrix: int = SMALL, frame_count: int | None = None):
    """Ground truth only (no pixels)."""
    return make_angiography_clip(seed, matrix=matrix, frame_count=frame_count, render=False)


@functools.cache
def rendered(seed: int, matrix: int = SMALL, frame_count: int = FRAMES):
    return make_angiography_clip(seed, matrix=matrix, frame_count=frame_count)


def centreline_mask(clip, frame: int, min_radius_mm: float = 0.0) -> np.ndarray:
    """Pixels under the drawn centrelines of vessels at least `min_radius_mm` wide, in one frame."""
    matrix = clip.scene.carm.matrix
    mask = np.zeros((matrix, matrix), dtype=bool)
    for name, vessel in clip.vessels.items():
        points_px, _ = clip.vessel_points_px(name, frame)
        keep = vessel.drawn & (vessel.radius_mm >= min_radius_mm)
        columns, rows = np.floor(points_px[keep]).astype(int).T
        inside = (columns >= 0) & (columns < matrix) & (rows >= 0) & (rows < matrix)
        mask[rows[inside], columns[inside]] = True
    return mask


def text_mask(clip, frame: int) -> np.ndarray:
    matrix = clip.scene.carm.matrix
    mask = np.zeros((matrix, matrix), dtype=bool)
    for block in clip.text_boxes_px[frame]:
        x0, y0, x1, y1 = (int(round(v)) for v in block["box_px"])
        mask[max(y0 - 2, 0) : y1 + 2, max(x0 - 2, 0) : x1 + 2] = True
    return mask


def vessel_darkening(clip, frame: int) -> np.ndarray:
    """Local background (a median wider than any vessel) minus the frame under big vessels' centrelines."""
    image = clip.frames[frame].astype(float)
    background = ndimage.median_filter(image, size=21)
    under = centreline_mask(clip, frame, min_radius_mm=1.2) & ~text_mask(clip, frame)
    return (background - image)[under]


def test_the_same_seed_gives_the_same_run_and_seeds_differ():
    again = make_angiography_clip(3, matrix=SMALL, frame_count=FRAMES)
    assert np.array_equal(again.frames, rendered(3).frames)
    assert json.dumps(again.settings, sort_keys=True) == json.dumps(rendered(3).settings, sort_keys=True)
    assert again.boxes_px == rendered(3).boxes_px
    assert not np.array_equal(rendered(4).frames, rendered(3).frames)


def test_vessels_are_darker_than_their_background():
    for seed in (3, 4):
        clip = rendered(seed)
        frame = int(np.argmax(clip.filled_fraction))
        darkening = vessel_darkening(clip, frame)
        white = 2 ** clip.settings["display"]["bits"] - 1
        assert np.mean(darkening > 0) > 0.9
        assert np.median(darkening) > 0.05 * white


def test_the_tree_fills_from_the_ostium_then_washes_out():
    for seed in range(20):
        clip = truth(seed)
        filled, phase = clip.filled_fraction, np.flatnonzero(clip.filled_phase)
        assert len(phase) and np.all(np.diff(phase) == 1), seed  # one filled phase
        assert filled[0] < 0.5 and filled[-1] < 0.6 and filled.max() >= FILLED_FRACTION, seed
        assert np.all(np.diff(filled[: phase[0] + 1]) >= -1e-9) and np.all(np.diff(filled[phase[-1] :]) <= 1e-9)
        early = int(np.argmax(filled > 0.05))
        if filled[early] < 0.6:  # early frames show only proximal vessels
            bolus, time_s = clip.scene.bolus, clip.frame_times_s[early]
            distance = np.concatenate([v.ostium_distance_mm for v in clip.vessels.values()])
            contrast = bolus.concentration(time_s, distance)
            assert contrast[distance < 20].mean() > contrast[distance > 60].mean() + 0.3, seed


def test_the_filled_phase_frames_hold_the_most_contrast():
    clip = rendered(3)
    contrast = np.array([np.median(vessel_darkening(clip, k)) for k in range(FRAMES)])
    sparse = clip.filled_fraction < 0.5
    assert clip.filled_phase.any() and sparse.any()
    assert contrast[clip.filled_phase].min() > contrast[sparse].max()
    assert clip.filled_phase[np.argmax(contrast)] or contrast.max() < 1.1 * contrast[clip.filled_phase].max()


def test_a_tube_renders_as_the_chord_of_its_cross_section():
    radius_px = 6.0
    x = np.arange(10.0, 54.0, 0.2)
    points = np.stack([x, np.full_like(x, 32.3)], axis=1)
    image = TubeRenderer((64, 64), radius_px).render(points, np.full(len(x), radius_px), np.full(len(x), 0.2))
    profile = image[:, 32]
    offsets = np.arange(64) + 0.5 - 32.3
    chord = 2 * np.sqrt(np.clip(radius_px**2 - offsets**2, 0.0, None))
    assert profile.max() == pytest.approx(chord.max(), rel=0.03)
    assert np.count_nonzero(profile > profile.max() / 2) == pytest.approx(np.sqrt(3) * radius_px, abs=1.0)  # FWHM
    assert profile.sum() == pytest.approx(np.pi * radius_px**2, rel=0.02)  # area of the cross-section


def dark_width_px(frame: np.ndarray, centres_px: np.ndarray, normal: np.ndarray, radius_px: float) -> float:
    """Width at half depth of a vessel's dark profile across `normal`, the profiles at `centres_px` averaged."""
    offsets = np.arange(-2 * radius_px - 6, 2 * radius_px + 6.01, 0.25)
    samples = centres_px[:, None, :] + offsets[None, :, None] * normal
    values = ndimage.map_coordinates(
        frame.astype(float), [samples[..., 1].ravel() - 0.5, samples[..., 0].ravel() - 0.5]
    )
    profile = values.reshape(len(centres_px), -1).mean(axis=0)
    shoulders = np.abs(offsets) >= 1.4 * radius_px + 3
    depth = np.polyval(np.polyfit(offsets[shoulders], profile[shoulders], 1), offsets) - profile
    half = depth[np.abs(offsets) <= 1.0].mean() / 2
    middle = len(offsets) // 2
    return float((np.argmax(depth[middle:] < half) + np.argmax(depth[middle::-1] < half)) * 0.25)


def clear_focal_stenosis(frame_count: int):
    """(seed, stenosis, frame) of a focal stenosis whose narrowest lumen is still ≥ 6 pixels wide, seen in the filled
    phase with no other vessel near it or its reference point."""
    for seed in range(40):
        clip = truth(seed, NATIVE_MATRIX, frame_count)
        for stenosis in clip.stenoses:
            if stenosis["kind"] != "focal" or stenosis["length_mm"] < 6 or stenosis["reference_diameter_mm"] < 2.5:
                continue
            frames = [k for k in np.flatnonzero(clip.filled_phase) if stenosis["visible"][k]]
            if not frames:
                continue
            vessel = clip.vessels[stenosis["vessel"]]
            points_px, magnification = clip.vessel_points_px(vessel.name, frames[0])
            narrowest_px = stenosis["minimal_diameter_mm"] * magnification.mean() / clip.pixel_spacing_mm[0]
            if narrowest_px < 6:
                continue
            sites = [np.searchsorted(vessel.arc_mm, a) for a in reference_and_stenosis_arcs(stenosis)]
            others = np.vstack([clip.vessel_points_px(n, frames[0])[0] for n in clip.vessels if n != vessel.name])
            catheter = clip.scene.carm.project(clip.scene.catheter_at(clip.frame_times_s[frames[0]]))[0]
            others = np.vstack([others, catheter])
            far = min(np.linalg.norm(others - points_px[i], axis=1).min() for i in sites)
            if far > 60 and not text_mask(clip, frames[0])[tuple(points_px[sites].astype(int).T[::-1])].any():
                return seed, stenosis, frames[0]
    raise AssertionError("no clear focal stenosis in seeds 0–39")


def reference_and_stenosis_arcs(stenosis: dict) -> tuple[float, float]:
    return stenosis["arc_mm"], stenosis["arc_mm"] - stenosis["length_mm"] / 2 - 2.5


def test_a_stenosed_lumen_is_narrower_by_about_the_stated_severity():
    seed, stenosis, frame = clear_focal_stenosis(frame_count=8)
    clip = rendered(seed, NATIVE_MATRIX, 8)
    vessel = clip.vessels[stenosis["vessel"]]
    points_px, magnification = clip.vessel_points_px(vessel.name, frame)
    widths = []
    for arc, along_mm in zip(reference_and_stenosis_arcs(stenosis), (0.3, 1.0)):
        site = np.flatnonzero(np.abs(vessel.arc_mm - arc) <= along_mm)
        tangent = points_px[site[-1]] - points_px[site[0]]
        normal = np.array([-tangent[1], tangent[0]]) / np.linalg.norm(tangent)
        middle = site[len(site) // 2]
        radius_px = vessel.reference_radius_mm[middle] * magnification[middle] / clip.pixel_spacing_mm[0]
        widths.append(dark_width_px(clip.frames[frame], points_px[site], normal, radius_px))
    assert SEVERITY_RANGE[0] <= stenosis["severity"] <= SEVERITY_RANGE[1]
    assert widths[0] / widths[1] == pytest.approx(1 - stenosis["severity"], abs=0.12)


def test_a_box_holds_the_stenosis_centre_in_every_frame_where_it_shows():
    boxed = 0
    for seed in range(30):
        clip = truth(seed)
        matrix = clip.scene.carm.matrix
        for frame, boxes in enumerate(clip.boxes_px):
            shown = {n for n, stenosis in enumerate(clip.stenoses) if stenosis["visible"][frame]}
            assert {box["stenosis"] for box in boxes} == shown
            for box in boxes:
                x0, y0, x1, y1 = box["box_px"]
                x, y = clip.stenoses[box["stenosis"]]["centre_px"][frame]
                assert 0 <= x0 <= x <= x1 <= matrix and 0 <= y0 <= y <= y1 <= matrix
                boxed += 1
        for stenosis in clip.stenoses:
            assert 0.25 <= stenosis["severity"] <= 0.9
            assert stenosis["minimal_diameter_mm"] == pytest.approx(
                stenosis["reference_diameter_mm"] * (1 - stenosis["severity"])
            )
    assert boxed > 50


def test_runs_without_a_stenosis_have_no_boxes_and_some_have_several():
    clips = [truth(seed) for seed in range(30)]
    normal = [c for c in clips if not c.stenoses]
    assert normal and all(c.label == "normal" and not any(c.boxes_px) for c in normal)
    assert all(c.label == "stenosis" for c in clips if any(c.boxes_px))
    assert any(len(c.stenoses) > 1 for c in clips)


def test_text_overlays_sit_in_the_corners():
    for seed in range(10):
        clip = truth(seed)
        matrix = clip.scene.carm.matrix
        for frame in (0, len(clip.frame_times_s) - 1):
            for block in clip.text_boxes_px[frame]:
                x0, y0, x1, y1 = block["box_px"]
                vertical, horizontal = block["corner"].split("-")
                near, far = (x0, x1) if horizontal == "left" else (matrix - x1, matrix - x0)
                assert near <= 0.15 * matrix and far <= 0.5 * matrix, block
                near, far = (y0, y1) if vertical == "top" else (matrix - y1, matrix - y0)
                assert near <= 0.15 * matrix and far <= 0.35 * matrix, block
    clip = rendered(3)
    white = 2 ** clip.settings["display"]["bits"] - 1
    for frame in (0, FRAMES - 1):
        for block in clip.text_boxes_px[frame]:
            x0, y0, x1, y1 = (int(round(v)) for v in block["box_px"])
            assert clip.frames[frame, y0:y1, x0:x1].max() >= 0.75 * white
    counters = [b for b in clip.text_boxes_px[FRAMES - 1] if any("/" in line for line in b["lines"])]
    assert all(f"{FRAMES}/{FRAMES}" in block["lines"] for block in counters)


def test_pixel_spacing_frame_times_and_the_image_sequence():
    for seed in range(10):
        native, small = truth(seed, NATIVE_MATRIX), truth(seed)
        row_mm, column_mm = native.pixel_spacing_mm
        assert row_mm == column_mm and 0.2 <= row_mm <= 0.4
        assert FIELD_MM[0] <= row_mm * NATIVE_MATRIX <= FIELD_MM[1]
        assert small.pixel_spacing_mm[0] == pytest.approx(row_mm * NATIVE_MATRIX / SMALL)  # the same field
        assert 10 <= len(native.frame_times_s) <= 60
        assert native.stenoses == [] or native.stenoses[0]["vessel"] == small.stenoses[0]["vessel"]
    sequence = rendered(3).image_sequence()
    sequence.validate()
    assert sequence.frames.shape == (FRAMES, SMALL, SMALL) and sequence.frames.dtype in (np.uint8, np.uint16)
    assert sequence.pixel_spacing_mm == rendered(3).pixel_spacing_mm
    assert min(FRAME_RATES) <= sequence.frame_rate_hz <= max(FRAME_RATES)


def test_box_sizes_and_positions_follow_the_real_annotations():
    clips = [truth(seed, NATIVE_MATRIX) for seed in range(30)]  # at 512², where pixel rounding is small
    boxes = np.array([b["box_px"] for c in clips for frame in c.boxes_px for b in frame]) / NATIVE_MATRIX
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    centre_x, centre_y = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    for values, real in (
        (width, REAL_BOX_WIDTH),
        (height, REAL_BOX_HEIGHT),
        (np.sqrt(width * height), REAL_BOX_SIZE),
        (centre_x, REAL_BOX_CENTRE_X),
        (centre_y, REAL_BOX_CENTRE_Y),
    ):
        low, high = np.interp((0.1, 0.9), QUANTILE_LEVELS, real)
        assert low <= np.median(values) <= high and low <= np.quantile(values, 0.25) < np.quantile(values, 0.75) <= high
    spreads = []
    for clip in clips:
        for n in range(len(clip.stenoses)):
            centres = [
                np.mean(np.reshape(b["box_px"], (2, 2)), axis=0) for f in clip.boxes_px for b in f if b["stenosis"] == n
            ]
            if len(centres) >= 5:
                spreads.append(np.hypot(*np.std(centres, axis=0)) / NATIVE_MATRIX)
    assert np.median(spreads) == pytest.approx(REAL_CENTRE_SPREAD_IN_RUN, rel=0.35)  # cardiac and breathing motion


def test_the_statistics_script_leaves_out_the_reserved_frames(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "filename,width,height,class,xmin,ymin,xmax,ymax\n"
        "14_002_5_0016.bmp,512,512,Stenosis,0,0,500,500\n"
        "14_003_1_0010.bmp,512,512,Stenosis,100,100,130,120\n"
        "14_003_1_0011.bmp,512,512,Stenosis,102,100,132,120\n"
    )
    real = read_real_boxes(labels)
    assert len(real["width"]) == 2 and set(real["run"]) == {"14_003_1"}
    assert real["width"] == pytest.approx([30 / 512] * 2) and real["centre_y"] == pytest.approx([110 / 512] * 2)
    assert "| size | 0.5 |" in comparison_table(real, real)


def test_the_cli_writes_a_png_frame_folder_and_the_ground_truth(tmp_path):
    assert main(["--seed", "3", "--matrix", "64", "--frames", "10", "--out", str(tmp_path)]) == 0
    written = json.loads((tmp_path / "clip.json").read_text())
    sequence = read_input(tmp_path / "frames")
    assert sequence.frames.shape == (10, 64, 64)
    assert [f["file"] for f in written["frames"]] == sorted(f["file"] for f in written["frames"])
    clip = make_angiography_clip(3, matrix=64, frame_count=10)
    assert np.array_equal(sequence.frames, clip.frames)  # name order is frame order
    assert (
        written["label"] == clip.label and written["filled_phase_frames"] == np.flatnonzero(clip.filled_phase).tolist()
    )
    assert [f["boxes"] for f in written["frames"]] == clip.boxes_px
    assert written["settings"]["seed"] == 3 and written["settings"]["generator_version"]

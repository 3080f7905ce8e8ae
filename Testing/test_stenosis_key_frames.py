"""Stenosis preprocessing on synthetic angiograms: vesselness, burned-in text masking, key-frame choice."""

import numpy as np
import torch

from LesionDetectLib.detectors.stenosis.key_frames import choose_key_frames, key_frames
from LesionDetectLib.detectors.stenosis.text_mask import MARGIN_PX, border_zone, masked_frames, text_mask
from LesionDetectLib.detectors.stenosis.vesselness import vesselness

BACKGROUND = 0.75
NOISE = 0.01
RNG_SEED = 7

# A 5×7 bitmap font: enough letters for the annotation an angiography system burns in.
GLYPHS = {
    "A": ["01110", "10001", "10001", "11111", "10001", "10001", "10001"],
    "C": ["01111", "10000", "10000", "10000", "10000", "10000", "01111"],
    "L": ["10000", "10000", "10000", "10000", "10000", "10000", "11111"],
    "O": ["01110", "10001", "10001", "10001", "10001", "10001", "01110"],
    "R": ["11110", "10001", "10001", "11110", "10100", "10010", "10001"],
    "0": ["01110", "10011", "10101", "10101", "11001", "10001", "01110"],
    "1": ["00100", "01100", "00100", "00100", "00100", "00100", "01110"],
    "2": ["01110", "10001", "00001", "00110", "01000", "10000", "11111"],
    "3": ["11110", "00001", "00001", "01110", "00001", "00001", "11110"],
    " ": ["00000"] * 7,
}


def _text_pixels(text: str, scale: int) -> np.ndarray:
    """Bool bitmap of `text`, each font pixel `scale` pixels wide, one font column between letters."""
    letters = [np.array([[bit == "1" for bit in row] for row in GLYPHS[char]]) for char in text]
    spaced = [np.pad(letter, ((0, 0), (0, 1))) for letter in letters]
    return np.kron(np.hstack(spaced), np.ones((scale, scale), dtype=bool))


def _burn_text(frames: np.ndarray, lines: list[tuple[str, int, int, int]], scale: int) -> np.ndarray:
    """Write each (text, row, column, grey) into every frame, in place; (rows, columns) bool of the glyphs."""
    glyphs = np.zeros(frames.shape[1:], dtype=bool)
    for text, row, column, grey in lines:
        bitmap = _text_pixels(text, scale)
        window = (slice(row, row + bitmap.shape[0]), slice(column, column + bitmap.shape[1]))
        glyphs[window] |= bitmap
        frames[:, window[0], window[1]][:, bitmap] = grey
    return glyphs


def _tube_frame(radius_mm: float, pixel_mm: float, contrast: float, size: int = 256) -> np.ndarray:
    """(1, size, size): a vertical tube through the middle, its projected thickness times `contrast` added to a
    flat background (negative contrast: dark, as a contrast-filled vessel), with a little noise."""
    columns = np.arange(size) - size // 2
    radius_px = radius_mm / pixel_mm
    thickness = np.sqrt(np.clip(radius_px**2 - columns**2, 0, None)) / radius_px
    image = BACKGROUND + contrast * np.tile(thickness, (size, 1))
    return (image + np.random.default_rng(RNG_SEED).normal(0, NOISE, image.shape))[None].astype(np.float32)


def _cumulative_length(points: np.ndarray) -> np.ndarray:
    """Path length along a polyline at each of its points."""
    return np.r_[0, np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))]


def _tree_branches(size: int) -> list[tuple[np.ndarray, float, float]]:
    """(centreline points (n, 2) in pixels, radius mm, path length from the ostium where the branch leaves)."""
    trunk = np.array([[0.15, 0.35], [0.35, 0.45], [0.55, 0.5], [0.8, 0.55]]) * size
    upper = np.array([[0.35, 0.45], [0.5, 0.3], [0.7, 0.2]]) * size
    lower = np.array([[0.55, 0.5], [0.7, 0.7], [0.85, 0.8]]) * size
    trunk_lengths = _cumulative_length(trunk)
    return [(trunk, 2.0, 0.0), (upper, 1.2, trunk_lengths[1]), (lower, 1.0, trunk_lengths[2])]


def _tree_length(size: int) -> float:
    """The longest path from the ostium to a branch's end, in pixels."""
    return max(start + _cumulative_length(points)[-1] for points, _, start in _tree_branches(size))


def _tree_attenuation(size: int, pixel_mm: float, offset_px, filled_from: float, filled_to: float) -> np.ndarray:
    """(size, size) projected thickness 0…1 of the tree's vessels whose path length from the ostium (pixels)
    lies in [filled_from, filled_to], the tree shifted by `offset_px` (the heart's motion)."""
    from scipy import ndimage

    path_length = np.full((size, size), np.inf)
    radius_px = np.zeros((size, size))
    for points, radius_mm, start in _tree_branches(size):
        for a, b, a_length in zip(points[:-1], points[1:], start + _cumulative_length(points)):
            steps = np.linspace(0, 1, int(np.linalg.norm(b - a) * 2) + 2)
            rows, columns = np.rint((a + np.outer(steps, b - a) + offset_px).T).astype(int)
            lengths = a_length + steps * np.linalg.norm(b - a)
            path_length[rows, columns] = np.minimum(path_length[rows, columns], lengths)
            radius_px[rows, columns] = radius_mm / pixel_mm
    distance, (nearest_rows, nearest_columns) = ndimage.distance_transform_edt(
        np.isinf(path_length), return_indices=True
    )
    radius = radius_px[nearest_rows, nearest_columns]
    length = path_length[nearest_rows, nearest_columns]
    filled = (length >= filled_from) & (length <= filled_to)
    return np.where(filled, np.sqrt(np.clip(radius**2 - distance**2, 0, None)) / radius, 0.0)


def _angiogram(attenuations: list[np.ndarray], contrast: float = 0.35) -> np.ndarray:
    """uint8 (frames, rows, columns): a background with a darker spine, vessels darkened by `contrast`, noise."""
    size = attenuations[0].shape[0]
    columns = np.arange(size) / size
    spine = 0.1 * np.exp(-(((columns - 0.6) / 0.12) ** 2))
    rng = np.random.default_rng(RNG_SEED)
    frames = [BACKGROUND - spine[None, :] - contrast * tree + rng.normal(0, NOISE, tree.shape) for tree in attenuations]
    return np.rint(255 * np.clip(frames, 0, 1)).astype(np.uint8)


def _heart_offset(frame: int) -> np.ndarray:
    return np.array([6 * np.sin(2 * np.pi * frame / 10), 4 * np.cos(2 * np.pi * frame / 10)])


def test_vesselness_finds_a_2mm_dark_tube_on_its_centreline():
    frame = _tube_frame(radius_mm=1.0, pixel_mm=0.3, contrast=-0.3)
    tubes = vesselness(frame, pixel_spacing_mm=(0.3, 0.3))[0]
    assert tubes.shape == frame.shape[1:] and tubes.dtype == np.float32
    assert 0.0 <= tubes.min() and tubes.max() <= 1.0
    centreline = tubes[20:-20, 127:130].max(axis=1)
    assert centreline.min() > 0.7
    assert np.abs(tubes[20:-20].argmax(axis=1) - 128).max() <= 2
    assert np.percentile(tubes[:, :96], 99) < 0.05  # flat background, 10 mm away


def test_vesselness_ignores_bright_tubes_step_edges_and_wide_bands():
    bright = _tube_frame(radius_mm=1.0, pixel_mm=0.3, contrast=0.3)
    wide_band = _tube_frame(radius_mm=12.0, pixel_mm=0.3, contrast=-0.3)  # 24 mm across: no coronary artery
    columns = np.arange(256)
    step = (np.where(columns < 128, BACKGROUND - 0.3, BACKGROUND) * np.ones((256, 1)))[None].astype(np.float32)
    step += np.random.default_rng(RNG_SEED).normal(0, NOISE, step.shape).astype(np.float32)
    for frame in (bright, wide_band, step):
        tubes = vesselness(frame, pixel_spacing_mm=(0.3, 0.3))[0]
        assert tubes[16:-16, 16:-16].max() < 0.3
        assert np.percentile(tubes, 99) < 0.2


def test_key_frames_lie_in_the_plateau_of_a_wash_in_wash_out_clip():
    size, pixel_mm = 256, 0.6
    length = _tree_length(size)
    wash_in, plateau, wash_out = range(6, 12), range(12, 22), range(22, 28)
    attenuations = []
    for frame in range(30):
        offset = _heart_offset(frame)
        if frame in wash_in:  # the contrast front travels down the tree as the injection builds up
            rise = (frame - 5) / 7
            tree = rise * _tree_attenuation(size, pixel_mm, offset, 0, rise * length)
        elif frame in plateau:
            tree = _tree_attenuation(size, pixel_mm, offset, 0, length)
        elif frame in wash_out:  # unopacified blood follows from the ostium
            fall = (frame - 21) / 7
            tree = (1 - fall) * _tree_attenuation(size, pixel_mm, offset, fall * length, length)
        else:
            tree = np.zeros((size, size))
        attenuations.append(tree)
    clip = _angiogram(attenuations)

    chosen = key_frames(clip, pixel_spacing_mm=(pixel_mm, pixel_mm))

    assert len(chosen.indices) == 5 and np.all(np.diff(chosen.indices) > 0)
    assert set(chosen.indices) <= set(plateau)
    np.testing.assert_array_equal(chosen.scores, chosen.filling[chosen.indices])
    first, last = chosen.filled_span
    assert first <= chosen.indices[0] and chosen.indices[-1] <= last
    assert first >= wash_in[0] and last <= wash_out[-1]
    assert chosen.filling[plateau].min() > 5 * chosen.filling[:6].max()
    assert chosen.notes == []


def test_a_clip_of_fewer_than_five_frames_keeps_all_of_them():
    smoothed, span, indices, notes = choose_key_frames(np.array([0.1, 0.3, 0.2]))
    np.testing.assert_array_equal(indices, [0, 1, 2])
    assert span == (0, 2) and len(smoothed) == 3
    assert "all frames" in notes[0]


def test_a_short_filled_phase_is_widened_to_five_frames():
    filling = np.zeros(20)
    filling[9:11] = [1.0, 0.9]
    _, span, indices, notes = choose_key_frames(filling)
    assert len(indices) == 5 and {9, 10} <= set(indices)
    assert span[1] - span[0] + 1 == 5 and notes


def _annotated_clip(frame_count: int, vessel_contrast: float = 0.35, dark_text: bool = True, wire: bool = False):
    """(uint8 clip of 512² frames with a moving tree and corner text, glyph mask, pixels that anything moving
    covers); `wire`: a sternal wire too, dark and sharp-edged as text is, drifting a few pixels with breathing."""
    size = 512
    offsets = [3 * _heart_offset(frame) for frame in range(frame_count)]
    trees = [_tree_attenuation(size, 0.3, offset, 0, _tree_length(size)) for offset in offsets]
    clip = _angiogram(trees, vessel_contrast)
    moving = np.max(trees, axis=0) > 0.2
    for index, frame in enumerate(clip):
        if wire:
            row = 250 + round(2 * np.sin(2 * np.pi * index / frame_count))
            frame[row : row + 4, 30:54] = 10
            moving[row : row + 4, 30:54] = True
    lines = [("LAO 30", 10, 12, 255), ("CRA 12", 30, 12, 255), ("L 0123", 10, 400, 255), ("RAO 2", 480, 12, 255)]
    glyphs = _burn_text(clip, lines + [("CORA 1", 480, 380, 0)] * dark_text, scale=2)
    return clip, glyphs, moving


def _assert_mask_matches_text(mask: np.ndarray, glyphs: np.ndarray, moving: np.ndarray) -> None:
    from scipy import ndimage

    assert (mask & glyphs).sum() >= 0.95 * glyphs.sum()
    near_glyphs = ndimage.binary_dilation(glyphs, iterations=MARGIN_PX + 1)
    assert (mask & ~near_glyphs).sum() <= 0.05 * mask.sum()
    assert (mask & moving & ~near_glyphs).sum() == 0


def test_text_mask_finds_corner_text_and_spares_what_moves():
    clip, glyphs, moving = _annotated_clip(frame_count=12, wire=True)
    assert (moving & border_zone(moving.shape)).sum() > 500  # vessels and wire reach into the zone text lies in
    _assert_mask_matches_text(text_mask(clip), glyphs, moving)


def test_text_mask_finds_grey_text_on_a_grey_background_because_it_carries_no_noise():
    """Overlay text of a mid grey, far from the clip's extremes and faint against the anatomy it sits on (a
    brighter lung field sets the range), is still found in a cine: it alone is free of quantum noise."""
    clip, _, moving = _annotated_clip(frame_count=12, dark_text=False)
    clip[:, 200:300, 200:300] = 250  # a bright field in the middle: the clip's top grey
    grey_text = _burn_text(clip, [("LAO 12", 440, 20, 212), ("CRA 3", 470, 20, 212)], scale=2)
    mask = text_mask(clip)
    assert (mask & grey_text).sum() >= 0.95 * grey_text.sum()
    assert (mask & moving).sum() == 0


def test_text_mask_works_on_a_single_frame():
    clip, glyphs, moving = _annotated_clip(frame_count=1)
    _assert_mask_matches_text(text_mask(clip), glyphs, moving)


def test_single_frame_vessels_darker_than_anything_else_are_not_text():
    clip, glyphs, moving = _annotated_clip(frame_count=1, vessel_contrast=0.6, dark_text=False)
    _assert_mask_matches_text(text_mask(clip), glyphs, moving)


def test_a_clip_without_text_has_an_empty_mask():
    size = 512
    trees = [_tree_attenuation(size, 0.3, 3 * _heart_offset(frame), 0, _tree_length(size)) for frame in range(6)]
    for clip in (_angiogram(trees), _angiogram(trees[:1], contrast=0.6)):
        assert not text_mask(clip).any()


def test_masked_text_leaves_no_vesselness():
    clip, glyphs, _ = _annotated_clip(frame_count=2)
    mask = text_mask(clip)
    filled = masked_frames(clip, mask)
    assert filled.dtype == clip.dtype
    np.testing.assert_array_equal(filled[:, ~mask], clip[:, ~mask])
    dark_text = glyphs & (np.arange(512)[:, None] > 400) & (np.arange(512)[None, :] > 300)
    before = vesselness(clip)[:, dark_text].mean()
    after = vesselness(filled)[:, dark_text].mean()
    assert before > 0.2 and after < 0.05


def test_network_input_stretches_the_clip_alike_and_maps_back_onto_frame_pixels():
    from LesionDetectLib.detectors.stenosis.preprocess import network_input, to_frame_pixels

    frames = np.full((3, 300, 200), 100, dtype=np.uint16)
    frames[1] = 60  # a darker frame stays darker than the others after stretching
    frames[:, 100:120, 50:60] = 20  # a dark vessel
    inputs = network_input(frames, np.zeros((300, 200), dtype=bool), input_size=64)
    assert inputs.shape == (3, 1, 64, 64) and inputs.dtype == torch.float32
    assert 0.0 <= float(inputs.min()) and float(inputs.max()) <= 1.0
    assert float(inputs[1].mean()) < float(inputs[0].mean())
    heat = np.zeros((1, 64, 64), dtype=np.float32)
    heat[0, 20:24, 40:44] = 1.0  # rows 20–23 of 64 → 94–112 of 300; columns 40–43 of 64 → 125–137 of 200
    back = to_frame_pixels(heat, (300, 200))
    row, col = np.unravel_index(back[0].argmax(), (300, 200))
    assert back.shape == (1, 300, 200) and 90 <= row <= 115 and 122 <= col <= 140

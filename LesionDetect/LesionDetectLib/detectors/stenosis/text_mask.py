"""Burned-in annotation on angiography frames (patient data, angles, frame counters), found and painted over.

A glyph pixel stands out from its surroundings at the scale of a pen stroke, lies near the ends of the clip's grey
range and near the frame's edge and, in a cine, stays the same in every frame while the anatomy beneath it moves.
In a cine, a pixel with no quantum noise at all is an overlay even when its grey is mid-range and faint against
the anatomy (grey text on a bright lung field): there the grey-range criterion is waived.
Glyphs are grouped into text lines; a region too tall for a line, or with edges softer than a glyph's one-pixel
step (a vessel's), is dropped. A single frame has no motion to go by, so there the other criteria decide alone.
"""

from __future__ import annotations

import numpy as np

BORDER_FRACTION = 0.2  # of the frame side: annotation lies this close to an edge
GREY_PERCENTILES = (0.1, 99.9)  # the clip's grey range; white text is usually its very top
EXTREME_FRACTION = 0.15  # white glyphs lie in the top, black ones in the bottom 15 % of that range
CONTRAST_FRACTION = 0.2  # of the range: how far a glyph stands out from its surroundings (top-hat)
SHARPNESS = 0.8  # a glyph's edge: this share of its contrast within a 3×3 neighbourhood
MIN_SHARP_FRACTION = 0.5  # of a text line's glyph pixels
CONSTANT_STD_FRACTION = 0.02  # of the range: burned-in pixels vary less than this over the cine
STILL_STD_FRACTION = 0.002  # of the range: a pixel this still over a cine carries no quantum noise: an overlay
STILL_CONTRAST_FRACTION = 0.03  # of the range: a still glyph need only stand out this much (grey on grey)
STROKE_WINDOW_FRACTION = 1 / 48  # top-hat window, of the frame side: wider than a glyph's stroke
LINE_GAP_FRACTION = 1 / 64  # of the frame side: letter and word spacing bridged into one line
MAX_LINE_HEIGHT_FRACTION = 0.08  # of the frame height: taller regions are not a line of text
MIN_GLYPH_PIXELS = 6  # smaller specks are noise or a dead pixel
MARGIN_PX = 2  # around the glyphs: their antialiased rim
FILL_SMOOTHING_PX = 2.0  # Gaussian sigma over the nearest-pixel fill


def text_mask(frames: np.ndarray) -> np.ndarray:
    """(rows, columns) bool: the burned-in annotation of a clip (frames, rows, columns) or of a single frame."""
    from scipy import ndimage

    frames = np.asarray(frames, dtype=np.float32)
    reference = np.median(frames, axis=0)  # the text; moving anatomy where it lingers longest
    low, high = np.percentile(reference, GREY_PERCENTILES)
    grey_range = max(float(high - low), 1e-6)
    grey = (reference - low) / grey_range
    window = odd_size(STROKE_WINDOW_FRACTION * max(grey.shape))
    above = ndimage.white_tophat(grey, size=window)
    below = ndimage.black_tophat(grey, size=window)
    standout = np.maximum(above, below)  # from its surroundings, bright or dark
    bright = (grey >= 1 - EXTREME_FRACTION) & (above >= CONTRAST_FRACTION)
    dark = (grey <= EXTREME_FRACTION) & (below >= CONTRAST_FRACTION)
    glyphs = bright | dark
    if len(frames) > 1:
        spread = frames.std(axis=0)
        still = (spread <= STILL_STD_FRACTION * grey_range) & (standout >= STILL_CONTRAST_FRACTION)
        glyphs = (glyphs & (spread <= CONSTANT_STD_FRACTION * grey_range)) | still
    glyphs &= border_zone(grey.shape)
    sharp = ndimage.morphological_gradient(grey, size=3) >= SHARPNESS * standout
    return ndimage.binary_dilation(text_lines(glyphs, sharp), iterations=MARGIN_PX)


def text_lines(glyphs: np.ndarray, sharp: np.ndarray) -> np.ndarray:
    """The glyph pixels that group, with letter spacing bridged, into regions no taller than a line of text
    whose glyph pixels are mostly `sharp`."""
    from scipy import ndimage

    gap = odd_size(LINE_GAP_FRACTION * glyphs.shape[1])
    lines = ndimage.binary_closing(glyphs, structure=np.ones((3, gap), dtype=bool)) | glyphs
    labelled, _ = ndimage.label(lines)
    max_height = MAX_LINE_HEIGHT_FRACTION * glyphs.shape[0]
    keep = np.zeros(labelled.max() + 1, dtype=bool)
    glyph_counts = np.bincount(labelled[glyphs], minlength=len(keep))
    sharp_counts = np.bincount(labelled[glyphs & sharp], minlength=len(keep))
    for index, found in enumerate(ndimage.find_objects(labelled), start=1):
        line_shaped = found[0].stop - found[0].start <= max_height and glyph_counts[index] >= MIN_GLYPH_PIXELS
        keep[index] = line_shaped and sharp_counts[index] >= MIN_SHARP_FRACTION * glyph_counts[index]
    return glyphs & keep[labelled]


def border_zone(shape: tuple[int, int]) -> np.ndarray:
    """(rows, columns) bool: within BORDER_FRACTION of the frame side from any edge."""
    rows, columns = shape
    row_margin, column_margin = round(BORDER_FRACTION * rows), round(BORDER_FRACTION * columns)
    zone = np.ones(shape, dtype=bool)
    zone[row_margin : rows - row_margin, column_margin : columns - column_margin] = False
    return zone


def odd_size(length: float) -> int:
    """A filter window of about `length` pixels, odd so that it centres on a pixel, at least 3."""
    return max(3, int(length) // 2 * 2 + 1)


def masked_frames(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The frames with the masked pixels filled from the nearest unmasked ones, smoothed over
    FILL_SMOOTHING_PX so that the seams of the fill make no edges; the frames' dtype is kept."""
    from scipy import ndimage

    frames = np.asarray(frames)
    if not mask.any():
        return frames.copy()
    nearest_rows, nearest_columns = ndimage.distance_transform_edt(mask, return_distances=False, return_indices=True)
    filled = frames[:, nearest_rows, nearest_columns].astype(np.float32)
    smoothed = ndimage.gaussian_filter(filled, sigma=(0.0, FILL_SMOOTHING_PX, FILL_SMOOTHING_PX))
    result = frames.copy()
    values = smoothed[:, mask]
    result[:, mask] = np.rint(values) if np.issubdtype(frames.dtype, np.integer) else values
    return result

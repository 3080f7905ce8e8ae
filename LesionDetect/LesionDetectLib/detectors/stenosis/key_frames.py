"""Key frames of an angiography cine: the frames whose vessels are most filled with contrast.

Each frame's filling is the share of its pixels (outside the burned-in text) that lie on a vessel, read as a
vesselness above half the 99.5th percentile of the clip's most vessel-rich frame. The filled phase is the run of frames
around the peak of the smoothed filling curve that stays above FILLED_FRACTION of that peak, before the contrast
washes out; its best KEY_FRAME_COUNT frames are the key frames, as in the paper's "key frames in the mid part".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from LesionDetectLib.detectors.stenosis.text_mask import masked_frames, text_mask
from LesionDetectLib.detectors.stenosis.vesselness import vesselness

KEY_FRAME_COUNT = 5
VESSEL_PERCENTILE = 99.5  # a frame's vessel level: at least 0.5 % of a filled frame is vessel
VESSEL_LEVEL_FRACTION = 0.5  # of the best frame's vessel level: a pixel on a vessel
FILLING_SMOOTHING_FRAMES = 2.0  # Gaussian sigma: the heartbeat shakes the curve from frame to frame
FILLED_FRACTION = 0.7  # of the smoothed curve's peak: the filled phase


@dataclass
class KeyFrames:
    filling: np.ndarray  # (frames,) share of the pixels outside the text on a filled vessel
    smoothed_filling: np.ndarray  # (frames,) the same, smoothed over time
    filled_span: tuple[int, int]  # first and last frame (inclusive) of the filled phase
    indices: np.ndarray  # the key frames, in input order
    text_mask: np.ndarray  # (rows, columns) bool: the burned-in annotation left out of the filling
    notes: list[str] = field(default_factory=list)

    @property
    def scores(self) -> np.ndarray:
        """The filling of each key frame."""
        return self.filling[self.indices]


def key_frames(
    frames: np.ndarray, pixel_spacing_mm: tuple[float, float] | None = None, count: int = KEY_FRAME_COUNT
) -> KeyFrames:
    """Mask the text, measure every frame's vessel filling, choose the `count` best frames of the filled phase."""
    mask = text_mask(frames)
    vessels = vesselness(masked_frames(frames, mask), pixel_spacing_mm)
    filling = vessel_filling(vessels, mask)
    smoothed, span, indices, notes = choose_key_frames(filling, count)
    return KeyFrames(filling, smoothed, span, indices, mask, notes)


def vessel_filling(vessels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(frames,) share of each frame's unmasked pixels whose vesselness is above the clip's vessel level."""
    outside = vessels[:, ~mask]
    level = VESSEL_LEVEL_FRACTION * np.percentile(outside, VESSEL_PERCENTILE, axis=1).max()
    if level <= 0:
        return np.zeros(len(vessels))
    return (outside > level).mean(axis=1)


def choose_key_frames(
    filling: np.ndarray, count: int = KEY_FRAME_COUNT
) -> tuple[np.ndarray, tuple[int, int], np.ndarray, list[str]]:
    """(smoothed curve, filled span, the `count` best frames of the span in input order, notes)."""
    from scipy.ndimage import gaussian_filter1d

    filling = np.asarray(filling, dtype=float)
    frame_count = len(filling)
    smoothed = gaussian_filter1d(filling, FILLING_SMOOTHING_FRAMES, mode="nearest")
    if frame_count <= count:
        notes = [f"Fewer frames ({frame_count}) than key frames ({count}): all frames of the clip are used."]
        return smoothed, (0, frame_count - 1), np.arange(frame_count), notes
    peak = int(smoothed.argmax())
    if smoothed[peak] <= 0:
        first = (frame_count - count) // 2
        notes = ["No contrast-filled vessels were found: the key frames are the middle of the clip."]
        return smoothed, (0, frame_count - 1), np.arange(first, first + count), notes
    first, last = filled_span(smoothed, peak)
    notes = []
    if last - first + 1 < count:
        first, last = widened_span(smoothed, first, last, count)
        notes.append(f"The filled phase is shorter than {count} frames: it was widened to frames {first}–{last}.")
    best = first + np.argsort(-filling[first : last + 1], kind="stable")[:count]
    return smoothed, (first, last), np.sort(best), notes


def filled_span(smoothed: np.ndarray, peak: int) -> tuple[int, int]:
    """The contiguous frames around `peak` whose smoothed filling stays at or above FILLED_FRACTION of it."""
    from scipy import ndimage

    runs, _ = ndimage.label(smoothed >= FILLED_FRACTION * smoothed[peak])
    span = np.flatnonzero(runs == runs[peak])
    return int(span[0]), int(span[-1])


def widened_span(smoothed: np.ndarray, first: int, last: int, count: int) -> tuple[int, int]:
    """The span grown a frame at a time towards its better-filled neighbour until it holds `count` frames."""
    while last - first + 1 < count:
        grow_before = last == len(smoothed) - 1 or (first > 0 and smoothed[first - 1] >= smoothed[last + 1])
        first, last = (first - 1, last) if grow_before else (first, last + 1)
    return first, last

"""Greyscale frames from pixels with colour or alpha components."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from LesionDetectLib.errors import LesionDetectError

LUMINANCE_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as Pillow's convert("L")
RGB_NOTE = "RGB image read as grey (luminance)"


def to_grey(pixels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(frames, rows, columns) grey from (frames, rows, columns, components), and the notes on what was done.

    One component, or grey plus alpha, keeps its values and type; RGB(A) whose channels are all equal
    (grey stored as colour) keeps them too; other colour becomes float32 luminance, with a note.
    """
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8)
    if pixels.shape[-1] < 3:
        return pixels[..., 0], []
    rgb = pixels[..., :3]
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return rgb[..., 0], []
    return (rgb @ LUMINANCE_WEIGHTS).astype(np.float32), [RGB_NOTE]


def grey_frames_of(sources: list, read: Callable, size_problem: Callable) -> tuple[np.ndarray, list[str]]:
    """The grey frames of every source in order, stacked, and the notes without repeats.

    `read(source)` gives its pixels; `size_problem(source, (columns, rows), first_size)` words the refusal
    of a source whose frames differ in size from the first's.
    """
    frames, notes = [], []
    for source in sources:
        grey, source_notes = to_grey(read(source))
        if frames and grey.shape[1:] != frames[0].shape[1:]:
            size, first_size = grey.shape[:0:-1], frames[0].shape[:0:-1]
            raise LesionDetectError(size_problem(source, size, first_size))
        frames.append(grey)
        notes += [note for note in source_notes if note not in notes]
    return np.concatenate(frames), notes

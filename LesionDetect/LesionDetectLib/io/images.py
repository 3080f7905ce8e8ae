"""Read PNG, JPEG, BMP and TIFF images, alone or as a folder of frames, into an `ImageSequence`.

Pixel values are kept (16-bit PNG and TIFF stay 16-bit); colour becomes grey (`grey_pixels`).
A multi-page TIFF gives one frame per page. Frames of a folder follow natural name order, so
frame2 comes before frame10. imageio and tifffile come with scikit-image.
"""

from __future__ import annotations

import re
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tifffile

from LesionDetectLib.errors import CancelledError, LesionDetectError
from LesionDetectLib.io.grey_pixels import grey_frames_of, to_grey
from LesionDetectLib.io.image_sequence import ImageSequence

FRAME_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def is_frame_image(path: Path) -> bool:
    return path.suffix.lower() in FRAME_IMAGE_SUFFIXES


def read_image_file(path: Path) -> ImageSequence:
    """One image file as a sequence of its frames (one, unless it is a multi-page TIFF)."""
    frames, notes = to_grey(_pixels(path))
    return ImageSequence(frames, name=path.stem, notes=notes)


def read_image_folder(folder: Path, paths: list[Path]) -> ImageSequence:
    """The image files `paths` of `folder` as the frames of one sequence, in natural name order."""
    ordered = sorted(paths, key=natural_key)

    def size_problem(path, size, first_size):
        return (
            f"'{path.name}' in '{folder}' is {size[0]}×{size[1]} pixels but '{ordered[0].name}' is "
            f"{first_size[0]}×{first_size[1]}; all frames of a sequence must have the same size. "
            "Move the odd image out of the folder."
        )

    frames, notes = grey_frames_of(ordered, _pixels, size_problem)
    return ImageSequence(frames, name=folder.name, notes=notes)


def natural_key(path: Path) -> list:
    """Sort key reading digit runs as numbers: 'frame2' < 'frame10'."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name.lower())]


def _pixels(path: Path) -> np.ndarray:
    """(frames, rows, columns, components) of one image file."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            return _tiff_pixels(path)
        pixels = iio.imread(path, index=...)  # every frame (an animated PNG has several), frames first
    except CancelledError:
        raise
    except Exception as error:  # the image libraries raise many types for damaged or odd files
        raise LesionDetectError(
            f"'{path}' could not be read as a {path.suffix.lstrip('.').upper()} image ({error}); "
            "check that the file is complete, or save it again as PNG."
        ) from error
    return pixels[..., np.newaxis] if pixels.ndim == 3 else pixels


def _tiff_pixels(path: Path) -> np.ndarray:
    """Every page of a TIFF, colour samples last."""
    with tifffile.TiffFile(path) as tiff:
        series = tiff.series[0]
        pixels, axes = series.asarray(), series.axes
    if "S" in axes:
        pixels = np.moveaxis(pixels, axes.index("S"), -1)
        axes = axes.replace("S", "") + "S"
    else:
        pixels = pixels[..., np.newaxis]
    if not axes.rstrip("S").endswith("YX"):
        raise ValueError(f"its axes are {series.axes}, not rows and columns")
    return pixels.reshape(-1, *pixels.shape[-3:])

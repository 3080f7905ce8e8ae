"""Read DICOM pixels with SimpleITK (GDCM decodes every transfer syntax and applies rescale slope and
intercept, so CT values come out in their calibrated unit); the geometry comes from the headers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.itk_image import error_reason, quiet_execute


def read_series_pixels(source: str, paths: list[Path]) -> np.ndarray:
    """The slices of `paths`, in that order, as one (slices, rows, columns) array; name a damaged file.

    `source` starts the messages, e.g. "The series in '/data/ct'".
    """
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(path) for path in paths])
    try:
        image = quiet_execute(reader)  # its spacing warning is stricter than the checks already made
    except RuntimeError as error:
        unreadable = next((path for path in paths if not _pixels_readable(path)), None)
        culprit = f"'{unreadable.name}' is damaged or incomplete" if unreadable else error_reason(error)
        raise LesionDetectError(
            f"{source} could not be read: {culprit}; remove that file or export the series again."
        ) from error
    if image.GetNumberOfComponentsPerPixel() > 1:
        raise LesionDetectError(f"{source} holds colour images; the detectors need a greyscale CT or MR series.")
    return sitk.GetArrayFromImage(image)


def read_file_pixels(path: Path) -> np.ndarray:
    """All frames of one DICOM file as (frames, rows, columns, components)."""
    try:
        image = quiet_execute(_file_reader(path))
    except RuntimeError as error:
        raise LesionDetectError(
            f"The pixels of '{path}' could not be read ({error_reason(error)}); "
            "the file is damaged or incomplete: export it again."
        ) from error
    pixels = sitk.GetArrayFromImage(image)
    if image.GetNumberOfComponentsPerPixel() == 1:
        pixels = pixels[..., np.newaxis]
    return pixels.reshape(-1, *pixels.shape[-3:])


def _file_reader(path: Path) -> sitk.ImageFileReader:
    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileName(str(path))
    return reader


def _pixels_readable(path: Path) -> bool:
    """Whether SimpleITK can read the pixels of one DICOM file."""
    try:
        quiet_execute(_file_reader(path))
    except RuntimeError:
        return False
    return True

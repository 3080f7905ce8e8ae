"""The one entry point that reads whatever a detector is given: a `Volume` or an `ImageSequence`.

- a folder: the DICOM images found below it at any depth (one series, or the one `series_uid`
  chooses), or else the PNG/JPEG/BMP/TIFF frames directly in it;
- a DICOM file: its series among the files beside it, or just itself when it is multi-frame;
- .nrrd/.nhdr, .nii/.nii.gz, .mha/.mhd volumes; .png/.jpg/.bmp/.tif images.
"""

from __future__ import annotations

import os
from pathlib import Path

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.dicom_choice import choose_series
from LesionDetectLib.io.dicom_echoes import refuse_echo_choice
from LesionDetectLib.io.dicom_files import DicomImage, read_dicom_image, read_dicom_images
from LesionDetectLib.io.dicom_multiframe import read_multiframe
from LesionDetectLib.io.dicom_projection import read_projection_images
from LesionDetectLib.io.dicom_series import read_slice_series
from LesionDetectLib.io.image_sequence import ImageSequence
from LesionDetectLib.io.images import FRAME_IMAGE_SUFFIXES, is_frame_image, read_image_file, read_image_folder
from LesionDetectLib.io.volume import Volume
from LesionDetectLib.io.volume_files import VOLUME_SUFFIXES, read_volume_file


def read_input(path, *, series_uid: str | None = None, echo: str | None = None) -> Volume | ImageSequence:
    """Read `path` (see the module docstring); `series_uid` chooses a DICOM series (a UID or a listed
    no-uid- key), `echo` an echo of a multi-echo series ("N" or "combine")."""
    path = Path(path)
    if not path.exists():
        raise LesionDetectError(f"'{path}' does not exist; check the path and choose an existing file or folder.")
    if path.is_dir():
        image = _read_folder(path, series_uid, echo)
    elif path.name.lower().endswith(VOLUME_SUFFIXES):
        refuse_echo_choice(f"'{path}'", echo)
        image = read_volume_file(path)
    elif is_frame_image(path):
        refuse_echo_choice(f"'{path}'", echo)
        image = read_image_file(path)
    else:
        image = _read_dicom_file(path, series_uid, echo)
    image.validate()
    return image


def _read_folder(folder: Path, series_uid: str | None, echo: str | None) -> Volume | ImageSequence:
    files = _files_below(folder)
    if not files:
        raise LesionDetectError(
            f"The folder '{folder}' holds no files; choose the folder that contains the DICOM series or image frames."
        )
    frame_files = [path for path in files if path.parent == folder and is_frame_image(path)]
    dicom_images = read_dicom_images([path for path in files if not is_frame_image(path)])
    if dicom_images and frame_files:
        raise LesionDetectError(
            f"The folder '{folder}' holds both DICOM images (such as '{dicom_images[0].path.relative_to(folder)}') "
            f"and image files (such as '{frame_files[0].name}'); put them in separate folders and choose one."
        )
    if dicom_images:
        return _read_dicom_series(folder, dicom_images, series_uid, echo)
    if frame_files:
        refuse_echo_choice(f"The image frames in '{folder}'", echo)
        return read_image_folder(folder, frame_files)
    raise LesionDetectError(
        f"The folder '{folder}' holds no DICOM images and no {'/'.join(FRAME_IMAGE_SUFFIXES)} images; "
        "choose the folder that contains the series files or image frames."
    )


def _read_dicom_file(path: Path, series_uid: str | None, echo: str | None) -> Volume | ImageSequence:
    """A multi-frame file by itself; a single-frame file with the other files of its series beside it."""
    image = read_dicom_image(path)
    if image is None:
        raise LesionDetectError(
            f"'{path}' is neither a DICOM image nor a supported volume file ({', '.join(VOLUME_SUFFIXES)}) "
            f"or image ({', '.join(FRAME_IMAGE_SUFFIXES)}); choose a DICOM series folder or one of those files."
        )
    if image.frames > 1:
        return read_multiframe(image, echo)
    siblings = sorted(
        sibling
        for sibling in path.parent.iterdir()
        if sibling.is_file() and not sibling.name.startswith(".") and not is_frame_image(sibling)
    )
    return _read_dicom_series(path.parent, read_dicom_images(siblings), series_uid or image.series_key, echo)


def _read_dicom_series(
    folder: Path, images: list[DicomImage], series_uid: str | None, echo: str | None
) -> Volume | ImageSequence:
    """The chosen series of `images`, read by the reader for its kind of images."""
    series = choose_series(folder, images, series_uid)
    if any(image.frames > 1 for image in series):
        if len(series) == 1:
            return read_multiframe(series[0], echo)
        raise LesionDetectError(
            f"Series {series[0].series_key} in '{folder}' holds {len(series)} files, multi-frame ones among them "
            f"(such as '{next(image.path.name for image in series if image.frames > 1)}'); "
            "choose one multi-frame file as the input."
        )
    if all(image.plane is None for image in series):
        refuse_echo_choice(f"The series in '{folder}'", echo)
        return read_projection_images(series)
    return read_slice_series(series, echo)


def _files_below(folder: Path) -> list[Path]:
    """Every file below `folder` at any depth (hidden ones skipped, symbolic links to folders not followed)."""
    files = []
    for root, folders, names in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        files += [Path(root) / name for name in sorted(names) if not name.startswith(".")]
    return files

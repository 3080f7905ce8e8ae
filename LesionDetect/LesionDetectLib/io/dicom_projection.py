"""Read a series of single-frame DICOM images without patient position (radiographs, X-ray or
ultrasound stills) as an `ImageSequence`, one frame per file in InstanceNumber order."""

from __future__ import annotations

import numpy as np

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.dicom_choice import series_folder
from LesionDetectLib.io.dicom_files import DicomImage
from LesionDetectLib.io.dicom_pixels import read_file_pixels
from LesionDetectLib.io.grey_pixels import to_grey
from LesionDetectLib.io.image_sequence import ImageSequence


def read_projection_images(images: list[DicomImage]) -> ImageSequence:
    """The images of one series as frames; refuse frames of different sizes, naming the file."""
    ordered = sorted(images, key=lambda image: (image.instance_number, image.path.name))
    frames, notes = [], []
    for image in ordered:
        grey, image_notes = to_grey(read_file_pixels(image.path))
        if frames and grey.shape[1:] != frames[0].shape[1:]:
            raise LesionDetectError(
                f"'{image.path.name}' in '{image.path.parent}' is {grey.shape[2]}×{grey.shape[1]} pixels but "
                f"'{ordered[0].path.name}' of the same series is {frames[0].shape[2]}×{frames[0].shape[1]}; "
                "choose a single image file, or a series whose images all have one size."
            )
        frames.append(grey)
        notes += [note for note in image_notes if note not in notes]
    first = ordered[0]
    name = first.description or series_folder(images).name
    return ImageSequence(
        np.concatenate(frames), name=name, modality=first.modality, pixel_spacing_mm=first.pixel_spacing_mm, notes=notes
    )

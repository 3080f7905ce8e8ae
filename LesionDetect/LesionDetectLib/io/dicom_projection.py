"""Read a series of single-frame DICOM images without patient position (radiographs, X-ray or
ultrasound stills) as an `ImageSequence`, one frame per file in InstanceNumber order."""

from __future__ import annotations

from LesionDetectLib.io.dicom_choice import series_folder
from LesionDetectLib.io.dicom_files import DicomImage
from LesionDetectLib.io.dicom_pixels import read_file_pixels
from LesionDetectLib.io.grey_pixels import grey_frames_of
from LesionDetectLib.io.image_sequence import ImageSequence


def read_projection_images(images: list[DicomImage]) -> ImageSequence:
    """The images of one series as frames; refuse frames of different sizes, naming the file."""
    ordered = sorted(images, key=lambda image: (image.instance_number, image.path.name))

    def size_problem(image, size, first_size):
        return (
            f"'{image.path.name}' in '{image.path.parent}' is {size[0]}×{size[1]} pixels but "
            f"'{ordered[0].path.name}' of the same series is {first_size[0]}×{first_size[1]}; "
            "choose a single image file, or a series whose images all have one size."
        )

    frames, notes = grey_frames_of(ordered, lambda image: read_file_pixels(image.path), size_problem)
    first = ordered[0]
    name = first.description or series_folder(images).name
    return ImageSequence(
        frames, name=name, modality=first.modality, pixel_spacing_mm=first.pixel_spacing_mm, notes=notes
    )

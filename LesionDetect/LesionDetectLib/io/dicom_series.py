"""Read one series of single-frame DICOM slices (CT, MR, PET...) into a `Volume`.

The headers decide the order and geometry (`slice_stack`); SimpleITK reads the pixels. A multi-echo
series gives the chosen echo or the root sum of squares over echoes; a single slice gives a one-frame
`ImageSequence`.
"""

from __future__ import annotations

import numpy as np

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.dicom_choice import series_folder
from LesionDetectLib.io.dicom_echoes import Echo, choose_echoes, refuse_echo_choice, split_echoes
from LesionDetectLib.io.dicom_files import DicomImage
from LesionDetectLib.io.dicom_pixels import read_file_pixels, read_series_pixels
from LesionDetectLib.io.grey_pixels import to_grey
from LesionDetectLib.io.image_sequence import ImageSequence
from LesionDetectLib.io.slice_stack import SliceStack, stack_planes, stack_to_volume
from LesionDetectLib.io.volume import Volume


def read_slice_series(images: list[DicomImage], echo: str | None) -> Volume | ImageSequence:
    """The volume of one series' slices (`echo`: None, "N" or "combine"); a single slice as a 2D image."""
    folder = series_folder(images)
    source = f"The series in '{folder}'"
    without_position = next((image for image in images if image.plane is None), None)
    if without_position:
        raise LesionDetectError(
            f"'{without_position.path.name}' in '{folder}' has no ImagePositionPatient or ImageOrientationPatient "
            "although other images of its series do; the file header is damaged. Export the series again."
        )
    if images[0].pixel_spacing_mm is None:
        raise LesionDetectError(
            f"{source} has no PixelSpacing in '{images[0].path.name}'; the file headers are incomplete."
        )
    name, modality = images[0].description or folder.name, images[0].modality
    if len(images) == 1:
        refuse_echo_choice(source, echo)
        frames, notes = to_grey(read_file_pixels(images[0].path))
        return ImageSequence(
            frames, name=name, modality=modality, pixel_spacing_mm=images[0].pixel_spacing_mm, notes=notes
        )
    echoes, notes = choose_echoes(source, split_echoes(images), echo)
    stacks = [stack_planes(source, [image.plane for image in item.images]) for item in echoes]
    _check_same_positions(source, echoes, stacks)
    echo_voxels = [
        read_series_pixels(source, [item.images[index].path for index in stack.order])
        for item, stack in zip(echoes, stacks)
    ]
    if len(echo_voxels) == 1:
        voxels = echo_voxels[0]
    else:
        voxels = np.sqrt(sum(np.square(item, dtype=np.float64) for item in echo_voxels)).astype(np.float32)
    volume = stack_to_volume(stacks[0], voxels, images[0].pixel_spacing_mm, name, modality)
    volume.notes[:0] = notes
    return volume


def _check_same_positions(source: str, echoes: list[Echo], stacks: list[SliceStack]) -> None:
    """Echoes combined voxel by voxel must cover the same slice positions."""
    first = np.array([echoes[0].images[index].plane.position_lps for index in stacks[0].order])
    for item, stack in zip(echoes[1:], stacks[1:]):
        positions = np.array([item.images[index].plane.position_lps for index in stack.order])
        if positions.shape != first.shape or not np.allclose(positions, first, atol=0.01):
            raise LesionDetectError(
                f"{source}: echo {item.number} covers other slice positions than echo {echoes[0].number}; "
                "its echoes cannot be combined. Choose one echo with --echo N."
            )

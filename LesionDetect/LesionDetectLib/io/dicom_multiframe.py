"""Read one multi-frame DICOM file.

A cine (X-ray angiography or fluoroscopy, ultrasound: frames without patient geometry) becomes an
`ImageSequence` with frame times and imager pixel spacing. An enhanced CT or MR, whose functional
groups place every frame in the patient, becomes a `Volume` with exact geometry.
"""

from __future__ import annotations

import numpy as np
import pydicom

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.dicom_echoes import refuse_echo_choice
from LesionDetectLib.io.dicom_files import DicomImage
from LesionDetectLib.io.dicom_pixels import read_file_pixels
from LesionDetectLib.io.grey_pixels import to_grey
from LesionDetectLib.io.image_sequence import ImageSequence
from LesionDetectLib.io.slice_stack import Plane, stack_planes, stack_to_volume
from LesionDetectLib.io.volume import Volume

FRAME_TIME_VECTOR_TAG = 0x00181065


def read_multiframe(image: DicomImage, echo: str | None) -> Volume | ImageSequence:
    """The frames of `image`'s file as a cine `ImageSequence`, or as a `Volume` when they are placed in the patient."""
    source = f"'{image.path}'"
    refuse_echo_choice(source, echo)
    header = pydicom.dcmread(image.path, stop_before_pixels=True)
    pixels = read_file_pixels(image.path)
    name = image.description or image.path.stem
    groups = list(header.get("PerFrameFunctionalGroupsSequence") or [])
    shared = (header.get("SharedFunctionalGroupsSequence") or [None])[0]
    planes = _frame_planes(source, groups, shared)
    if planes is None:
        frames, notes = to_grey(pixels)
        times_s = _frame_times_s(header, len(frames))
        return ImageSequence(
            frames,
            name=name,
            modality=image.modality,
            frame_times_s=times_s,
            pixel_spacing_mm=image.pixel_spacing_mm,
            notes=notes,
        )
    if pixels.shape[-1] > 1 or len(pixels) != len(planes):
        raise LesionDetectError(
            f"{source} has {len(pixels)} frames of {pixels.shape[-1]} values per pixel for {len(planes)} frame "
            "positions; the detectors need one greyscale value per pixel and a position for every frame."
        )
    stack = stack_planes(source, planes)
    voxels = _rescaled(pixels[..., 0], [_rescale(group, shared, header) for group in groups])
    return stack_to_volume(stack, voxels[stack.order], _pixel_spacing_mm(source, groups, shared), name, image.modality)


def _frame_planes(source: str, groups: list, shared) -> list[Plane] | None:
    """Each frame's plane from its functional groups; None when no frame has a position (a cine)."""
    planes = []
    for number, group in enumerate(groups, start=1):
        position = _group_item(group, shared, "PlanePositionSequence")
        orientation = _group_item(group, shared, "PlaneOrientationSequence")
        if position is None or orientation is None or "ImagePositionPatient" not in position:
            planes.append(None)
            continue
        planes.append(
            Plane(
                f"frame {number}",
                np.array(position.ImagePositionPatient, dtype=float),
                np.array(orientation.ImageOrientationPatient, dtype=float),
            )
        )
    if all(plane is None for plane in planes):
        return None
    if any(plane is None for plane in planes):
        missing = planes.index(None) + 1
        raise LesionDetectError(
            f"{source} gives no position or orientation for frame {missing} while other frames have one; "
            "the file is damaged or incomplete. Export it again."
        )
    return planes


def _pixel_spacing_mm(source: str, groups: list, shared) -> tuple[float, float]:
    """The (row, column) PixelSpacing that every frame shares."""
    spacings = set()
    for group in groups:
        measures = _group_item(group, shared, "PixelMeasuresSequence")
        if measures is None or "PixelSpacing" not in measures:
            raise LesionDetectError(f"{source} gives no PixelSpacing for its frames; the file is incomplete.")
        spacings.add((float(measures.PixelSpacing[0]), float(measures.PixelSpacing[1])))
    if len(spacings) > 1:
        raise LesionDetectError(
            f"{source} has frames with different pixel spacings ({sorted(spacings)}); it is not one volume."
        )
    return spacings.pop()


def _rescale(group, shared, header) -> tuple[float, float]:
    """(slope, intercept) of one frame: its Pixel Value Transformation, else the top-level rescale."""
    transformation = _group_item(group, shared, "PixelValueTransformationSequence") or header
    return float(transformation.get("RescaleSlope") or 1.0), float(transformation.get("RescaleIntercept") or 0.0)


def _rescaled(values: np.ndarray, rescales: list[tuple[float, float]]) -> np.ndarray:
    """Give every frame its own rescale; SimpleITK applied the first frame's to all of them."""
    rescales = np.array(rescales)
    if np.allclose(rescales, rescales[0]):
        return values
    stored = (values - rescales[0, 1]) / rescales[0, 0]
    return (stored * rescales[:, 0, None, None] + rescales[:, 1, None, None]).astype(np.float32)


def _group_item(group, shared, sequence_name: str):
    """The item of a functional group macro for one frame: per-frame if there, else shared, else None."""
    for groups in (group, shared):
        if groups is not None and len(groups.get(sequence_name) or []) > 0:
            return groups.get(sequence_name)[0]
    return None


def _frame_times_s(header: pydicom.Dataset, count: int) -> np.ndarray | None:
    """Seconds from the first frame: FrameTimeVector (increments) or FrameTime, as FrameIncrementPointer says,
    else CineRate; None when the file gives no timing."""
    vector = header.get("FrameTimeVector")
    vector = np.asarray(vector, dtype=float) if vector is not None and len(vector) == count else None
    pointers = header.get("FrameIncrementPointer")
    pointers = list(pointers) if isinstance(pointers, pydicom.multival.MultiValue) else [pointers]
    if vector is not None and (FRAME_TIME_VECTOR_TAG in pointers or not header.get("FrameTime")):
        return np.cumsum(vector) / 1000.0
    if header.get("FrameTime"):
        return np.arange(count) * float(header.FrameTime) / 1000.0
    if header.get("CineRate"):
        return np.arange(count) / float(header.CineRate)
    return None

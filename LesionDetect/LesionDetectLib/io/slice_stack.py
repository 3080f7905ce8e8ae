"""Order image planes (DICOM slices or enhanced frames) along their normal, check that they form one
evenly spaced stack, and turn the ordered voxels into a `Volume` with exact geometry.

A stack whose slices are shifted within their planes (gantry tilt) is resampled onto an orthogonal
grid (`gantry_tilt`); missing slices, uneven spacing, repeated positions and mixed orientations are
refused, because any of them would give a silently wrong volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.gantry_tilt import SHIFT_TOLERANCE_PX, regularize
from LesionDetectLib.io.itk_image import compact_array
from LesionDetectLib.io.volume import LPS_TO_RAS, Volume

MISSING_SLICE_FACTOR = 1.5
UNEVEN_SPACING_FRACTION = 0.01
POSITION_PRECISION_MM = 0.011  # DICOM positions are often stored to 0.01 mm


@dataclass(frozen=True)
class Plane:
    """Where one 2D image lies in the patient (LPS, mm)."""

    label: str  # the file name or "frame N", named in messages
    position_lps: np.ndarray  # centre of the first transmitted pixel (ImagePositionPatient)
    orientation_lps: np.ndarray  # row direction then column direction (ImageOrientationPatient)


@dataclass(frozen=True)
class SliceStack:
    """Planes ordered along their normal, with the stack's geometry."""

    order: list[int]  # indices into the planes given, first to last along the normal
    origin_lps: np.ndarray  # position of the first plane
    row_lps: np.ndarray
    column_lps: np.ndarray
    normal_lps: np.ndarray
    step_mm: float  # slice spacing along the normal
    shifts_mm: np.ndarray  # (slices, 2): each ordered slice's offset from the first along row and column
    tilt_deg: float  # angle between the normal and the line from the first to the last slice position


def stack_planes(source: str, planes: list[Plane]) -> SliceStack:
    """Sort `planes` along the orientation normal, refusing 2D, inconsistent or gapped stacks.

    `source` starts the messages, e.g. "The series in '/data/ct'".
    """
    if len(planes) < 2:
        raise LesionDetectError(
            f"{source} has a single slice (a 2D image); the detectors need a 3D volume of several slices."
        )
    orientation_lps = planes[0].orientation_lps
    for plane in planes:
        if not np.allclose(plane.orientation_lps, orientation_lps, atol=1e-4):
            raise LesionDetectError(
                f"{source} has slices with inconsistent orientations ('{planes[0].label}' and "
                f"'{plane.label}' differ); it is not one volume. Export a single reconstruction."
            )
    row_lps, column_lps = orientation_lps[:3], orientation_lps[3:]
    if not np.allclose([row_lps @ row_lps, column_lps @ column_lps, row_lps @ column_lps], [1, 1, 0], atol=1e-3):
        raise LesionDetectError(
            f"{source} has an ImageOrientationPatient that is not two perpendicular unit vectors "
            f"({orientation_lps.tolist()}); the file headers are damaged."
        )
    normal_lps = np.cross(row_lps, column_lps)
    order = sorted(range(len(planes)), key=lambda index: planes[index].position_lps @ normal_lps)
    positions_lps = np.array([planes[index].position_lps for index in order])
    step_mm = _checked_step(source, positions_lps @ normal_lps)
    offsets_lps = positions_lps - positions_lps[0]
    shifts_mm = np.stack([offsets_lps @ row_lps, offsets_lps @ column_lps], axis=1)
    tilt_deg = np.degrees(np.arctan2(np.hypot(*shifts_mm[-1]), offsets_lps[-1] @ normal_lps))
    return SliceStack(order, positions_lps[0], row_lps, column_lps, normal_lps, step_mm, shifts_mm, float(tilt_deg))


def stack_to_volume(stack: SliceStack, voxels: np.ndarray, pixel_spacing_mm, name: str, modality: str | None) -> Volume:
    """A `Volume` of `voxels` (slices in stack order, rows, columns); `pixel_spacing_mm` is (row, column)."""
    spacing_ij = np.array([pixel_spacing_mm[1], pixel_spacing_mm[0]], dtype=float)
    shifts_px = stack.shifts_mm / spacing_ij
    origin_lps, notes = stack.origin_lps, []
    if np.abs(shifts_px).max() > SHIFT_TOLERANCE_PX:
        voxels, grid_origin_px = regularize(voxels, shifts_px)
        origin_lps = origin_lps + grid_origin_px[0] * spacing_ij[0] * stack.row_lps
        origin_lps = origin_lps + grid_origin_px[1] * spacing_ij[1] * stack.column_lps
        notes.append(f"gantry tilt of {stack.tilt_deg:.1f}° corrected by resampling onto an orthogonal grid")
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, :3] = np.column_stack([stack.row_lps, stack.column_lps, stack.normal_lps])
    ijk_to_lps[:3, :3] *= [spacing_ij[0], spacing_ij[1], stack.step_mm]
    ijk_to_lps[:3, 3] = origin_lps
    return Volume(compact_array(voxels), LPS_TO_RAS @ ijk_to_lps, name=name, modality=modality, notes=notes)


def _checked_step(source: str, heights_mm: np.ndarray) -> float:
    """The slice spacing of sorted heights along the normal; refuse repeats, gaps and uneven steps."""
    steps_mm = np.diff(heights_mm)
    if np.any(steps_mm < POSITION_PRECISION_MM):
        duplicate = heights_mm[1:][steps_mm < POSITION_PRECISION_MM][0]
        raise LesionDetectError(
            f"{source} has several slices at the position {duplicate:.2f} mm along the slice normal; "
            "it probably holds two reconstructions or time points under one series. Export a single reconstruction."
        )
    median_step_mm = float(np.median(steps_mm))
    gaps = np.flatnonzero(steps_mm > MISSING_SLICE_FACTOR * median_step_mm)
    if gaps.size:
        where = ", ".join(f"{heights_mm[g]:.2f} and {heights_mm[g + 1]:.2f} mm" for g in gaps[:5])
        raise LesionDetectError(
            f"{source} has missing slices (slice spacing {median_step_mm:.2f} mm; "
            f"gaps between {where}); export the complete series again."
        )
    tolerance_mm = max(UNEVEN_SPACING_FRACTION * median_step_mm, POSITION_PRECISION_MM)
    uneven = np.flatnonzero(np.abs(steps_mm - median_step_mm) > tolerance_mm)
    if uneven.size:
        where = ", ".join(
            f"{steps_mm[u]:.3f} mm from {heights_mm[u]:.2f} to {heights_mm[u + 1]:.2f} mm" for u in uneven[:5]
        )
        raise LesionDetectError(
            f"{source} has uneven slice spacing (usually {median_step_mm:.3f} mm, "
            f"but {where}); export an evenly spaced reconstruction."
        )
    return median_step_mm

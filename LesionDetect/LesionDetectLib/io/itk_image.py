"""SimpleITK images (LPS geometry) to numpy arrays and RAS matrices, and ITK's error messages made short."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.volume import LPS_TO_RAS


def ijk_to_ras_of(image) -> np.ndarray:
    """IJK→RAS from a SimpleITK image or header reader (origin, spacing, direction in LPS)."""
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, :3] = np.reshape(image.GetDirection(), (3, 3)) * np.asarray(image.GetSpacing())
    ijk_to_lps[:3, 3] = image.GetOrigin()
    return LPS_TO_RAS @ ijk_to_lps


def compact_array(voxels: np.ndarray) -> np.ndarray:
    """`voxels` as int16 when its integer values fit, otherwise float32 (itself when it already is one)."""
    if voxels.dtype in (np.int16, np.float32):
        return voxels
    info = np.iinfo(np.int16)
    if np.issubdtype(voxels.dtype, np.integer) and info.min <= voxels.min() and voxels.max() <= info.max:
        return voxels.astype(np.int16)
    return voxels.astype(np.float32)


def check_greyscale_3d(components: int, dimension: int, source: Path) -> None:
    """Refuse colour/vector images and images that are not 3D."""
    if components > 1:
        raise LesionDetectError(
            f"'{source}' has {components} values per voxel (a colour or vector image); "
            "the detectors need a greyscale volume such as a CT or MR scan."
        )
    if dimension != 3:
        raise LesionDetectError(
            f"'{source}' is a {dimension}D image; the detectors need a 3D volume (a stack of slices)."
        )


def error_reason(error: Exception) -> str:
    """The last line of a (often multi-line ITK) error message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def quiet_execute(process):
    """Run a SimpleITK reader or filter without its console warnings (we check the geometry ourselves)."""
    warnings_shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        return process.Execute()
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings_shown)

"""Read a 3D volume (DICOM series, NRRD, NIfTI, MetaImage) for the detectors that need one; write NRRD.

`read_volume` is `read_input` for callers that need a `Volume`: it refuses 2D images and frame
sequences with a message saying so. `write_nrrd` writes LPS geometry and the modality.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.image_sequence import ImageSequence
from LesionDetectLib.io.itk_image import error_reason
from LesionDetectLib.io.read_input import read_input
from LesionDetectLib.io.volume import LPS_TO_RAS, Volume
from LesionDetectLib.io.volume_files import VOLUME_SUFFIXES

IMAGE_SUFFIXES = VOLUME_SUFFIXES  # the volume file names that training/ looks for


def read_volume(path, *, series_uid: str | None = None, echo: str | None = None) -> Volume:
    """Read a DICOM series folder (or one of its files), .nrrd/.nhdr, .nii/.nii.gz or .mha/.mhd as a `Volume`."""
    image = read_input(path, series_uid=series_uid, echo=echo)
    if isinstance(image, ImageSequence):
        what = "a 2D image" if image.is_single_image else f"a sequence of {image.frame_count} 2D frames"
        raise LesionDetectError(
            f"'{path}' holds {what} ('{image.name}'), not a 3D volume; "
            "this needs a volume of several slices, such as a CT or MR series."
        )
    return image


def write_nrrd(volume: Volume, path, *, overwrite: bool = False, compress: bool = False) -> None:
    """Write `volume` as NRRD, uncompressed unless `compress` (gzip), LPS geometry, modality kept; atomic, and no
    overwrite unless asked."""
    path = Path(path)
    if path.suffix.lower() != ".nrrd":
        raise LesionDetectError(f"'{path}' must end in .nrrd to be written as a NRRD file.")
    if path.exists() and not overwrite:
        raise LesionDetectError(f"'{path}' already exists; choose another file name or allow overwriting.")
    if not path.parent.is_dir():
        raise LesionDetectError(f"The folder '{path.parent}' does not exist; create it or choose another one.")
    array = volume.array.view(np.uint8) if volume.array.dtype == bool else volume.array
    ijk_to_lps = LPS_TO_RAS @ np.asarray(volume.ijk_to_ras, dtype=float)
    spacing = np.linalg.norm(ijk_to_lps[:3, :3], axis=0)
    if not np.all(np.isfinite(spacing) & (spacing > 0)):
        raise LesionDetectError(f"'{volume.name}' has zero or missing voxel spacing; it cannot be written to '{path}'.")
    partial_path = path.with_name(f".{path.stem}.{os.getpid()}.partial.nrrd")
    try:
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(spacing.tolist())
        image.SetDirection((ijk_to_lps[:3, :3] / spacing).ravel().tolist())
        image.SetOrigin(ijk_to_lps[:3, 3].tolist())
        if volume.modality:
            image.SetMetaData("modality", volume.modality)
        sitk.WriteImage(image, str(partial_path), useCompression=compress)
        os.replace(partial_path, path)
    except (RuntimeError, OSError) as error:
        partial_path.unlink(missing_ok=True)
        raise LesionDetectError(
            f"Could not write '{path}' ({error_reason(error)}); check free disk space and write permission."
        ) from error

"""Read one NRRD, NIfTI or MetaImage file into a `Volume` with exact geometry.

SimpleITK reports origin, spacing and direction in LPS; `ijk_to_ras = LPS_TO_RAS @ ijk_to_lps`.
Headers with zero or missing spacing are refused before SimpleITK guesses 1 mm, and files that are
not what their name says, or hold fewer bytes than their header needs, before a voxel is read
(`volume_layout`); raw int16/float32 NRRD data is mapped from disk read-only instead of copied.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.itk_image import check_greyscale_3d, compact_array, error_reason, ijk_to_ras_of
from LesionDetectLib.io.volume import Volume
from LesionDetectLib.io.volume_layout import Layout, check_layout, read_layout

VOLUME_FORMATS = (
    (".nrrd", "NRRD"),
    (".nhdr", "NRRD"),
    (".nii.gz", "NIfTI"),
    (".nii", "NIfTI"),
    (".mha", "MetaImage"),
    (".mhd", "MetaImage"),
)
VOLUME_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")
NRRD_SPATIAL_KINDS = {"domain", "space", "time"}
NRRD_IN_PLACE_TYPES = {"short": "i2", "int16": "i2", "int16_t": "i2", "signed short": "i2", "float": "f4"}


def read_volume_file(path: Path) -> Volume:
    """Read one .nrrd/.nhdr, .nii/.nii.gz or .mha/.mhd file, refusing headers with zero or missing spacing
    and files that are not what their name says, hold less data than their header says, or do not fit in memory."""
    format_name = format_of(path)
    layout = read_layout(path, format_name)
    header_problem = None
    if format_name == "NRRD":
        header_problem = _nrrd_spacing_problem(layout.fields)
    elif format_name == "NIfTI":
        header_problem = _nifti_spacing_problem(layout.fields)
    if header_problem:
        raise LesionDetectError(f"'{path.name}' has {header_problem}; set the voxel spacing in the file header.")
    in_place = format_name == "NRRD" and _memory_mappable(layout)
    check_layout(path, layout, in_place=in_place)
    try:
        if in_place:
            return _memory_mapped_nrrd(path, layout.fields, layout.data_offset)
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        if "Zero-valued spacing" in str(error):
            raise LesionDetectError(
                f"'{path.name}' has zero voxel spacing in its header; set the voxel spacing in the file header."
            ) from error
        short = re.search(r"expected (\d+) bytes but received (\d+)", str(error))
        if short:
            raise LesionDetectError(
                f"'{path}' is shorter than its header says: {short[1]} bytes of voxel data expected, "
                f"{short[2]} found. The file is truncated or damaged; copy or export it again."
            ) from error
        raise LesionDetectError(
            f"'{path}' could not be read as a {format_name} file ({error_reason(error)}); "
            "check that the file is complete."
        ) from error
    modality = image.GetMetaData("modality") if image.HasMetaDataKey("modality") else None
    name = path.name[: -len(".nii.gz")] if path.name.lower().endswith(".nii.gz") else path.stem
    return _volume_from_image(image, name, modality, path)


def format_of(path: Path) -> str:
    """ "NRRD", "NIfTI" or "MetaImage", from the file name's suffix."""
    lower_name = path.name.lower()
    return next(name for suffix, name in VOLUME_FORMATS if lower_name.endswith(suffix))


def _memory_mappable(layout: Layout) -> bool:
    """Uncompressed int16/float32 data attached to the header: it can be used in place."""
    fields = layout.fields
    return (
        layout.encoding == "raw"
        and layout.data_path is not None
        and not layout.at_end
        and "data file" not in fields
        and "datafile" not in fields
        and NRRD_IN_PLACE_TYPES.get(fields.get("type", "")) is not None
        and fields.get("dimension") == "3"
    )


def _memory_mapped_nrrd(path: Path, fields: dict, data_offset: int) -> Volume:
    """A raw int16/float32 NRRD mapped read-only from disk (no copy); geometry from SimpleITK's header read."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    check_greyscale_3d(reader.GetNumberOfComponents(), reader.GetDimension(), path)
    byte_order = ">" if fields.get("endian") == "big" else "<"
    try:
        voxels = np.memmap(
            path,
            byte_order + NRRD_IN_PLACE_TYPES[fields["type"]],
            mode="r",
            offset=data_offset,
            shape=reader.GetSize()[::-1],
        )
    except ValueError as error:
        raise LesionDetectError(
            f"'{path}' is shorter than its header says ({error}); check that the file is complete."
        ) from error
    modality = reader.GetMetaData("modality") if reader.HasMetaDataKey("modality") else None
    return Volume(voxels, ijk_to_ras_of(reader), path.stem, modality)


def _volume_from_image(image: sitk.Image, name: str, modality: str | None, source: Path) -> Volume:
    """Wrap a SimpleITK image (LPS geometry) as a `Volume` (RAS geometry, int16 or float32 array)."""
    check_greyscale_3d(image.GetNumberOfComponentsPerPixel(), image.GetDimension(), source)
    return Volume(compact_array(sitk.GetArrayFromImage(image)), ijk_to_ras_of(image), name, modality)


def _nrrd_spacing_problem(fields: dict) -> str | None:
    """Describe zero, non-finite or missing spacing of a spatial axis in NRRD header fields, or None."""
    kinds = fields.get("kinds", "").split()
    if "space directions" in fields:
        vectors = re.findall(r"\(([^)]*)\)|none", fields["space directions"])
        spacings = [np.linalg.norm(np.array(v.split(","), float)) if v else None for v in vectors]
    elif "spacings" in fields:
        spacings = [float(value) for value in fields["spacings"].split()]
    else:
        return "no voxel spacing (neither 'space directions' nor 'spacings')"
    for axis, spacing in enumerate(spacings):
        spatial = axis >= len(kinds) or kinds[axis] in NRRD_SPATIAL_KINDS
        if spatial and spacing is not None and not (np.isfinite(spacing) and spacing > 0):
            written = fields.get("space directions") or fields["spacings"]
            return f"zero or missing voxel spacing along axis {axis} ({written})"
    return None


def _nifti_spacing_problem(fields: dict) -> str | None:
    """Describe zero or non-finite pixdim of a spatial axis in a NIfTI-1/2 header, or None."""
    dims, pixdim = fields["dims"], fields["pixdim"]
    spatial = pixdim[1 : 1 + int(min(max(dims[0], 0), 3))]
    if np.all(np.isfinite(spatial)) and np.all(spatial != 0):
        return None
    return f"zero or missing voxel spacing (pixdim {' '.join(f'{value:g}' for value in spatial)})"

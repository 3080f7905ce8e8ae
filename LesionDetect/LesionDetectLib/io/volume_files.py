"""Read one NRRD, NIfTI or MetaImage file into a `Volume` with exact geometry.

SimpleITK reports origin, spacing and direction in LPS; `ijk_to_ras = LPS_TO_RAS @ ijk_to_lps`.
Headers with zero or missing spacing are refused before SimpleITK guesses 1 mm; raw int16/float32
NRRD data is mapped from disk read-only instead of copied.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.itk_image import check_greyscale_3d, compact_array, error_reason, ijk_to_ras_of
from LesionDetectLib.io.volume import Volume

VOLUME_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")
NRRD_SPATIAL_KINDS = {"domain", "space", "time"}
NRRD_IN_PLACE_TYPES = {"short": "i2", "int16": "i2", "int16_t": "i2", "signed short": "i2", "float": "f4"}


def read_volume_file(path: Path) -> Volume:
    """Read one .nrrd/.nhdr, .nii/.nii.gz or .mha/.mhd file, refusing headers with zero or missing spacing."""
    lower_name = path.name.lower()
    header_problem = None
    nrrd_header = _nrrd_header(path) if lower_name.endswith((".nrrd", ".nhdr")) else None
    if nrrd_header:
        header_problem = _nrrd_spacing_problem(nrrd_header[0])
    elif lower_name.endswith((".nii", ".nii.gz")):
        header_problem = _nifti_spacing_problem(path)
    if header_problem:
        raise LesionDetectError(f"'{path.name}' has {header_problem}; set the voxel spacing in the file header.")
    try:
        if nrrd_header and _memory_mappable(nrrd_header[0]):
            return _memory_mapped_nrrd(path, *nrrd_header)
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        if "Zero-valued spacing" in str(error):
            raise LesionDetectError(
                f"'{path.name}' has zero voxel spacing in its header; set the voxel spacing in the file header."
            ) from error
        raise LesionDetectError(
            f"'{path}' could not be read as an image ({error_reason(error)}); check that the file is complete."
        ) from error
    modality = image.GetMetaData("modality") if image.HasMetaDataKey("modality") else None
    name = path.name[: -len(".nii.gz")] if lower_name.endswith(".nii.gz") else path.stem
    return _volume_from_image(image, name, modality, path)


def _memory_mappable(fields: dict) -> bool:
    """Uncompressed int16/float32 data attached to the header: it can be used in place."""
    return (
        fields.get("encoding") == "raw"
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


def _nrrd_header(path: Path) -> tuple[dict, int] | None:
    """The fields of a NRRD header and the byte offset where attached data starts, or None if not NRRD."""
    fields = {}
    with open(path, "rb") as header:
        if not header.readline().startswith(b"NRRD"):
            return None
        for raw_line in header:
            line = raw_line.decode("latin-1").strip()
            if not line:
                break
            key, separator, value = line.partition(": ")
            if separator and not line.startswith("#"):
                fields[key.strip()] = value.strip()
        return fields, header.tell()


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


def _nifti_spacing_problem(path: Path) -> str | None:
    """Describe zero or non-finite pixdim of a spatial axis in a NIfTI-1/2 header, or None."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as stream:
        header = stream.read(540)
    for endian in "<>":
        header_size = int(np.frombuffer(header, endian + "i4", 1)[0]) if len(header) >= 4 else 0
        if header_size == 348 and len(header) >= 348:
            dims = np.frombuffer(header, endian + "i2", 8, offset=40)
            pixdim = np.frombuffer(header, endian + "f4", 8, offset=76)
            break
        if header_size == 540 and len(header) >= 540:
            dims = np.frombuffer(header, endian + "i8", 8, offset=16)
            pixdim = np.frombuffer(header, endian + "f8", 8, offset=104)
            break
    else:
        return None
    spatial = pixdim[1 : 1 + int(min(max(dims[0], 0), 3))]
    if np.all(np.isfinite(spatial)) and np.all(spatial != 0):
        return None
    return f"zero or missing voxel spacing (pixdim {' '.join(f'{value:g}' for value in spatial)})"

"""Read a DICOM series, NRRD, NIfTI or MetaImage file into a `Volume` with exact geometry; write NRRD.

SimpleITK reads the voxels (for DICOM it applies rescale slope/intercept, giving HU for CT) and
reports origin, spacing and direction in LPS; `ijk_to_ras = LPS_TO_RAS @ ijk_to_lps`. Before that,
every DICOM header in the folder is checked with pydicom so that mixed series, damaged files,
missing slices and gantry tilt are refused with a message naming the problem instead of giving a
silently wrong volume.
"""

from __future__ import annotations

import gzip
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from .errors import LesionDetectError
from .volume import LPS_TO_RAS, Volume

IMAGE_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")
MISSING_SLICE_FACTOR = 1.5
UNEVEN_SPACING_FRACTION = 0.01
POSITION_PRECISION_MM = 0.011  # DICOM positions are often stored to 0.01 mm
MAX_TILT_DEG = 0.5
NRRD_SPATIAL_KINDS = {"domain", "space", "time"}
NRRD_IN_PLACE_TYPES = {"short": "i2", "int16": "i2", "int16_t": "i2", "signed short": "i2", "float": "f4"}


@dataclass(frozen=True)
class _Slice:
    """What the checks need from one DICOM image header."""

    path: Path
    series_uid: str
    description: str
    modality: str | None
    position_lps: np.ndarray
    orientation_lps: np.ndarray


def read_volume(path, *, series_uid: str | None = None) -> Volume:
    """Read a DICOM series folder (or one of its files), .nrrd/.nhdr, .nii/.nii.gz or .mha/.mhd."""
    path = Path(path)
    if not path.exists():
        raise LesionDetectError(f"'{path}' does not exist; check the path and choose an existing file or folder.")
    if path.is_dir():
        volume = _read_dicom_folder(path, series_uid)
    elif path.name.lower().endswith(IMAGE_SUFFIXES):
        volume = _read_image_file(path)
    else:
        volume = _read_dicom_folder(path.parent, series_uid or _series_uid_of_file(path))
    volume.validate()
    return volume


def write_nrrd(volume: Volume, path, *, overwrite: bool = False) -> None:
    """Write `volume` as uncompressed NRRD (LPS geometry, modality kept); atomic, and no overwrite unless asked."""
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
        sitk.WriteImage(image, str(partial_path), useCompression=False)
        os.replace(partial_path, path)
    except (RuntimeError, OSError) as error:
        partial_path.unlink(missing_ok=True)
        raise LesionDetectError(
            f"Could not write '{path}' ({_reason(error)}); check free disk space and write permission."
        ) from error


def _read_image_file(path: Path) -> Volume:
    """Read one NRRD, NIfTI or MetaImage file, refusing headers with zero or missing spacing."""
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
            f"'{path}' could not be read as an image ({_reason(error)}); check that the file is complete."
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
    _check_greyscale_3d(reader.GetNumberOfComponents(), reader.GetDimension(), path)
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
    return Volume(voxels, _ijk_to_ras(reader), path.stem, modality)


def _volume_from_image(image: sitk.Image, name: str, modality: str | None, source: Path) -> Volume:
    """Wrap a SimpleITK image (LPS geometry) as a `Volume` (RAS geometry, int16 or float32 array)."""
    _check_greyscale_3d(image.GetNumberOfComponentsPerPixel(), image.GetDimension(), source)
    return Volume(_compact_array(image), _ijk_to_ras(image), name, modality)


def _check_greyscale_3d(components: int, dimension: int, source: Path) -> None:
    if components > 1:
        raise LesionDetectError(
            f"'{source}' has {components} values per voxel (a colour or vector image); "
            "the detectors need a greyscale volume such as a CT or MR scan."
        )
    if dimension != 3:
        raise LesionDetectError(
            f"'{source}' is a {dimension}D image; the detectors need a 3D volume (a stack of slices)."
        )


def _ijk_to_ras(image) -> np.ndarray:
    """IJK→RAS from a SimpleITK image or header reader (origin, spacing, direction in LPS)."""
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, :3] = np.reshape(image.GetDirection(), (3, 3)) * np.asarray(image.GetSpacing())
    ijk_to_lps[:3, 3] = image.GetOrigin()
    return LPS_TO_RAS @ ijk_to_lps


def _compact_array(image: sitk.Image) -> np.ndarray:
    """The voxels (k, j, i) as int16 when integer values fit, otherwise float32."""
    voxels = sitk.GetArrayViewFromImage(image)
    if voxels.dtype in (np.int16, np.float32):
        return voxels.copy()
    info = np.iinfo(np.int16)
    if np.issubdtype(voxels.dtype, np.integer) and info.min <= voxels.min() and voxels.max() <= info.max:
        return voxels.astype(np.int16)
    return voxels.astype(np.float32)


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


def _series_uid_of_file(path: Path) -> str:
    """The SeriesInstanceUID of a single DICOM image file given as input."""
    image_slice = _read_slice(path)
    if image_slice is None:
        raise LesionDetectError(
            f"'{path}' is neither a DICOM image nor a supported volume file "
            f"({', '.join(IMAGE_SUFFIXES)}); choose a DICOM series folder or one of those files."
        )
    return image_slice.series_uid


def _read_dicom_folder(folder: Path, series_uid: str | None) -> Volume:
    """Check every DICOM header in `folder`, then read the chosen series with SimpleITK."""
    files = sorted(path for path in folder.iterdir() if path.is_file())
    if not files:
        raise LesionDetectError(
            f"The folder '{folder}' holds no files; choose the folder that directly contains the DICOM series."
        )
    slices = [image_slice for image_slice in map(_read_slice, files) if image_slice is not None]
    if not slices:
        raise LesionDetectError(
            f"The folder '{folder}' holds no DICOM images; choose the folder that directly contains the series files."
        )
    series = _select_series(folder, slices, series_uid)
    ordered = _ordered_slices(folder, series)
    image = _read_series_pixels(folder, [image_slice.path for image_slice in ordered])
    name = ordered[0].description or folder.name
    return _volume_from_image(image, name, ordered[0].modality, folder)


def _read_slice(path: Path) -> _Slice | None:
    """The header facts of one DICOM image file; None for files that are not DICOM images."""
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        if not _is_image(header):
            return None
        if int(header.get("NumberOfFrames") or 1) > 1:
            raise LesionDetectError(
                f"'{path}' is a multi-frame (enhanced) DICOM image, which is not supported yet; "
                "export the series as single-frame images or convert it to NRRD or NIfTI in 3D Slicer."
            )
        return _Slice(
            path,
            str(header.SeriesInstanceUID),
            str(header.get("SeriesDescription") or "").strip(),
            str(header.get("Modality") or "").strip() or None,
            np.array(header.ImagePositionPatient, dtype=float),
            np.array(header.ImageOrientationPatient, dtype=float),
        )
    except LesionDetectError:
        raise
    except Exception as error:  # a damaged file can make pydicom raise almost anything
        if not _looks_like_dicom(path):
            return None
        raise LesionDetectError(
            f"'{path.name}' in '{path.parent}' is a damaged or incomplete DICOM file ({error}); "
            "remove it or export the series again from the scanner or PACS."
        ) from error


def _is_image(header: pydicom.Dataset) -> bool:
    """True for DICOM image storage objects, False for DICOMDIR and reports; ValueError if it cannot tell."""
    file_meta = getattr(header, "file_meta", None) or {}
    sop_class = header.get("SOPClassUID") or file_meta.get("MediaStorageSOPClassUID")
    if sop_class:
        return "Image Storage" in pydicom.uid.UID(str(sop_class)).name
    if "Rows" in header:
        return True
    raise ValueError("it names no SOP class")


def _looks_like_dicom(path: Path) -> bool:
    """A .dcm name or the 'DICM' preamble marker: such a file that fails to parse is damaged, not foreign."""
    if path.suffix.lower() == ".dcm":
        return True
    with open(path, "rb") as stream:
        return stream.read(132)[128:132] == b"DICM"


def _select_series(folder: Path, slices: list[_Slice], series_uid: str | None) -> list[_Slice]:
    """The slices of the one series in the folder, or of `series_uid`; list the series otherwise."""
    by_uid: dict[str, list[_Slice]] = {}
    for image_slice in slices:
        by_uid.setdefault(image_slice.series_uid, []).append(image_slice)
    listing = "; ".join(
        f"{uid} ('{members[0].description or 'no description'}', {len(members)} files)"
        for uid, members in by_uid.items()
    )
    if series_uid is not None:
        if series_uid not in by_uid:
            raise LesionDetectError(f"Series {series_uid} is not in '{folder}'; the folder holds: {listing}.")
        return by_uid[series_uid]
    if len(by_uid) > 1:
        raise LesionDetectError(
            f"The folder '{folder}' holds {len(by_uid)} DICOM series mixed together: {listing}. "
            "Choose one series by its UID, or put each series in its own folder."
        )
    return slices


def _ordered_slices(folder: Path, slices: list[_Slice]) -> list[_Slice]:
    """Sort slices along the orientation normal, refusing 2D, inconsistent, tilted or gapped series."""
    if len(slices) < 2:
        raise LesionDetectError(
            f"The series in '{folder}' has a single slice (a 2D image); "
            "the detectors need a 3D volume of several slices."
        )
    orientation_lps = slices[0].orientation_lps
    for image_slice in slices:
        if not np.allclose(image_slice.orientation_lps, orientation_lps, atol=1e-4):
            raise LesionDetectError(
                f"The slices in '{folder}' have inconsistent orientations ('{slices[0].path.name}' and "
                f"'{image_slice.path.name}' differ); the series is not one volume. Export a single reconstruction."
            )
    row_lps, column_lps = orientation_lps[:3], orientation_lps[3:]
    if not np.allclose([row_lps @ row_lps, column_lps @ column_lps, row_lps @ column_lps], [1, 1, 0], atol=1e-3):
        raise LesionDetectError(
            f"The ImageOrientationPatient of the series in '{folder}' is not two perpendicular unit vectors "
            f"({orientation_lps.tolist()}); the file headers are damaged."
        )
    normal_lps = np.cross(row_lps, column_lps)
    ordered = sorted(slices, key=lambda image_slice: image_slice.position_lps @ normal_lps)
    heights_mm = np.array([image_slice.position_lps @ normal_lps for image_slice in ordered])
    steps_mm = np.diff(heights_mm)
    if np.any(steps_mm < POSITION_PRECISION_MM):
        duplicate = heights_mm[1:][steps_mm < POSITION_PRECISION_MM][0]
        raise LesionDetectError(
            f"Several slices in '{folder}' share the position {duplicate:.2f} mm along the slice normal; "
            "the folder probably holds two reconstructions under one series. Export a single reconstruction."
        )
    progression_lps = ordered[-1].position_lps - ordered[0].position_lps
    cosine = progression_lps @ normal_lps / np.linalg.norm(progression_lps)
    tilt_deg = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    if tilt_deg > MAX_TILT_DEG:
        raise LesionDetectError(
            f"The series in '{folder}' was acquired with a gantry tilt of {tilt_deg:.1f}°; "
            "the detectors need a tilt-corrected reconstruction "
            "(ask for one from the scanner, or correct the tilt in 3D Slicer)."
        )
    median_step_mm = float(np.median(steps_mm))
    gaps = np.flatnonzero(steps_mm > MISSING_SLICE_FACTOR * median_step_mm)
    if gaps.size:
        where = ", ".join(f"{heights_mm[g]:.2f} and {heights_mm[g + 1]:.2f} mm" for g in gaps[:5])
        raise LesionDetectError(
            f"The series in '{folder}' has missing slices (slice spacing {median_step_mm:.2f} mm; "
            f"gaps between {where}); export the complete series again."
        )
    tolerance_mm = max(UNEVEN_SPACING_FRACTION * median_step_mm, POSITION_PRECISION_MM)
    uneven = np.flatnonzero(np.abs(steps_mm - median_step_mm) > tolerance_mm)
    if uneven.size:
        where = ", ".join(
            f"{steps_mm[u]:.3f} mm from {heights_mm[u]:.2f} to {heights_mm[u + 1]:.2f} mm" for u in uneven[:5]
        )
        raise LesionDetectError(
            f"The series in '{folder}' has uneven slice spacing (usually {median_step_mm:.3f} mm, "
            f"but {where}); export an evenly spaced reconstruction."
        )
    return ordered


def _read_series_pixels(folder: Path, paths: list[Path]) -> sitk.Image:
    """Read the ordered files with SimpleITK; name the file it cannot read."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(path) for path in paths])
    warnings_shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # its spacing warning is stricter than our checked tolerance
    try:
        return reader.Execute()
    except RuntimeError as error:
        unreadable = next((path for path in paths if not _pixels_readable(path)), None)
        culprit = f"'{unreadable.name}' is damaged or incomplete" if unreadable else _reason(error)
        raise LesionDetectError(
            f"The DICOM series in '{folder}' could not be read: {culprit}; remove that file or export the series again."
        ) from error
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings_shown)


def _pixels_readable(path: Path) -> bool:
    """Whether SimpleITK can read the pixels of one DICOM file."""
    try:
        sitk.ReadImage(str(path))
    except RuntimeError:
        return False
    return True


def _reason(error: Exception) -> str:
    """The last line of a (often multi-line ITK) error message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__

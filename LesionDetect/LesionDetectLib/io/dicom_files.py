"""The header facts of DICOM image files that group them into series and order them (read with pydicom).

Files that are not DICOM images (DICOMDIR, reports, presentation states, README files) are skipped;
a file that claims to be DICOM but cannot be parsed is refused by name. Files without a
SeriesInstanceUID (some de-identified exports) get a series key made from the attributes they share.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom

from LesionDetectLib.errors import CancelledError, LesionDetectError
from LesionDetectLib.io.slice_stack import Plane

NO_UID_KEY_PREFIX = "no-uid-"
NO_UID_GROUPING = (
    "StudyInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "Modality",
    "FrameOfReferenceUID",
    "Rows",
    "Columns",
)


@dataclass(frozen=True)
class DicomImage:
    """What grouping, choosing and ordering need from one DICOM image file."""

    path: Path
    series_key: str  # the SeriesInstanceUID, or NO_UID_KEY_PREFIX + a digest when the file has none
    description: str
    modality: str | None
    frames: int  # NumberOfFrames (1 for a single-frame image)
    plane: Plane | None  # None when the file gives no patient position (projection X-ray, cine)
    pixel_spacing_mm: tuple[float, float] | None  # (row, column); without plane ImagerPixelSpacing comes first
    instance_number: int
    echo_number: int | None
    echo_time_ms: float | None
    patient_id: str = ""  # PatientID; a series' files of two patients are never read as one


def read_dicom_images(paths: list[Path]) -> list[DicomImage]:
    """The DICOM images among `paths`, in the order given."""
    return [image for image in map(read_dicom_image, paths) if image is not None]


def read_dicom_image(path: Path) -> DicomImage | None:
    """The header facts of one DICOM image file; None for files that are not DICOM images."""
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        if not _is_image(header):
            return None
        plane = _plane(path, header)
        spacing = header.get("PixelSpacing")
        if plane is None:
            spacing = header.get("ImagerPixelSpacing") or spacing
        return DicomImage(
            path,
            str(header.get("SeriesInstanceUID") or "") or _no_uid_key(path, header),
            str(header.get("SeriesDescription") or "").strip(),
            str(header.get("Modality") or "").strip() or None,
            int(header.get("NumberOfFrames") or 1),
            plane,
            (float(spacing[0]), float(spacing[1])) if spacing else None,
            int(header.get("InstanceNumber") or 0),
            _first_int(header.get("EchoNumbers")),
            float(header.EchoTime) if header.get("EchoTime") not in (None, "") else None,
            str(header.get("PatientID") or "").strip(),
        )
    except CancelledError:
        raise
    except Exception as error:  # a damaged file can make pydicom raise almost anything
        if not _looks_like_dicom(path):
            return None
        raise LesionDetectError(
            f"'{path.name}' in '{path.parent}' is a damaged or incomplete DICOM file ({error}); "
            "remove it or export the series again from the scanner or PACS."
        ) from error


def _plane(path: Path, header: pydicom.Dataset) -> Plane | None:
    """ImagePositionPatient and ImageOrientationPatient, or None when the file has neither."""
    position, orientation = header.get("ImagePositionPatient"), header.get("ImageOrientationPatient")
    if position is None and orientation is None:
        return None
    position_lps, orientation_lps = np.array(position or [], dtype=float), np.array(orientation or [], dtype=float)
    if position_lps.shape != (3,) or orientation_lps.shape != (6,):
        raise ValueError(f"ImagePositionPatient {position} / ImageOrientationPatient {orientation} are incomplete")
    return Plane(path.name, position_lps, orientation_lps)


def _no_uid_key(path: Path, header: pydicom.Dataset) -> str:
    """A stable series key for a file without SeriesInstanceUID, from what files of one series share."""
    orientation = np.round(np.array(header.get("ImageOrientationPatient") or [], dtype=float), 3)
    facts = [str(header.get(keyword) or "") for keyword in NO_UID_GROUPING]
    facts += [str(orientation.tolist()), str(path.parent.resolve())]
    return NO_UID_KEY_PREFIX + hashlib.sha1("\\".join(facts).encode()).hexdigest()[:10]


def _first_int(value) -> int | None:
    """The first of a possibly multi-valued integer attribute such as EchoNumbers."""
    if value in (None, ""):
        return None
    return int(value[0] if isinstance(value, pydicom.multival.MultiValue) else value)


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

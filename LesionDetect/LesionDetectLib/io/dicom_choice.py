"""Choose one series among the DICOM images found in a folder, or list the series and how to choose.

Files that share a SeriesInstanceUID but belong to different patients (a stray slice copied into the folder)
are never mixed: each patient's files become a choice of their own, keyed `<UID>#patient<N>` (N = 1 for the
patient with most files).
"""

from __future__ import annotations

import os
from pathlib import Path

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.dicom_files import DicomImage


def choose_series(folder: Path, images: list[DicomImage], series_key: str | None) -> list[DicomImage]:
    """The images of the one series in `images`, or of `series_key` (a UID or a listed key)."""
    by_key: dict[str, list[DicomImage]] = {}
    for image in images:
        by_key.setdefault(image.series_key, []).append(image)
    by_key = {key: members for series, files in by_key.items() for key, members in _by_patient(series, files)}
    listing = "; ".join(_describe(folder, key, members) for key, members in by_key.items())
    if series_key is not None:
        if series_key not in by_key:
            raise LesionDetectError(f"Series {series_key} is not in '{folder}'; the folder holds: {listing}.")
        return by_key[series_key]
    if len(by_key) > 1:
        raise LesionDetectError(
            f"The folder '{folder}' holds {len(by_key)} DICOM series: {listing}. Choose one with --series-uid "
            f"and the UID or key its entry starts with (for example --series-uid {next(iter(by_key))}), "
            "or choose the folder of a single series."
        )
    return images


def _by_patient(series_key: str, images: list[DicomImage]) -> list[tuple[str, list[DicomImage]]]:
    """The series as it is when one patient's, else one entry per patient, the most files first."""
    patients: dict[str, list[DicomImage]] = {}
    for image in images:
        patients.setdefault(image.patient_id, []).append(image)
    if len(patients) == 1:
        return [(series_key, images)]
    ordered = sorted(patients.values(), key=len, reverse=True)
    return [(f"{series_key}#patient{n}", members) for n, members in enumerate(ordered, start=1)]


def series_folder(images: list[DicomImage]) -> Path:
    """The folder that holds all of a series' files."""
    return Path(os.path.commonpath([image.path.parent for image in images]))


def _describe(folder: Path, key: str, members: list[DicomImage]) -> str:
    """ "UID ('description', modality, N files, in 'sub/folder')" for one series."""
    first = members[0]
    frames = sum(image.frames for image in members)
    count = f"{len(members)} file{'s' if len(members) > 1 else ''}"
    count += f" with {frames} frames" if frames > len(members) else ""
    where = series_folder(members)
    place = f", in '{where.relative_to(folder)}'" if where != folder else ""
    mixed = "#patient" in key
    patient = f", one patient's files of a series that mixes patients, such as '{first.path.name}'" if mixed else ""
    return (
        f"{key} ('{first.description or 'no description'}', {first.modality or 'no modality'}, {count}{place}{patient})"
    )

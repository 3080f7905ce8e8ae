"""Readers of labelled head-CT volumes: the RSNA 2019 layout and NIfTI (or NRRD) volumes with a subtype mask.

RSNA 2019 ("RSNA Intracranial Hemorrhage Detection"):

    stage_2_train/ID_<sop>.dcm        one DICOM file per slice, many series side by side
    stage_2_train.csv                 ID,Label with ID = ID_<sop>_<label>, six rows per slice

Every series becomes one scan through the platform reader (slices ordered along the normal, HU from each
file's rescale, tilt corrected), and its slice labels follow that order. NIfTI + mask: a volume and a label
map on its grid whose values name the subtypes (`MASK_VALUES`, changeable); slice labels follow the
generator's rule (a subtype where it covers ≥ 10 mm² of a slice).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from synthetic_head_ct import slice_labels

from LesionDetectLib.detectors.hemorrhage.labels import LABELS, SUBTYPES
from LesionDetectLib.io.volume import Volume

MASK_VALUES = dict(zip(SUBTYPES, range(1, 6)))  # label-map value of each subtype


@dataclass
class LabelledScan:
    volume: Volume
    slice_labels: np.ndarray  # (slices, 6) uint8 in the volume's slice order
    source: str


def read_rsna_labels(csv_path) -> dict[str, np.ndarray]:
    """SOPInstanceUID → its six labels (LABELS order) from an RSNA `ID,Label` file."""
    labels: dict[str, np.ndarray] = {}
    with open(csv_path, newline="") as stream:
        rows = csv.reader(stream)
        header = next(rows)
        if [name.strip() for name in header] != ["ID", "Label"]:
            raise ValueError(f"'{csv_path}' is not an RSNA label file: its header is {header}")
        for identifier, value in rows:
            sop, label = identifier.rsplit("_", 1)
            labels.setdefault(sop, np.zeros(len(LABELS), dtype=np.uint8))[LABELS.index(label)] = int(value)
    return labels


def read_rsna_scans(dicom_folder, csv_path) -> list[LabelledScan]:
    """One scan per series in the folder, with its slices' labels in the volume's order."""
    import pydicom

    from LesionDetectLib.io.dicom_files import read_dicom_images
    from LesionDetectLib.io.dicom_series import read_slice_series
    from LesionDetectLib.io.slice_stack import stack_planes

    labels = read_rsna_labels(csv_path)
    series: dict[str, list] = {}
    for image in read_dicom_images(sorted(Path(dicom_folder).glob("*.dcm"))):
        series.setdefault(image.series_key, []).append(image)
    scans = []
    for key, images in sorted(series.items()):
        volume = read_slice_series(images, None)
        order = stack_planes(key, [image.plane for image in images]).order
        sops = [str(pydicom.dcmread(images[n].path, stop_before_pixels=True).SOPInstanceUID) for n in order]
        missing = [sop for sop in sops if sop not in labels]
        if missing:
            raise ValueError(f"series {key}: no labels for {len(missing)} slices, such as {missing[0]}")
        scans.append(LabelledScan(volume, np.stack([labels[sop] for sop in sops]), key))
    return scans


def read_masked_scan(volume_path, mask_path, values: dict[str, int] = MASK_VALUES) -> LabelledScan:
    """A volume and its subtype label map (same grid) → the scan with slice labels."""
    from LesionDetectLib.io.read_input import read_input

    volume, mask = read_input(volume_path), read_input(mask_path)
    if mask.array.shape != volume.array.shape or not np.allclose(mask.ijk_to_ras, volume.ijk_to_ras, atol=1e-3):
        raise ValueError(f"'{mask_path}' is not on the grid of '{volume_path}'")
    masks = {subtype: mask.array == value for subtype, value in values.items()}
    return LabelledScan(volume, slice_labels(masks, float(np.mean(volume.spacing[:2]))), str(volume_path))

"""Readers of labelled head-CT volumes, on synthetic heads written in the RSNA 2019 layout and as NIfTI + mask."""

import numpy as np
import pydicom
import pytest
from dicom_series import write_ct_series
from hemorrhage_volume_datasets import MASK_VALUES, read_masked_scan, read_rsna_scans
from synthetic_head_ct import make_head_case

from LesionDetectLib.detectors.hemorrhage.labels import LABELS
from LesionDetectLib.io.volume import Volume
from LesionDetectLib.io.volume_io import write_nrrd

# RSNA's SOPInstanceUIDs are "ID_…", not valid UIDs: pydicom warns on each, as it does on the real files
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning")


def _case(seed):
    case = make_head_case(seed, matrix=48)
    volume = Volume(np.maximum(case.volume.array, -1024).astype(np.int16), case.volume.ijk_to_ras, "head", "CT")
    return case, volume


def test_rsna_layout_gives_each_series_with_its_slice_labels_in_volume_order(tmp_path):
    folder, rows = tmp_path / "stage_2_train", ["ID,Label"]
    cases = [_case(seed) for seed in (1, 3)]
    for n, (case, volume) in enumerate(cases):
        write_ct_series(volume, tmp_path / f"series{n}")
        for k, path in enumerate(sorted((tmp_path / f"series{n}").iterdir())):
            dataset = pydicom.dcmread(path)
            sop = f"ID_{n}{k:07x}"
            dataset.SOPInstanceUID = sop
            folder.mkdir(exist_ok=True)
            dataset.save_as(folder / f"{sop}.dcm")  # one folder of slices, names unrelated to slice order
            rows += [f"{sop}_{label},{int(case.slice_labels[k, m])}" for m, label in enumerate(LABELS)]
    (tmp_path / "stage_2_train.csv").write_text("\n".join(rows) + "\n")

    scans = read_rsna_scans(folder, tmp_path / "stage_2_train.csv")

    assert len(scans) == 2
    for scan in scans:
        case, volume = next((c, v) for c, v in cases if v.array.shape == scan.volume.array.shape)
        assert np.array_equal(scan.volume.array, volume.array)
        assert np.array_equal(scan.slice_labels, case.slice_labels)


def test_nifti_and_mask_give_the_generators_slice_labels(tmp_path):
    import SimpleITK as sitk

    case, volume = _case(6)  # epidural, intraparenchymal and subarachnoid, masks not overlapping
    label_map = np.zeros(volume.array.shape, dtype=np.uint8)
    for subtype, value in MASK_VALUES.items():
        label_map[case.masks[subtype]] = value
    write_nrrd(volume, tmp_path / "head.nrrd")
    write_nrrd(Volume(label_map, volume.ijk_to_ras, "mask"), tmp_path / "mask.nrrd")
    for name in ("head", "mask"):
        sitk.WriteImage(sitk.ReadImage(str(tmp_path / f"{name}.nrrd")), str(tmp_path / f"{name}.nii.gz"))

    scan = read_masked_scan(tmp_path / "head.nii.gz", tmp_path / "mask.nii.gz")

    assert np.array_equal(scan.volume.array, volume.array)
    assert np.array_equal(scan.slice_labels, case.slice_labels)
    assert scan.slice_labels[:, 1:].any(axis=0).sum() == 3

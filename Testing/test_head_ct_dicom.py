"""Head-CT series as scanners and PACS export them: per-slice rescale, JPEG Lossless, a stray slice of
another patient — read through the platform reader and accepted (or refused) by the hemorrhage detector."""

import shutil

import numpy as np
import pydicom
import pytest
from dicom_series import compress_jpeg_lossless, write_ct_series
from synthetic_head_ct import make_head_case

from LesionDetectLib.detection.registry import get_detector
from LesionDetectLib.detectors.hemorrhage.options import HemorrhageOptions
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.read_input import read_input
from LesionDetectLib.io.volume import Volume


@pytest.fixture(scope="module")
def head():
    volume = make_head_case(4, matrix=64).volume
    # unsigned storage with intercept −1024 holds air but not the −3024 padding: store that as air
    return Volume(np.maximum(volume.array, -1024).astype(np.int16), volume.ijk_to_ras, "head", "CT")


def test_per_slice_rescale_and_jpeg_lossless_give_back_the_hu(head, tmp_path):
    rescales = [(1.0, -1024.0) if k % 2 else (0.5, -1200.0) for k in range(len(head.array))]
    write_ct_series(head, tmp_path / "ct", rescales=rescales, description="head CT")
    for path in sorted((tmp_path / "ct").iterdir()):
        compress_jpeg_lossless(path)
    first = pydicom.dcmread(next((tmp_path / "ct").iterdir()), stop_before_pixels=True)
    assert first.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.70"  # JPEG Lossless, SV1
    read = read_input(tmp_path / "ct")
    assert read.array.shape == head.array.shape
    assert np.abs(read.array.astype(float) - head.array).max() <= 0.5  # slope 0.5 slices round to half HU
    assert np.allclose(read.ijk_to_ras, head.ijk_to_ras, atol=1e-4)
    get_detector("hemorrhage").check(read, HemorrhageOptions())


def test_a_stray_slice_of_another_patient_is_refused_with_a_choice_never_mixed(head, tmp_path):
    write_ct_series(head, tmp_path / "ct", tags={"PatientID": "A"}, description="head CT")
    stray = tmp_path / "ct" / "CT9999.dcm"
    shutil.copy(tmp_path / "ct" / "CT0005.dcm", stray)
    dataset = pydicom.dcmread(stray)
    dataset.PatientID = "B"
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    dataset.save_as(stray, enforce_file_format=True)
    uid = dataset.SeriesInstanceUID
    with pytest.raises(LesionDetectError) as refused:
        read_input(tmp_path / "ct")
    message = str(refused.value)
    assert f"{uid}#patient1 ('head CT', CT, {len(head.array)} files" in message
    assert f"{uid}#patient2 ('head CT', CT, 1 file" in message and "CT9999.dcm" in message
    chosen = read_input(tmp_path / "ct", series_uid=f"{uid}#patient1")
    assert np.array_equal(chosen.array, head.array)

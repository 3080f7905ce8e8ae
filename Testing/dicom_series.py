"""Write a `Volume` (axial, int16 HU) as a CT DICOM series with pydicom, the way scanners store it."""

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from LesionDetectLib.volume import LPS_TO_RAS


def write_ct_series(volume, folder) -> None:
    """One file per slice: uint16 stored values with rescale intercept -1024, LPS positions."""
    folder.mkdir(parents=True, exist_ok=True)
    ijk_to_lps = LPS_TO_RAS @ volume.ijk_to_ras
    spacing = volume.spacing
    row_lps, column_lps = ijk_to_lps[:3, 0] / spacing[0], ijk_to_lps[:3, 1] / spacing[1]
    series_uid = generate_uid()
    for k, hu in enumerate(volume.array):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = folder / f"CT{k:04d}.dcm"
        dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        dataset.SOPClassUID = CTImageStorage
        dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        dataset.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.2"
        dataset.SeriesInstanceUID = series_uid
        dataset.Modality = "CT"
        dataset.SeriesDescription = "phantom calcium CT"
        dataset.PatientID = "PHANTOM"
        dataset.InstanceNumber = k + 1
        dataset.ImagePositionPatient = [f"{value:.6f}" for value in ijk_to_lps[:3, 3] + k * ijk_to_lps[:3, 2]]
        dataset.ImageOrientationPatient = [f"{value:.8f}" for value in (*row_lps, *column_lps)]
        dataset.PixelSpacing = [float(spacing[1]), float(spacing[0])]
        dataset.SliceThickness = float(spacing[2])
        dataset.Rows, dataset.Columns = hu.shape
        dataset.SamplesPerPixel = 1
        dataset.PhotometricInterpretation = "MONOCHROME2"
        dataset.BitsAllocated = dataset.BitsStored = 16
        dataset.HighBit = 15
        dataset.PixelRepresentation = 0
        dataset.RescaleSlope = 1
        dataset.RescaleIntercept = -1024
        dataset.PixelData = (hu.astype(np.int32) + 1024).astype(np.uint16).tobytes()
        dataset.save_as(path, enforce_file_format=True)

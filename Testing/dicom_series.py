"""Write CT/MR DICOM slices with pydicom, the way scanners store them (uint16, rescale intercept -1024)."""

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

from LesionDetectLib.volume import LPS_TO_RAS


def save_slice(
    path,
    hu,
    *,
    position_lps,
    row_lps,
    column_lps,
    pixel_spacing_ij,
    slice_thickness,
    series_uid,
    instance,
    modality="CT",
    description="phantom series",
):
    """One single-frame image file holding `hu` (rows, columns) at `position_lps`."""
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    dataset.SeriesInstanceUID = series_uid
    dataset.Modality = modality
    dataset.SeriesDescription = description
    dataset.PatientID = "PHANTOM"
    dataset.InstanceNumber = instance
    dataset.ImagePositionPatient = [f"{value:.6f}" for value in position_lps]
    dataset.ImageOrientationPatient = [f"{value:.8f}" for value in (*row_lps, *column_lps)]
    dataset.PixelSpacing = [float(pixel_spacing_ij[1]), float(pixel_spacing_ij[0])]
    dataset.SliceThickness = float(slice_thickness)
    dataset.Rows, dataset.Columns = hu.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = dataset.BitsStored = 16
    dataset.HighBit = 15
    dataset.PixelRepresentation = 0
    dataset.RescaleSlope = 1
    dataset.RescaleIntercept = -1024
    dataset.PixelData = (np.asarray(hu, dtype=np.int32) + 1024).astype(np.uint16).tobytes()
    dataset.save_as(path, enforce_file_format=True)


def write_ct_series(volume, folder) -> None:
    """A `Volume` (int16 HU) as one CT file per slice, positions from its geometry."""
    folder.mkdir(parents=True, exist_ok=True)
    ijk_to_lps = LPS_TO_RAS @ volume.ijk_to_ras
    spacing = volume.spacing
    series_uid = generate_uid()
    for k, hu in enumerate(volume.array):
        save_slice(
            folder / f"CT{k:04d}.dcm",
            hu,
            position_lps=ijk_to_lps[:3, 3] + k * ijk_to_lps[:3, 2],
            row_lps=ijk_to_lps[:3, 0] / spacing[0],
            column_lps=ijk_to_lps[:3, 1] / spacing[1],
            pixel_spacing_ij=spacing[:2],
            slice_thickness=spacing[2],
            series_uid=series_uid,
            instance=k + 1,
            description="phantom calcium CT",
        )

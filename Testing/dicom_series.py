"""Write DICOM test data with pydicom the way scanners store it: CT/MR slice series (uint16, rescale
intercept -1024), an X-ray cine (one multi-frame file) and an enhanced multi-frame MR."""

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    EnhancedMRImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    XRayAngiographicImageStorage,
    generate_uid,
)

from LesionDetectLib.io.volume import LPS_TO_RAS

ROWS, COLUMNS, SLICES = 32, 28, 8
HOT_VOXEL_KJI = (5, 20, 9)
HOT_HU = 1000
AXIAL_ROW_COLUMN_LPS = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
STUDY_UID = "1.2.826.0.1.3680043.8.498.1"


def new_file(path, sop_class) -> FileDataset:
    """An empty DICOM file dataset of `sop_class` with the identifiers every image carries."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID = STUDY_UID
    dataset.PatientID = "PHANTOM"
    return dataset


def set_pixels(dataset, stored) -> None:
    """Uncompressed uint16 MONOCHROME2 pixels from `stored` (rows, columns) or (frames, rows, columns)."""
    stored = np.asarray(stored)
    dataset.Rows, dataset.Columns = stored.shape[-2:]
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = dataset.BitsStored = 16
    dataset.HighBit = 15
    dataset.PixelRepresentation = 0
    dataset.PixelData = stored.astype(np.uint16).tobytes()


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
    tags=None,
    rescale=(1.0, -1024.0),
):
    """One single-frame image file holding `hu` (rows, columns) at `position_lps`, stored as (hu − intercept) /
    slope with `rescale` = (slope, intercept).

    `series_uid=None` leaves SeriesInstanceUID out, as some de-identified exports do; `tags` sets
    further attributes by keyword (EchoNumbers, SeriesNumber, ...).
    """
    dataset = new_file(path, CTImageStorage if modality == "CT" else MRImageStorage)
    if series_uid is not None:
        dataset.SeriesInstanceUID = series_uid
    dataset.Modality = modality
    dataset.SeriesDescription = description
    dataset.InstanceNumber = instance
    dataset.ImagePositionPatient = [f"{value:.6f}" for value in position_lps]
    dataset.ImageOrientationPatient = [f"{value:.8f}" for value in (*row_lps, *column_lps)]
    dataset.PixelSpacing = [float(pixel_spacing_ij[1]), float(pixel_spacing_ij[0])]
    dataset.SliceThickness = float(slice_thickness)
    slope, intercept = rescale
    dataset.RescaleSlope = f"{slope:g}"
    dataset.RescaleIntercept = f"{intercept:g}"
    for keyword, value in (tags or {}).items():
        setattr(dataset, keyword, value)
    set_pixels(dataset, np.rint((np.asarray(hu, dtype=np.float64) - intercept) / slope))
    dataset.save_as(path, enforce_file_format=True)


def write_series(
    folder,
    *,
    row_column_lps=AXIAL_ROW_COLUMN_LPS,
    origin_lps=(-10.0, -20.0, 30.0),
    pixel_spacing_ij=(0.8, 0.7),
    slice_step_mm=2.0,
    tilt_lps_per_slice=(0.0, 0.0, 0.0),
    skip_slices=(),
    modality="CT",
    series_uid=None,
    prefix="IM",
    reverse_names=False,
    slices=SLICES,
    hu_offset=0,
    tags=None,
    generate_series_uid=True,
):
    """Write a series (HU = 10·k + `hu_offset`, one HOT_HU voxel); return the hot voxel's LPS position.

    `tilt_lps_per_slice` shears it (slice k moves by k times that vector, as with gantry tilt);
    `generate_series_uid=False` with no `series_uid` writes files without SeriesInstanceUID.
    """
    folder.mkdir(parents=True, exist_ok=True)
    row_lps, column_lps = (np.array(vector) for vector in row_column_lps)
    normal_lps = np.cross(row_lps, column_lps)
    if series_uid is None and generate_series_uid:
        series_uid = generate_uid()
    for k in range(slices):
        if k in skip_slices:
            continue
        hu = np.full((ROWS, COLUMNS), 10 * k + hu_offset, dtype=np.int32)
        if k == HOT_VOXEL_KJI[0]:
            hu[HOT_VOXEL_KJI[1], HOT_VOXEL_KJI[2]] = HOT_HU
        position_lps = np.array(origin_lps) + k * slice_step_mm * normal_lps + k * np.array(tilt_lps_per_slice)
        path = folder / f"{prefix}{(slices - 1 - k) if reverse_names else k:04d}.dcm"
        save_slice(
            path,
            hu,
            position_lps=position_lps,
            row_lps=row_lps,
            column_lps=column_lps,
            pixel_spacing_ij=pixel_spacing_ij,
            slice_thickness=slice_step_mm,
            series_uid=series_uid,
            instance=k + 1,
            modality=modality,
            description=f"{prefix} series",
            tags=tags,
        )
    k, j, i = HOT_VOXEL_KJI
    return (
        np.array(origin_lps)
        + i * pixel_spacing_ij[0] * row_lps
        + j * pixel_spacing_ij[1] * column_lps
        + k * (slice_step_mm * normal_lps + np.array(tilt_lps_per_slice))
    )


def write_ct_series(volume, folder, rescales=None, tags=None, description="phantom calcium CT") -> None:
    """A `Volume` (int16 HU) as one CT file per slice, positions from its geometry; `rescales` gives each
    slice its own (slope, intercept)."""
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
            description=description,
            tags=tags,
            rescale=(1.0, -1024.0) if rescales is None else rescales[k],
        )


def compress_jpeg_lossless(path) -> None:
    """Re-encode a written file's pixels as JPEG Lossless (process 14, SV1), as head-CT series often come:
    SimpleITK's GDCM encodes them; every other attribute stays."""
    import tempfile

    import SimpleITK as sitk

    dataset = pydicom.dcmread(path)
    stored = np.frombuffer(dataset.PixelData, dtype=np.uint16).reshape(dataset.Rows, dataset.Columns)
    with tempfile.TemporaryDirectory() as scratch:
        encoded_path = f"{scratch}/encoded.dcm"
        writer = sitk.ImageFileWriter()
        writer.SetFileName(encoded_path)
        writer.SetImageIO("GDCMImageIO")
        writer.UseCompressionOn()
        writer.SetCompressor("JPEG")
        writer.Execute(sitk.GetImageFromArray(stored[None]))
        encoded = pydicom.dcmread(encoded_path)
    dataset.file_meta.TransferSyntaxUID = encoded.file_meta.TransferSyntaxUID
    dataset.PixelData = encoded.PixelData
    dataset["PixelData"].is_undefined_length = True
    dataset.save_as(path, enforce_file_format=True)


def save_cine(path, frames, *, frame_time_ms=None, frame_time_vector_ms=None, imager_pixel_spacing=None):
    """An X-ray angiography cine: one file of `frames` (frames, rows, columns), no patient geometry."""
    dataset = new_file(path, XRayAngiographicImageStorage)
    dataset.SeriesInstanceUID = generate_uid()
    dataset.Modality = "XA"
    dataset.SeriesDescription = "coronary run"
    dataset.InstanceNumber = 1
    dataset.NumberOfFrames = len(frames)
    if frame_time_ms is not None:
        dataset.FrameTime = frame_time_ms
        dataset.FrameIncrementPointer = 0x00181063
    if frame_time_vector_ms is not None:
        dataset.FrameTimeVector = list(frame_time_vector_ms)
        dataset.FrameIncrementPointer = 0x00181065
    if imager_pixel_spacing is not None:
        dataset.ImagerPixelSpacing = list(imager_pixel_spacing)
    set_pixels(dataset, frames)
    dataset.save_as(path, enforce_file_format=True)


def save_enhanced_mr(
    path,
    stored,
    *,
    positions_lps,
    row_lps,
    column_lps,
    pixel_spacing_ij,
    slice_thickness,
    rescale=(1.0, 0.0),
    frame_rescales=None,
):
    """An enhanced multi-frame MR: frame f of `stored` (frames, rows, columns) lies at `positions_lps[f]`.

    Orientation, pixel spacing and the rescale (slope, intercept) sit in the shared functional groups,
    unless `frame_rescales` gives each frame its own (slope, intercept) in its per-frame groups.
    """
    dataset = new_file(path, EnhancedMRImageStorage)
    dataset.SeriesInstanceUID = generate_uid()
    dataset.FrameOfReferenceUID = generate_uid()
    dataset.Modality = "MR"
    dataset.SeriesDescription = "enhanced T1"
    dataset.InstanceNumber = 1
    dataset.NumberOfFrames = len(stored)
    measures, orientation = Dataset(), Dataset()
    measures.PixelSpacing = [float(pixel_spacing_ij[1]), float(pixel_spacing_ij[0])]
    measures.SliceThickness = float(slice_thickness)
    orientation.ImageOrientationPatient = [f"{value:.8f}" for value in (*row_lps, *column_lps)]
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PlaneOrientationSequence = Sequence([orientation])
    if frame_rescales is None:
        shared.PixelValueTransformationSequence = Sequence([_transformation(rescale)])
    dataset.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for number, position_lps in enumerate(positions_lps):
        plane, frame = Dataset(), Dataset()
        plane.ImagePositionPatient = [f"{value:.6f}" for value in position_lps]
        frame.PlanePositionSequence = Sequence([plane])
        if frame_rescales is not None:
            frame.PixelValueTransformationSequence = Sequence([_transformation(frame_rescales[number])])
        per_frame.append(frame)
    dataset.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    set_pixels(dataset, stored)
    dataset.save_as(path, enforce_file_format=True)


def _transformation(rescale) -> Dataset:
    """A Pixel Value Transformation item for (slope, intercept)."""
    item = Dataset()
    item.RescaleSlope, item.RescaleIntercept = rescale
    item.RescaleType = "US"
    return item

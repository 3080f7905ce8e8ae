"""Reading DICOM series, NRRD, NIfTI and MetaImage into a `Volume`, writing NRRD, and refusing bad input."""

import gzip

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_series import COLUMNS, HOT_HU, HOT_VOXEL_KJI, ROWS, SLICES, write_series
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from scipy.spatial.transform import Rotation

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.volume import LPS_TO_RAS, Volume
from LesionDetectLib.io.volume_io import read_volume, write_nrrd

OBLIQUE_ROW_COLUMN_LPS = tuple(map(tuple, Rotation.from_euler("xyz", [20, -10, 35], degrees=True).as_matrix().T[:2]))


def folder_state(folder):
    """Names, sizes and modification times of every file, to prove reading changed nothing."""
    return {path.name: (path.stat().st_size, path.stat().st_mtime_ns) for path in sorted(folder.iterdir())}


def refused(path, *, series_uid=None):
    """The message of the LesionDetectError raised reading `path`; the input is left unchanged."""
    before = folder_state(path if path.is_dir() else path.parent) if path.exists() else None
    with pytest.raises(LesionDetectError) as caught:
        read_volume(path, series_uid=series_uid)
    if before is not None:
        assert folder_state(path if path.is_dir() else path.parent) == before
    return str(caught.value)


def oblique_volume(array):
    """A `Volume` with an oblique IJK→RAS and anisotropic spacing."""
    ijk_to_ras = np.eye(4)
    ijk_to_ras[:3, :3] = Rotation.from_euler("zyx", [25, 5, -15], degrees=True).as_matrix() * [0.6, 0.75, 2.5]
    ijk_to_ras[:3, 3] = [12.5, -40.25, 101.0]
    return Volume(array, ijk_to_ras, "oblique", "CT")


def ct_array():
    """A small int16 CT-like array with negative and positive HU."""
    return (np.arange(8 * 12 * 10, dtype=np.int16).reshape(8, 12, 10) * 7 - 1024).astype(np.int16)


@pytest.mark.parametrize("reverse_names", [False, True])
def test_axial_dicom_series_gives_hu_and_exact_ras(tmp_path, reverse_names):
    folder = tmp_path / "ct"
    hot_lps = write_series(folder, reverse_names=reverse_names)
    before = folder_state(folder)

    volume = read_volume(folder)

    assert folder_state(folder) == before
    assert volume.array.dtype == np.int16 and volume.array.shape == (SLICES, ROWS, COLUMNS)
    assert volume.array[HOT_VOXEL_KJI] == HOT_HU
    assert [int(volume.array[k, 0, 0]) for k in range(SLICES)] == [10 * k for k in range(SLICES)]
    assert volume.modality == "CT" and volume.name == "IM series"
    hot_ras = volume.ijk_to_ras_points([HOT_VOXEL_KJI[::-1]])[0]
    np.testing.assert_allclose(hot_ras, hot_lps * [-1, -1, 1], atol=1e-4)
    np.testing.assert_allclose(volume.spacing, [0.8, 0.7, 2.0], atol=1e-6)


def test_single_dicom_file_reads_its_whole_series(tmp_path):
    folder = tmp_path / "ct"
    write_series(folder)

    volume = read_volume(folder / "IM0003.dcm")

    assert volume.array.shape == (SLICES, ROWS, COLUMNS)


def test_oblique_reversed_dicom_series_keeps_positions(tmp_path):
    folder = tmp_path / "oblique"
    hot_lps = write_series(folder, row_column_lps=OBLIQUE_ROW_COLUMN_LPS, reverse_names=True, slice_step_mm=1.25)

    volume = read_volume(folder)

    assert volume.array[HOT_VOXEL_KJI] == HOT_HU
    hot_ras = volume.ijk_to_ras_points([HOT_VOXEL_KJI[::-1]])[0]
    np.testing.assert_allclose(hot_ras, hot_lps * [-1, -1, 1], atol=1e-4)
    row_lps, column_lps = np.array(OBLIQUE_ROW_COLUMN_LPS)
    np.testing.assert_allclose(volume.directions[:, 0], LPS_TO_RAS[:3, :3] @ row_lps, atol=1e-6)
    np.testing.assert_allclose(volume.directions[:, 2], LPS_TO_RAS[:3, :3] @ np.cross(row_lps, column_lps), atol=1e-6)


def test_mr_series_reports_mr_modality(tmp_path):
    folder = tmp_path / "mr"
    write_series(folder, modality="MR")

    assert read_volume(folder).modality == "MR"


def test_readme_and_dicomdir_beside_the_series_are_ignored(tmp_path):
    folder = tmp_path / "ct"
    write_series(folder)
    (folder / "README").write_text("Exported by a PACS viewer.\n")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dicomdir = FileDataset(str(folder / "DICOMDIR"), {}, file_meta=meta, preamble=b"\0" * 128)
    dicomdir.FileSetID = "EXPORT"
    dicomdir.save_as(folder / "DICOMDIR", enforce_file_format=True)

    assert read_volume(folder).array.shape == (SLICES, ROWS, COLUMNS)


def test_nrrd_round_trip_keeps_values_geometry_and_modality(tmp_path):
    volume = oblique_volume(ct_array())
    path = tmp_path / "scan.nrrd"

    write_nrrd(volume, path)
    loaded = read_volume(path)

    assert loaded.array.dtype == np.int16
    np.testing.assert_array_equal(loaded.array, volume.array)
    np.testing.assert_allclose(loaded.ijk_to_ras, volume.ijk_to_ras, atol=1e-9)
    assert loaded.modality == "CT" and loaded.name == "scan"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.nrrd"]


def test_nifti_round_trip_keeps_values_and_oblique_geometry(tmp_path):
    volume = oblique_volume(ct_array())
    ijk_to_lps = LPS_TO_RAS @ volume.ijk_to_ras
    image = sitk.GetImageFromArray(volume.array)
    image.SetSpacing(volume.spacing.tolist())
    image.SetDirection((ijk_to_lps[:3, :3] / volume.spacing).ravel().tolist())
    image.SetOrigin(ijk_to_lps[:3, 3].tolist())
    path = tmp_path / "scan.nii.gz"
    sitk.WriteImage(image, str(path))

    loaded = read_volume(path)

    assert loaded.array.dtype == np.int16 and loaded.name == "scan" and loaded.modality is None
    np.testing.assert_array_equal(loaded.array, volume.array)
    np.testing.assert_allclose(loaded.ijk_to_ras, volume.ijk_to_ras, atol=1e-4)


def test_wide_integers_become_float32_and_narrow_ones_int16(tmp_path):
    wide, narrow = tmp_path / "wide.mha", tmp_path / "narrow.mha"
    sitk.WriteImage(sitk.GetImageFromArray(np.full((4, 5, 6), 70000, dtype=np.int32)), str(wide))
    sitk.WriteImage(sitk.GetImageFromArray(np.full((4, 5, 6), 4000, dtype=np.uint16)), str(narrow))

    assert read_volume(wide).array.dtype == np.float32 and read_volume(wide).array[0, 0, 0] == 70000
    assert read_volume(narrow).array.dtype == np.int16 and read_volume(narrow).array[0, 0, 0] == 4000


def test_write_nrrd_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "scan.nrrd"
    write_nrrd(oblique_volume(ct_array()), path)
    before = path.read_bytes()

    with pytest.raises(LesionDetectError, match="already exists"):
        write_nrrd(oblique_volume(ct_array() + 1), path)
    assert path.read_bytes() == before

    write_nrrd(oblique_volume(ct_array() + 1), path, overwrite=True)
    assert read_volume(path).array[0, 0, 0] == ct_array()[0, 0, 0] + 1


def test_write_nrrd_refuses_zero_spacing(tmp_path):
    with pytest.raises(LesionDetectError, match="zero or missing voxel spacing"):
        write_nrrd(Volume(ct_array(), np.diag([1.0, 1.0, 0.0, 1.0]), "flat"), tmp_path / "flat.nrrd")
    assert list(tmp_path.iterdir()) == []


def test_nonexistent_path_is_refused(tmp_path):
    assert "does not exist" in refused(tmp_path / "missing")


def test_empty_folder_is_refused(tmp_path):
    assert "holds no files" in refused(tmp_path)


def test_folder_without_dicom_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here\n")
    assert "no DICOM images" in refused(tmp_path)


def test_damaged_dcm_among_good_files_is_named(tmp_path):
    write_series(tmp_path)
    (tmp_path / "IM0100.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff")
    message = refused(tmp_path)
    assert "IM0100.dcm" in message and "damaged" in message


def test_truncated_pixel_data_is_named(tmp_path):
    write_series(tmp_path)
    damaged = tmp_path / "IM0003.dcm"
    damaged.write_bytes(damaged.read_bytes()[:-300])
    message = refused(tmp_path)
    assert "IM0003.dcm" in message and "damaged" in message


def test_mixed_series_are_listed_and_one_can_be_chosen(tmp_path):
    write_series(tmp_path, series_uid="1.2.3.4.1", prefix="A")
    write_series(tmp_path, series_uid="1.2.3.4.2", prefix="B", slices=6)

    message = refused(tmp_path)
    assert "2 DICOM series" in message
    assert "1.2.3.4.1 ('A series', CT, 8 files)" in message and "1.2.3.4.2 ('B series', CT, 6 files)" in message
    assert "--series-uid" in message
    assert read_volume(tmp_path, series_uid="1.2.3.4.2").array.shape == (6, ROWS, COLUMNS)
    assert "1.2.3.4.9 is not in" in refused(tmp_path, series_uid="1.2.3.4.9")


def test_missing_slice_is_refused_with_positions(tmp_path):
    write_series(tmp_path, skip_slices=(4,))
    message = refused(tmp_path)
    assert "missing slices" in message and "36.00 and 40.00 mm" in message


def test_uneven_slice_spacing_is_refused(tmp_path):
    write_series(tmp_path)
    shifted = tmp_path / "IM0004.dcm"
    dataset = pydicom.dcmread(shifted)
    dataset.ImagePositionPatient = [-10.0, -20.0, 38.4]
    dataset.save_as(shifted)
    assert "uneven slice spacing (usually 2.000 mm, but 2.400 mm from 36.00 to 38.40 mm" in refused(tmp_path)


def test_gantry_tilt_is_corrected_with_a_note(tmp_path):
    write_series(tmp_path, tilt_lps_per_slice=(0.0, 0.2, 0.0))
    volume = read_volume(tmp_path)
    assert volume.notes == ["gantry tilt of 5.7° corrected by resampling onto an orthogonal grid"]
    np.testing.assert_allclose(volume.spacing, [0.8, 0.7, 2.0], atol=1e-6)


def test_inconsistent_orientation_is_refused(tmp_path):
    write_series(tmp_path)
    turned = tmp_path / "IM0006.dcm"
    dataset = pydicom.dcmread(turned)
    dataset.ImageOrientationPatient = [f"{value:.8f}" for value in np.ravel(OBLIQUE_ROW_COLUMN_LPS)]
    dataset.save_as(turned)
    message = refused(tmp_path)
    assert "inconsistent orientations" in message and "IM0006.dcm" in message


def test_single_dicom_slice_is_refused_as_2d(tmp_path):
    write_series(tmp_path, slices=1)
    assert "2D image" in refused(tmp_path)


def test_2d_nrrd_is_refused(tmp_path):
    path = tmp_path / "slice.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((12, 10), np.int16)), str(path))
    assert "2D image" in refused(path)


def test_single_slice_3d_nrrd_is_refused(tmp_path):
    path = tmp_path / "slab.nrrd"
    write_nrrd(Volume(np.zeros((1, 12, 10), np.int16), np.eye(4)), path)
    assert "not a 3D volume" in refused(path)


@pytest.mark.parametrize("directions", ["(1,0,0) (0,1,0) (0,0,0)", "(1,0,0) (0,1,0) (nan,nan,nan)"])
def test_nrrd_with_zero_spacing_is_refused(tmp_path, directions):
    path = tmp_path / "flat.nrrd"
    header = (
        "NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\nsizes: 6 5 4\n"
        f"space directions: {directions}\nendian: little\nencoding: raw\nspace origin: (0,0,0)\n\n"
    )
    path.write_bytes(header.encode() + np.zeros(120, np.int16).tobytes())
    assert "zero or missing voxel spacing" in refused(path)


def test_nrrd_without_spacing_is_refused(tmp_path):
    path = tmp_path / "bare.nrrd"
    header = b"NRRD0004\ntype: short\ndimension: 3\nsizes: 6 5 4\nendian: little\nencoding: raw\n\n"
    path.write_bytes(header + bytes(240))
    assert "no voxel spacing" in refused(path)


def test_nifti_with_zero_pixdim_is_refused(tmp_path):
    written = tmp_path / "written.nii"
    image = sitk.GetImageFromArray(np.zeros((4, 5, 6), np.int16))
    image.SetSpacing((1.0, 1.0, 2.0))
    sitk.WriteImage(image, str(written))
    header = bytearray(written.read_bytes())
    header[88:92] = np.float32(0).tobytes()  # pixdim[3]
    path = tmp_path / "flat.nii.gz"
    path.write_bytes(gzip.compress(bytes(header)))
    written.unlink()
    assert "zero or missing voxel spacing (pixdim 1 1 0)" in refused(path)


def test_metaimage_with_zero_spacing_is_refused(tmp_path):
    path = tmp_path / "flat.mha"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 5, 6), np.int16)), str(path))
    path.write_bytes(path.read_bytes().replace(b"ElementSpacing = 1 1 1", b"ElementSpacing = 1 1 0"))
    assert "zero voxel spacing" in refused(path)


def test_nan_voxels_are_refused(tmp_path):
    array = np.zeros((4, 5, 6), np.float32)
    array[2, 3, 4] = np.nan
    path = tmp_path / "nan.nrrd"
    write_nrrd(Volume(array, np.eye(4), "nan"), path)
    assert "1 NaN or infinite voxels" in refused(path)


def test_colour_image_is_refused(tmp_path):
    path = tmp_path / "rgb.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 5, 6, 3), np.uint8), isVector=True), str(path))
    assert "3 values per voxel" in refused(path)


def test_unsupported_file_is_refused(tmp_path):
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.4\n")
    assert "neither a DICOM image nor a supported volume file" in refused(path)


def test_raw_nrrd_is_used_in_place_read_only_and_a_truncated_one_is_refused(tmp_path):
    volume = oblique_volume(ct_array())
    write_nrrd(volume, tmp_path / "ct.nrrd")
    read_back = read_volume(tmp_path / "ct.nrrd")
    assert np.array_equal(read_back.array, volume.array) and not read_back.array.flags.writeable
    assert np.allclose(read_back.ijk_to_ras, volume.ijk_to_ras)
    data = (tmp_path / "ct.nrrd").read_bytes()
    (tmp_path / "short.nrrd").write_bytes(data[:-100])
    assert "shorter than its header says" in refused(tmp_path / "short.nrrd")

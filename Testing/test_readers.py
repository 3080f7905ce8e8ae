"""`read_input` on every kind of input: 2D images, frame folders, X-ray cine, enhanced MR, multi-echo,
gantry-tilted CT, DICOM without SeriesInstanceUID and series in nested folders (all written here)."""

import re

import imageio.v3 as iio
import numpy as np
import pydicom
import pytest
import tifffile
from dicom_series import (
    COLUMNS,
    HOT_HU,
    HOT_VOXEL_KJI,
    ROWS,
    SLICES,
    new_file,
    save_cine,
    save_enhanced_mr,
    set_pixels,
    write_series,
)
from pydicom.uid import DigitalXRayImageStorageForPresentation
from scipy.spatial.transform import Rotation

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.image_sequence import ImageSequence
from LesionDetectLib.io.read_input import read_input
from LesionDetectLib.io.volume import LPS_TO_RAS, Volume
from LesionDetectLib.io.volume_io import read_volume

LPS = np.array([-1.0, -1.0, 1.0])  # LPS ↔ RAS flips the first two axes


def refused(path, **choices) -> str:
    with pytest.raises(LesionDetectError) as caught:
        read_input(path, **choices)
    return str(caught.value)


def ramp(rows=20, columns=24, scale=1, dtype=np.uint8):
    return (np.arange(rows * columns).reshape(rows, columns) * scale % np.iinfo(dtype).max).astype(dtype)


# --- 2D images and frame folders ---


def test_16_bit_greyscale_png_keeps_its_values(tmp_path):
    pixels = ramp(scale=97, dtype=np.uint16)
    iio.imwrite(tmp_path / "scan.png", pixels)

    image = read_input(tmp_path / "scan.png")

    assert isinstance(image, ImageSequence) and image.is_single_image and image.name == "scan"
    assert image.frames.dtype == np.uint16 and image.frames.max() > 255
    np.testing.assert_array_equal(image.frames[0], pixels)
    assert image.notes == [] and image.pixel_spacing_mm is None and image.frame_times_s is None
    assert "a 2D image" in pytest.raises(LesionDetectError, read_volume, tmp_path / "scan.png").value.args[0]


def test_rgb_png_is_read_as_luminance_with_a_note(tmp_path):
    rgb = np.zeros((20, 24, 3), np.uint8)
    rgb[...] = (200, 100, 50)
    rgb[5, 7] = (0, 0, 255)
    iio.imwrite(tmp_path / "photo.png", rgb)

    image = read_input(tmp_path / "photo.png")

    assert image.notes == ["RGB image read as grey (luminance)"]
    assert image.frames[0, 0, 0] == pytest.approx(0.299 * 200 + 0.587 * 100 + 0.114 * 50, abs=1e-3)
    assert image.frames[0, 5, 7] == pytest.approx(0.114 * 255, abs=1e-3)


def test_rgb_jpeg_is_read_as_grey_and_grey_stored_as_rgb_keeps_its_values(tmp_path):
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:, :16] = (250, 20, 20)
    iio.imwrite(tmp_path / "photo.jpg", rgb, quality=95)
    grey_as_rgb = np.repeat(ramp()[..., None], 3, axis=2)
    iio.imwrite(tmp_path / "grey.png", grey_as_rgb)

    photo, grey = read_input(tmp_path / "photo.jpg"), read_input(tmp_path / "grey.png")

    assert photo.notes == ["RGB image read as grey (luminance)"] and photo.frames.shape == (1, 32, 32)
    assert photo.frames[0, 16, 4] == pytest.approx(0.299 * 250 + 0.587 * 20 + 0.114 * 20, abs=4)
    assert photo.frames[0, 16, 28] == pytest.approx(0, abs=4)
    assert grey.notes == [] and grey.frames.dtype == np.uint8
    np.testing.assert_array_equal(grey.frames[0], ramp())


def test_multi_page_16_bit_tiff_gives_one_frame_per_page(tmp_path):
    pages = np.stack([ramp(scale=300 + page, dtype=np.uint16) for page in range(3)])
    tifffile.imwrite(tmp_path / "stack.tif", pages, photometric="minisblack")

    image = read_input(tmp_path / "stack.tif")

    assert image.frames.dtype == np.uint16
    np.testing.assert_array_equal(image.frames, pages)


def test_folder_of_png_frames_is_read_in_natural_name_order(tmp_path):
    for number in range(1, 13):
        iio.imwrite(tmp_path / f"frame{number}.png", np.full((16, 20), 10 * number, np.uint8))

    sequence = read_input(tmp_path)

    assert sequence.name == tmp_path.name and sequence.frame_count == 12
    assert [int(frame[3, 4]) for frame in sequence.frames] == [10 * number for number in range(1, 13)]


def test_frame_of_another_size_is_refused_by_name(tmp_path):
    for number in range(1, 4):
        iio.imwrite(tmp_path / f"frame{number}.png", np.zeros((16, 20), np.uint8))
    iio.imwrite(tmp_path / "frame4.png", np.zeros((16, 22), np.uint8))

    message = refused(tmp_path)

    assert "'frame4.png'" in message and "22×16" in message and "same size" in message


def test_folder_with_dicom_and_images_is_refused(tmp_path):
    write_series(tmp_path, slices=3)
    iio.imwrite(tmp_path / "preview.png", np.zeros((16, 20), np.uint8))

    message = refused(tmp_path)

    assert "both DICOM images" in message and "'preview.png'" in message and "separate folders" in message


# --- multi-frame DICOM ---


def test_xa_cine_gives_frames_frame_times_and_imager_spacing(tmp_path):
    frames = np.stack([ramp(16, 20) + 3 * number for number in range(5)]).astype(np.uint16)
    save_cine(tmp_path / "run.dcm", frames, frame_time_ms=66.7, imager_pixel_spacing=(0.2, 0.25))

    cine = read_input(tmp_path / "run.dcm")

    assert isinstance(cine, ImageSequence) and cine.modality == "XA" and cine.name == "coronary run"
    np.testing.assert_array_equal(cine.frames, frames)
    np.testing.assert_allclose(cine.frame_times_s, np.arange(5) * 0.0667)
    assert cine.pixel_spacing_mm == (0.2, 0.25) and cine.frame_rate_hz == pytest.approx(1 / 0.0667)
    assert "a sequence of 5 2D frames" in pytest.raises(LesionDetectError, read_volume, tmp_path).value.args[0]


def test_cine_frame_time_vector_adds_up_increments(tmp_path):
    frames = np.stack([ramp(16, 20)] * 4).astype(np.uint16)
    save_cine(tmp_path / "run.dcm", frames, frame_time_vector_ms=(0, 30, 40, 30))

    cine = read_input(tmp_path)

    np.testing.assert_allclose(cine.frame_times_s, [0.0, 0.03, 0.07, 0.10])
    assert cine.pixel_spacing_mm is None


def test_enhanced_mr_frames_are_sorted_along_the_normal_with_exact_geometry(tmp_path):
    row_lps, column_lps = Rotation.from_euler("xyz", [15, -20, 30], degrees=True).as_matrix().T[:2]
    normal_lps = np.cross(row_lps, column_lps)
    origin_lps, spacing_ij, step_mm = np.array([12.0, -30.5, 44.0]), (0.5, 0.6), 1.5
    file_order = [3, 0, 4, 1, 2]  # frame f of the file is slice file_order[f]
    stored = np.stack([np.full((16, 12), 100 + 10 * k, np.uint16) for k in file_order])
    stored[file_order.index(2), 7, 5] = 900
    save_enhanced_mr(
        tmp_path / "mr.dcm",
        stored,
        positions_lps=[origin_lps + k * step_mm * normal_lps for k in file_order],
        row_lps=row_lps,
        column_lps=column_lps,
        pixel_spacing_ij=spacing_ij,
        slice_thickness=step_mm,
        rescale=(2.0, -5.0),
    )

    volume = read_input(tmp_path / "mr.dcm")

    assert isinstance(volume, Volume) and volume.modality == "MR" and volume.array.shape == (5, 16, 12)
    assert [int(volume.array[k, 0, 0]) for k in range(5)] == [2 * (100 + 10 * k) - 5 for k in range(5)]
    assert volume.array[2, 7, 5] == 2 * 900 - 5
    np.testing.assert_allclose(volume.spacing, [0.5, 0.6, 1.5], atol=1e-6)
    expected_lps = origin_lps + 5 * 0.5 * row_lps + 7 * 0.6 * column_lps + 2 * step_mm * normal_lps
    np.testing.assert_allclose(volume.ijk_to_ras_points([[5, 7, 2]])[0], expected_lps * LPS, atol=1e-4)
    np.testing.assert_allclose(
        volume.directions, LPS_TO_RAS[:3, :3] @ np.column_stack([row_lps, column_lps, normal_lps]), atol=1e-6
    )


def test_enhanced_frames_keep_their_own_rescale(tmp_path):
    stored = np.stack([np.full((16, 12), 100 + k, np.uint16) for k in range(3)])
    save_enhanced_mr(
        tmp_path / "mr.dcm",
        stored,
        positions_lps=[(0.0, 0.0, 2.0 * k) for k in range(3)],
        row_lps=(1, 0, 0),
        column_lps=(0, 1, 0),
        pixel_spacing_ij=(0.5, 0.5),
        slice_thickness=2.0,
        frame_rescales=[(1.0, 0.0), (2.0, 10.0), (0.5, -3.0)],
    )

    volume = read_input(tmp_path / "mr.dcm")

    np.testing.assert_allclose(volume.array[:, 4, 4], [100, 2 * 101 + 10, 0.5 * 102 - 3])


# --- DICOM series ---


def write_two_echoes(folder):
    """One series, two echoes (TE 10 and 20 ms) at the same slices; echo e has HU 10·k + 100·e."""
    uid = pydicom.uid.generate_uid()
    for echo in (1, 2):
        write_series(
            folder,
            series_uid=uid,
            prefix=f"E{echo}_",
            modality="MR",
            hu_offset=100 * echo,
            tags={"EchoNumbers": echo, "EchoTime": 10.0 * echo},
        )


def test_multi_echo_series_is_refused_without_a_choice_listing_the_echoes(tmp_path):
    write_two_echoes(tmp_path)

    message = refused(tmp_path)

    assert "2 echoes" in message and "echo 1 (TE 10 ms), echo 2 (TE 20 ms)" in message
    assert "--echo N" in message and "--echo combine" in message
    assert "no echo '3'" in refused(tmp_path, echo="3")


def test_one_echo_is_picked_with_a_note(tmp_path):
    write_two_echoes(tmp_path)

    volume = read_input(tmp_path, echo="2")

    assert volume.array.shape == (SLICES, ROWS, COLUMNS)
    assert [int(volume.array[k, 0, 0]) for k in range(SLICES)] == [10 * k + 200 for k in range(SLICES)]
    assert volume.notes == ["echo 2 of 2 (TE 20 ms) read"]


def test_echoes_are_combined_as_root_sum_of_squares(tmp_path):
    write_two_echoes(tmp_path)
    first = read_input(tmp_path, echo="1")

    volume = read_input(tmp_path, echo="combine")

    expected = [np.hypot(10 * k + 100, 10 * k + 200) for k in range(SLICES)]
    np.testing.assert_allclose(volume.array[:, 0, 0], expected, rtol=1e-6)
    assert volume.array[HOT_VOXEL_KJI] == pytest.approx(np.hypot(HOT_HU, HOT_HU), rel=1e-6)
    np.testing.assert_allclose(volume.ijk_to_ras, first.ijk_to_ras)
    assert volume.notes == ["2 echoes combined (root sum of squares)"]


def test_echo_choice_for_a_single_echo_series_is_refused(tmp_path):
    write_series(tmp_path)
    assert "not a multi-echo series" in refused(tmp_path, echo="1")


@pytest.mark.parametrize("reverse_names", [False, True])
def test_gantry_tilted_ct_is_resampled_with_the_marker_in_place(tmp_path, reverse_names):
    hot_lps = write_series(tmp_path, tilt_lps_per_slice=(0.25, 0.0, 0.0), reverse_names=reverse_names)

    volume = read_input(tmp_path)

    assert volume.notes == ["gantry tilt of 7.1° corrected by resampling onto an orthogonal grid"]
    np.testing.assert_allclose(volume.directions, np.diag([-1.0, -1.0, 1.0]), atol=1e-9)
    np.testing.assert_allclose(volume.spacing, [0.8, 0.7, 2.0], atol=1e-6)
    assert volume.array.shape == (SLICES, ROWS, COLUMNS + 3)  # slice 7 moved by 7 · 0.25 / 0.8 = 2.19 columns
    slab = volume.array[HOT_VOXEL_KJI[0]] - 10 * HOT_VOXEL_KJI[0]
    j, i = np.nonzero(slab > 1)
    weights = slab[j, i]
    marker_ijk = [np.average(i, weights=weights), np.average(j, weights=weights), HOT_VOXEL_KJI[0]]
    marker_ras = volume.ijk_to_ras_points([marker_ijk])[0]
    assert np.all(np.abs(marker_ras - hot_lps * LPS) <= volume.spacing / 2)
    np.testing.assert_allclose(marker_ras, hot_lps * LPS, atol=0.01)  # linear interpolation keeps the centroid
    slice_7 = volume.array[7]
    assert slice_7[10, 15] == pytest.approx(70) and slice_7[10, 0] == volume.array.min() == 0


def test_series_without_series_instance_uid_is_read_as_one(tmp_path):
    hot_lps = write_series(tmp_path, generate_series_uid=False)
    assert "SeriesInstanceUID" not in pydicom.dcmread(tmp_path / "IM0000.dcm")

    volume = read_input(tmp_path)

    assert volume.array.shape == (SLICES, ROWS, COLUMNS) and volume.array[HOT_VOXEL_KJI] == HOT_HU
    np.testing.assert_allclose(volume.ijk_to_ras_points([HOT_VOXEL_KJI[::-1]])[0], hot_lps * LPS, atol=1e-4)


def test_series_without_uid_are_told_apart_and_chosen_by_key(tmp_path):
    write_series(tmp_path, generate_series_uid=False, prefix="A", tags={"SeriesNumber": 3})
    write_series(tmp_path, generate_series_uid=False, prefix="B", slices=5, tags={"SeriesNumber": 4})

    message = refused(tmp_path)

    key_a = re.search(r"(no-uid-[0-9a-f]+) \('A series', CT, 8 files\)", message).group(1)
    key_b = re.search(r"(no-uid-[0-9a-f]+) \('B series', CT, 5 files\)", message).group(1)
    assert "2 DICOM series" in message and key_a != key_b
    assert read_input(tmp_path, series_uid=key_b).array.shape == (5, ROWS, COLUMNS)
    assert read_input(tmp_path, series_uid=key_a).array.shape == (SLICES, ROWS, COLUMNS)


def test_series_in_nested_folders_is_found_skipping_dicomdir_and_other_files(tmp_path):
    write_series(tmp_path / "PATIENT" / "STUDY" / "SERIES1", series_uid="1.2.3.7.1")
    (tmp_path / "README.TXT").write_text("Exported by a PACS viewer.\n")
    dicomdir = new_file(tmp_path / "DICOMDIR", "1.2.840.10008.1.3.10")
    dicomdir.save_as(tmp_path / "DICOMDIR", enforce_file_format=True)

    volume = read_input(tmp_path)

    assert volume.array.shape == (SLICES, ROWS, COLUMNS) and volume.array[HOT_VOXEL_KJI] == HOT_HU


def test_two_series_in_one_folder_one_without_uid_are_listed_and_chosen(tmp_path):
    write_series(tmp_path, series_uid="1.2.3.7.5", prefix="CT", slices=6)
    write_series(tmp_path, generate_series_uid=False, prefix="MR", modality="MR")

    message = refused(tmp_path)

    assert "holds 2 DICOM series" in message and "--series-uid 1.2.3.7.5" in message
    assert "1.2.3.7.5 ('CT series', CT, 6 files)" in message
    key = re.search(r"(no-uid-[0-9a-f]+) \('MR series', MR, 8 files\)", message).group(1)
    assert read_input(tmp_path, series_uid="1.2.3.7.5").array.shape == (6, ROWS, COLUMNS)
    assert read_input(tmp_path, series_uid=key).modality == "MR"


def test_two_series_in_subfolders_are_listed_and_one_is_chosen(tmp_path):
    write_series(tmp_path / "study" / "a", series_uid="1.2.3.7.1", prefix="A")
    write_series(tmp_path / "study" / "b", series_uid="1.2.3.7.2", prefix="B", slices=6, modality="MR")

    message = refused(tmp_path)

    assert "holds 2 DICOM series" in message and "--series-uid" in message
    assert "1.2.3.7.1 ('A series', CT, 8 files, in 'study/a')" in message
    assert "1.2.3.7.2 ('B series', MR, 6 files, in 'study/b')" in message
    chosen = read_input(tmp_path, series_uid="1.2.3.7.2")
    assert chosen.modality == "MR" and chosen.array.shape == (6, ROWS, COLUMNS)
    assert "1.2.3.7.9 is not in" in refused(tmp_path, series_uid="1.2.3.7.9")


def test_radiographs_without_patient_position_become_frames(tmp_path):
    for instance in (2, 1):
        dataset = new_file(tmp_path / f"DX{instance}.dcm", DigitalXRayImageStorageForPresentation)
        dataset.SeriesInstanceUID = "1.2.3.8"
        dataset.Modality = "DX"
        dataset.InstanceNumber = instance
        dataset.ImagerPixelSpacing = [0.15, 0.16]
        set_pixels(dataset, np.full((24, 20), 50 * instance, np.uint16))
        dataset.save_as(tmp_path / f"DX{instance}.dcm", enforce_file_format=True)

    image = read_input(tmp_path / "DX2.dcm")

    assert image.modality == "DX" and image.pixel_spacing_mm == (0.15, 0.16)
    assert [int(frame[0, 0]) for frame in image.frames] == [50, 100]

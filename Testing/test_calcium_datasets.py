"""The calcium dataset readers on tiny real files: a COCA-style DICOM series + plist XML, NRRD/NIfTI pairs."""

import logging
import plistlib

import numpy as np
import pytest
import SimpleITK as sitk
from calcium_datasets import IDENTITY_CODE_MAP, iter_dataset, read_coca_case, read_labelled_volume
from dicom_series import save_slice
from pydicom.uid import generate_uid

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.volume import LPS_TO_RAS, Volume
from LesionDetectLib.io.volume_io import write_nrrd

SPACING = (0.4, 0.4, 3.0)  # i, j, k in mm, like COCA's 3 mm gated series
ORIGIN_LPS = np.array([-78.5, -203.0, -335.75])
SERIES = "Pro_Gated_CS_3.0_I30f_3_70%"  # a real COCA series folder name


def ct_volume(slices=4, rows=12, columns=10) -> Volume:
    """Soft tissue (40 HU) on an axial LPS grid, with calcium painted by each test."""
    ijk_to_lps = np.diag([*SPACING, 1.0])
    ijk_to_lps[:3, 3] = ORIGIN_LPS
    return Volume(np.full((slices, rows, columns), 40, np.int16), LPS_TO_RAS @ ijk_to_lps, "phantom")


def write_coca_series(volume: Volume, folder) -> None:
    """One file per slice named like COCA's (IM-0001-NNNN.dcm), InstanceNumber 1 at the top slice."""
    folder.mkdir(parents=True)
    slices = len(volume.array)
    series_uid = generate_uid()
    for k, hu in enumerate(volume.array):
        instance = slices - k
        save_slice(
            folder / f"IM-0001-{instance:04d}.dcm",
            hu,
            position_lps=ORIGIN_LPS + [0.0, 0.0, k * SPACING[2]],
            row_lps=(1, 0, 0),
            column_lps=(0, 1, 0),
            pixel_spacing_ij=SPACING[:2],
            slice_thickness=SPACING[2],
            series_uid=series_uid,
            instance=instance,
        )


def roi(name, columns, rows, k, *, with_mm=True) -> dict:
    """An OsiriX ROI (the keys of COCA's XML) outlining pixel columns × rows (inclusive ranges) on slice k."""
    (x0, x1), (y0, y1) = columns, rows
    corners = [(x0 - 0.5, y0 - 0.5), (x1 + 0.5, y0 - 0.5), (x1 + 0.5, y1 + 0.5), (x0 - 0.5, y1 + 0.5)]
    lps = [ORIGIN_LPS + [x * SPACING[0], y * SPACING[1], k * SPACING[2]] for x, y in corners]
    pixels = (x1 - x0 + 1) * (y1 - y0 + 1)
    return {
        "Area": pixels * SPACING[0] * SPACING[1] / 100,
        "Center": "({:.6f}, {:.6f}, {:.6f})".format(*np.mean(lps, axis=0)),
        "Dev": 0.0,
        "IndexInImage": 0,
        "Length": 1.0,
        "Max": 300.0,
        "Mean": 300.0,
        "Min": 300.0,
        "Name": name,
        "NumberOfPoints": len(corners),
        "Point_mm": ["({:.6f}, {:.6f}, {:.6f})".format(*point) for point in lps] if with_mm else [],
        "Point_px": [f"({x:.6f}, {y:.6f})" for x, y in corners],
        "Total": 300.0 * pixels,
        "Type": 20,
    }


def write_coca_xml(path, images: dict[int, list[dict]]) -> None:
    """A calcium_xml/<id>.xml: {"Images": [{"ImageIndex", "NumberOfROIs", "ROIs"}]} as an XML plist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = [{"ImageIndex": index, "NumberOfROIs": len(rois), "ROIs": rois} for index, rois in images.items()]
    path.write_bytes(plistlib.dumps({"Images": entries}, fmt=plistlib.FMT_XML))


@pytest.fixture
def coca_root(tmp_path):
    """Gated_release_final with patient 3: calcium on slices 1 and 2, a rib, and a 100 HU pixel in a ROI."""
    volume = ct_volume()
    volume.array[2, 5:9, 3:5] = 300  # LAD calcium: rows 5–8, columns 3–4
    volume.array[2, 6, 4] = 100  # inside the LAD ROI, below 130 HU
    volume.array[1, 2:4, 6:9] = 450  # RCA calcium
    volume.array[:, 10, :] = 700  # bone outside every ROI
    release = tmp_path / "Gated_release_final"
    write_coca_series(volume, release / "patient" / "3" / SERIES)
    rois = {
        1: [roi("Right Coronary Artery", (6, 8), (2, 3), 1)],
        2: [roi("Left Anterior Descending Artery", (3, 4), (5, 8), 2), roi("Ramus Intermedius", (0, 0), (0, 0), 2)],
    }
    write_coca_xml(release / "calcium_xml" / "3.xml", rois)
    return tmp_path


def test_coca_rois_land_on_their_slices_and_pixels(coca_root, caplog):
    with caplog.at_level(logging.WARNING):
        case = read_coca_case(coca_root, "3")
    expected = np.zeros((4, 12, 10), np.uint8)
    expected[2, 5:9, 3:5] = 2
    expected[2, 6, 4] = 0  # 100 HU: not calcium
    expected[1, 2:4, 6:9] = 4
    np.testing.assert_array_equal(case.labels, expected)
    assert case.case_id == "coca-3" and case.source == "coca"
    assert case.labels.dtype == np.uint8 and case.volume.array.shape == case.labels.shape
    assert case.unknown_roi_names == ("Ramus Intermedius",)  # its pixel (0, 0) is 40 HU, so nothing is labelled
    assert "Ramus Intermedius" in caplog.text


def test_coca_unknown_roi_name_is_labelled_artery_not_given(tmp_path):
    volume = ct_volume()
    volume.array[0, 4:6, 4:6] = 250
    write_coca_series(volume, tmp_path / "patient" / "7" / SERIES)
    write_coca_xml(tmp_path / "calcium_xml" / "7.xml", {0: [roi("Coronary Calcium", (4, 5), (4, 5), 0)]})
    case = read_coca_case(tmp_path, "7")
    assert np.all(case.labels[0, 4:6, 4:6] == 5) and np.count_nonzero(case.labels) == 4
    assert case.unknown_roi_names == ("Coronary Calcium",)


def test_coca_left_coronary_artery_is_left_main(tmp_path):
    volume = ct_volume()
    volume.array[3, 1, 1] = 500
    write_coca_series(volume, tmp_path / "patient" / "1" / SERIES)
    write_coca_xml(tmp_path / "calcium_xml" / "1.xml", {3: [roi("Left Coronary Artery", (1, 1), (1, 1), 3)]})
    assert read_coca_case(tmp_path, "1").labels[3, 1, 1] == 1


def test_coca_point_mm_decides_the_slice_over_image_index(tmp_path, caplog):
    volume = ct_volume()
    volume.array[:, 4, 4] = 300
    write_coca_series(volume, tmp_path / "patient" / "5" / SERIES)
    write_coca_xml(tmp_path / "calcium_xml" / "5.xml", {0: [roi("Left Circumflex Artery", (4, 4), (4, 4), 3)]})
    with caplog.at_level(logging.WARNING):
        labels = read_coca_case(tmp_path, "5").labels
    assert labels[3, 4, 4] == 3 and np.count_nonzero(labels) == 1
    assert "another slice than their ImageIndex" in caplog.text


def test_coca_image_index_is_used_without_point_mm(tmp_path):
    volume = ct_volume()
    volume.array[:, 4, 4] = 300
    write_coca_series(volume, tmp_path / "patient" / "5" / SERIES)
    xml = {1: [roi("Left Circumflex Artery", (4, 4), (4, 4), 3, with_mm=False)]}
    write_coca_xml(tmp_path / "calcium_xml" / "5.xml", xml)
    labels = read_coca_case(tmp_path, "5").labels
    assert labels[1, 4, 4] == 3 and np.count_nonzero(labels) == 1


def test_coca_roi_on_a_missing_slice_is_refused(tmp_path):
    write_coca_series(ct_volume(), tmp_path / "patient" / "5" / SERIES)
    write_coca_xml(
        tmp_path / "calcium_xml" / "5.xml", {4: [roi("Right Coronary Artery", (1, 2), (1, 2), 4, with_mm=False)]}
    )
    with pytest.raises(LesionDetectError, match=r"5\.xml.*image 4.*4 slices"):
        read_coca_case(tmp_path, "5")


def test_coca_roi_off_every_slice_by_position_is_refused(tmp_path):
    write_coca_series(ct_volume(), tmp_path / "patient" / "5" / SERIES)
    write_coca_xml(tmp_path / "calcium_xml" / "5.xml", {1: [roi("Right Coronary Artery", (1, 2), (1, 2), 1.5)]})
    with pytest.raises(LesionDetectError, match=r"5\.xml.*on no slice"):
        read_coca_case(tmp_path, "5")


def test_coca_missing_xml_is_refused_unless_read_as_calcium_free(tmp_path):
    write_coca_series(ct_volume(), tmp_path / "patient" / "9" / SERIES)
    with pytest.raises(LesionDetectError, match=r"calcium_xml/9\.xml"):
        read_coca_case(tmp_path, "9")
    case = read_coca_case(tmp_path, "9", no_xml_means_no_calcium=True)
    assert case.labels.shape == (4, 12, 10) and not case.labels.any()


def test_coca_damaged_xml_is_refused(tmp_path):
    write_coca_series(ct_volume(), tmp_path / "patient" / "2" / SERIES)
    (tmp_path / "calcium_xml").mkdir()
    (tmp_path / "calcium_xml" / "2.xml").write_text("<plist><dict><key>Images</key>")
    with pytest.raises(LesionDetectError, match=r"2\.xml"):
        read_coca_case(tmp_path, "2")


def test_iter_dataset_reads_the_coca_release(coca_root):
    cases = list(iter_dataset(coca_root, "coca"))
    assert [case.case_id for case in cases] == ["coca-3"]
    assert np.count_nonzero(cases[0].labels == 2) == 7


# --- Image + label map ---------------------------------------------------------------------------------


def write_pair(folder, name, *, label_suffix="_label", ext=".nrrd", labels_ijk_to_ras=None):
    """A CT image with calcium and an orCaScore-style label map (1 LAD, 2 LCX, 3 RCA, one below 130 HU)."""
    volume = ct_volume()
    volume.array[1, 2, 2] = 300
    volume.array[2, 3, 3] = 400
    volume.array[3, 4, 4] = 500
    labels = np.zeros(volume.array.shape, np.uint8)
    labels[1, 2, 2], labels[2, 3, 3], labels[3, 4, 4] = 1, 2, 3
    labels[0, 0, 0] = 1  # a 40 HU voxel
    write_image(volume, folder / f"{name}{ext}")
    matrix = volume.ijk_to_ras if labels_ijk_to_ras is None else labels_ijk_to_ras
    write_image(Volume(labels, matrix, "labels"), folder / f"{name}{label_suffix}{ext}")


def write_image(volume: Volume, path) -> None:
    """NRRD through the project's writer, anything else through SimpleITK."""
    if path.suffix == ".nrrd":
        write_nrrd(volume, path)
        return
    ijk_to_lps = LPS_TO_RAS @ volume.ijk_to_ras
    image = sitk.GetImageFromArray(volume.array)
    image.SetSpacing(volume.spacing.tolist())
    image.SetDirection((ijk_to_lps[:3, :3] / volume.spacing).ravel().tolist())
    image.SetOrigin(ijk_to_lps[:3, 3].tolist())
    sitk.WriteImage(image, str(path))


def test_labelled_volume_applies_the_orcascore_code_map(tmp_path):
    write_pair(tmp_path, "case1")
    case = read_labelled_volume(tmp_path / "case1.nrrd", tmp_path / "case1_label.nrrd")
    assert (case.labels[1, 2, 2], case.labels[2, 3, 3], case.labels[3, 4, 4]) == (2, 3, 4)
    assert case.labels[0, 0, 0] == 0 and np.count_nonzero(case.labels) == 3
    assert case.case_id == "case1" and case.source == "labelmap" and case.labels.dtype == np.uint8


def test_labelled_volume_applies_a_given_code_map(tmp_path):
    write_pair(tmp_path, "case1")
    case = read_labelled_volume(tmp_path / "case1.nrrd", tmp_path / "case1_label.nrrd", {1: 6, 2: 8, 3: 9})
    assert (case.labels[1, 2, 2], case.labels[2, 3, 3], case.labels[3, 4, 4]) == (6, 8, 9)


def test_label_value_missing_from_the_code_map_is_refused(tmp_path):
    write_pair(tmp_path, "case1")
    with pytest.raises(LesionDetectError, match=r"case1_label\.nrrd.*\[3\]"):
        read_labelled_volume(tmp_path / "case1.nrrd", tmp_path / "case1_label.nrrd", {1: 2, 2: 3})


def thicker_slices(matrix):
    return matrix @ np.diag([1.0, 1.0, 2.0, 1.0])


def shifted_up(matrix):
    moved = matrix.copy()
    moved[2, 3] += 1.5
    return moved


@pytest.mark.parametrize("change, problem", [(thicker_slices, "spacing"), (shifted_up, "origin")])
def test_label_map_on_another_grid_is_refused(tmp_path, change, problem):
    write_pair(tmp_path, "case1", labels_ijk_to_ras=change(ct_volume().ijk_to_ras))
    with pytest.raises(LesionDetectError, match=rf"case1_label\.nrrd.*case1\.nrrd.*{problem}"):
        read_labelled_volume(tmp_path / "case1.nrrd", tmp_path / "case1_label.nrrd")


def test_label_map_of_another_size_is_refused(tmp_path):
    write_image(ct_volume(), tmp_path / "a.nrrd")
    write_image(Volume(np.zeros((4, 12, 9), np.uint8), ct_volume().ijk_to_ras), tmp_path / "a_label.nrrd")
    with pytest.raises(LesionDetectError, match=r"a_label\.nrrd.*a\.nrrd.*size \(9, 12, 4\) instead of \(10, 12, 4\)"):
        read_labelled_volume(tmp_path / "a.nrrd", tmp_path / "a_label.nrrd")


def test_iter_dataset_pairs_images_with_label_maps(tmp_path):
    write_pair(tmp_path, "case10", label_suffix="-label", ext=".nii.gz")
    write_pair(tmp_path, "case2")
    cases = list(iter_dataset(tmp_path, "labelmap", code_map={1: 2, 2: 3, 3: 4}))
    assert [case.case_id for case in cases] == ["case2", "case10"]
    assert all(np.count_nonzero(case.labels) == 3 for case in cases)


def test_iter_dataset_refuses_an_image_without_label_map(tmp_path):
    write_pair(tmp_path, "case1")
    write_image(ct_volume(), tmp_path / "case2.nrrd")
    with pytest.raises(LesionDetectError, match=r"case2\.nrrd"):
        list(iter_dataset(tmp_path, "labelmap"))


def test_iter_dataset_reads_synthetic_cases(tmp_path):
    for seed in (11, 3):
        folder = tmp_path / f"case_{seed}"
        folder.mkdir()
        volume = ct_volume()
        volume.array[2, 3, 3] = 350
        labels = np.zeros(volume.array.shape, np.uint8)
        labels[2, 3, 3] = 7
        write_nrrd(volume, folder / "image.nrrd")
        write_nrrd(Volume(labels, volume.ijk_to_ras), folder / "labels.nrrd")
    cases = list(iter_dataset(tmp_path, "synthetic"))
    assert [case.case_id for case in cases] == ["case_3", "case_11"]
    assert all(case.source == "synthetic" and case.labels[2, 3, 3] == 7 for case in cases)
    assert set(IDENTITY_CODE_MAP.values()) == set(range(1, 10))


def test_iter_dataset_refuses_an_unknown_layout(tmp_path):
    with pytest.raises(LesionDetectError, match=r"'nnunet'.*coca, labelmap, synthetic"):
        list(iter_dataset(tmp_path, "nnunet"))


def test_coca_brush_outline_gives_the_roi_pixel_count(tmp_path):
    """An outline drawn like OsiriX's brush ROIs in COCA (boundary pixel centres, 0.003922 px insets).

    The released ROI this mimics has Total / Mean = 5 pixels; the reader must label those 5.
    """
    volume = ct_volume(rows=30, columns=40)
    volume.array[1] = 200
    write_coca_series(volume, tmp_path / "patient" / "4" / SERIES)
    outline = [(31.003922, 20.0), (32.0, 20.996078), (32.003922, 21.0), (33.0, 21.996078), (34.0, 21.996078)]
    outline += [(34.996078, 21.0), (34.996078, 20.0), (34.0, 19.003922), (33.0, 19.003922), (32.0, 19.003922)]
    brush = roi("Right Coronary Artery", (0, 0), (0, 0), 1) | {"Point_px": [f"({x:.6f}, {y:.6f})" for x, y in outline]}
    write_coca_xml(tmp_path / "calcium_xml" / "4.xml", {1: [brush]})
    labels = read_coca_case(tmp_path, "4").labels
    assert sorted(zip(*np.nonzero(labels[1]))) == [(20, 32), (20, 33), (20, 34), (21, 33), (21, 34)]

"""The calcium dataset readers on tiny real files: a COCA-style DICOM series + plist XML, NRRD/NIfTI pairs,
and a COCA non-gated layout (nested DICOM without SeriesInstanceUID + a scores.xlsx laid out like the real one)."""

import logging
import plistlib
import zipfile
from xml.sax.saxutils import escape

import numpy as np
import pytest
import SimpleITK as sitk
from calcium_datasets import (
    IDENTITY_CODE_MAP,
    iter_dataset,
    iter_nongated,
    read_coca_case,
    read_labelled_volume,
    read_nongated_case,
    read_nongated_scores,
)
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


# --- COCA non-gated --------------------------------------------------------------------------------------

# The real sheet's layout: header "filename " (sic) | LCA | LAD | LCX | RCA | total, then a row per scan "<n>A".
SCORE_HEADER = ("filename ", "LCA", "LAD", "LCX", "RCA", "total")
SCORE_ROWS = {
    "1A": (0, 0, 0, 0, 0),
    "2A": (132, 1.91, 128, 37.5, 300),
    "3A": (260, 612, 52.4, 119, 1043),  # a patient with no folder in the layout: read only when asked for
}
NONGATED_PIXEL_MM, NONGATED_SLICE_MM = 0.7, 5.0


def write_xlsx(path, rows, *, inline_strings=False, header_row=1) -> None:
    """A one-sheet .xlsx as Excel writes it: text in sharedStrings.xml (or inline), numbers as <v>, cells with r."""
    strings: list[str] = []
    sheet_rows = []
    for number, row in enumerate(rows, start=header_row):
        cells = []
        for column, value in enumerate(row):
            reference = f"{chr(ord('A') + column)}{number}"
            if value is None:
                continue
            if isinstance(value, str) and inline_strings:
                cells.append(f'<c r="{reference}" t="inlineStr"><is><t>{escape(value)}</t></is></c>')
            elif isinstance(value, str):
                strings.append(value)
                cells.append(f'<c r="{reference}" t="s"><v>{len(strings) - 1}</v></c>')
            else:
                cells.append(f'<c r="{reference}"><v>{value!r}</v></c>')
        sheet_rows.append(f'<row r="{number}">{"".join(cells)}</row>')
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    relations = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    package = "http://schemas.openxmlformats.org/package/2006/relationships"
    parts = {
        "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="xml" ContentType="application/xml"/></Types>',
        "_rels/.rels": f'<?xml version="1.0"?><Relationships xmlns="{package}"><Relationship Id="rId1" '
        f'Type="{relations}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<?xml version="1.0"?><workbook xmlns="{main}" xmlns:r="{relations}"><sheets>'
        '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<?xml version="1.0"?><Relationships xmlns="{package}">'
        f'<Relationship Id="rId2" Type="{relations}/sharedStrings" Target="sharedStrings.xml"/>'
        f'<Relationship Id="rId1" Type="{relations}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": f'<?xml version="1.0"?><worksheet xmlns="{main}"><sheetData>'
        f"{''.join(sheet_rows)}</sheetData></worksheet>",
        "xl/sharedStrings.xml": f'<?xml version="1.0"?><sst xmlns="{main}" count="{len(strings)}">'
        + "".join(f'<si><t xml:space="preserve">{escape(text)}</t></si>' for text in strings)
        + "</sst>",
    }
    with zipfile.ZipFile(path, "w") as book:
        for name, text in parts.items():
            book.writestr(name, text)


def score_sheet(rows=SCORE_ROWS, header=SCORE_HEADER, order=range(6)) -> list[tuple]:
    """Header and rows of the sheet, its columns in `order` (indices into the real layout)."""
    return [tuple(line[n] for n in order) for line in [header, *[(name, *values) for name, values in rows.items()]]]


def nongated_volume(slices=4, rows=24, columns=20) -> Volume:
    """A chest-like phantom at the non-gated set's spacing: soft tissue in air, calcium painted by each test."""
    ijk_to_lps = np.diag([NONGATED_PIXEL_MM, NONGATED_PIXEL_MM, NONGATED_SLICE_MM, 1.0])
    ijk_to_lps[:3, 3] = (-7.0, -8.4, -150.0)
    hu = np.full((slices, rows, columns), -1000, np.int16)
    hu[:, 4:20, 3:17] = 40
    return Volume(hu, LPS_TO_RAS @ ijk_to_lps, "phantom")


def write_nongated_patient(volume: Volume, folder) -> None:
    """A patient folder as in COCA non-gated: <n>/<n>/IM-0001-NNNN.dcm, no SeriesInstanceUID, top slice first."""
    folder.mkdir(parents=True)
    ijk_to_lps = LPS_TO_RAS @ volume.ijk_to_ras
    for k, hu in enumerate(volume.array):
        instance = len(volume.array) - k
        save_slice(
            folder / f"IM-0001-{instance:04d}.dcm",
            hu,
            position_lps=ijk_to_lps[:3, 3] + k * ijk_to_lps[:3, 2],
            row_lps=(1, 0, 0),
            column_lps=(0, 1, 0),
            pixel_spacing_ij=(NONGATED_PIXEL_MM, NONGATED_PIXEL_MM),
            slice_thickness=NONGATED_SLICE_MM,
            series_uid=None,
            instance=instance,
        )


def write_nongated_layout(root, volumes: dict[str, Volume], rows=SCORE_ROWS, **sheet) -> None:
    """``root``/<n>/<n>/*.dcm per volume and ``root``/scores.xlsx."""
    root.mkdir(parents=True, exist_ok=True)
    for patient, volume in volumes.items():
        write_nongated_patient(volume, root / patient / patient)
    write_xlsx(root / "scores.xlsx", score_sheet(rows, **sheet))


def two_patients() -> dict[str, Volume]:
    """Patient 1 without calcium; patient 2 with a 300 HU plaque (its own intensity, so the cases differ)."""
    calcified = nongated_volume(slices=5)
    calcified.array[2, 10:13, 8:11] = 300
    return {"1": nongated_volume(), "2": calcified}


@pytest.fixture
def nongated_root(tmp_path):
    root = tmp_path / "mini_dataset" / "deidentified_nongated"
    write_nongated_layout(root, two_patients())
    return root


def test_nongated_cases_carry_their_scan_and_reference_scores(nongated_root):
    cases = list(iter_nongated(nongated_root))
    assert [case.patient_id for case in cases] == ["1", "2"]  # folder 3 has a row but no scan: not a case
    assert [case.case_id for case in cases] == ["nongated-1", "nongated-2"]
    first, second = cases
    assert first.reference.total == 0 and set(first.reference.per_artery.values()) == {0.0}
    assert second.reference.row == "2A" and second.reference.total == 300
    assert second.reference.per_artery == {"LM": 132, "LAD": 1.91, "LCX": 128, "RCA": 37.5}  # LCA is the left main
    assert second.volume.array.shape == (5, 24, 20) and first.volume.array.shape == (4, 24, 20)
    assert second.volume.array[2, 11, 9] == 300 and second.volume.array[0, 11, 9] == 40  # top slice first, k up
    np.testing.assert_allclose(second.volume.spacing, (NONGATED_PIXEL_MM, NONGATED_PIXEL_MM, NONGATED_SLICE_MM))
    assert second.source == "coca-nongated"


def test_nongated_reader_takes_the_parent_folder_and_a_choice_of_patients(nongated_root):
    (case,) = iter_nongated(nongated_root.parent, ["2"])
    assert case.patient_id == "2" and case.reference.total == 300


def test_nongated_columns_are_found_by_header_in_any_order(tmp_path):
    path = tmp_path / "scores.xlsx"
    write_xlsx(path, score_sheet(order=(5, 3, 0, 2, 4, 1)), inline_strings=True, header_row=3)
    scores = read_nongated_scores(path)
    assert scores["3A"] == {"LM": 260, "LAD": 612, "LCX": 52.4, "RCA": 119, "total": 1043}
    assert set(scores) == {"1A", "2A", "3A"}


def test_nongated_patient_without_a_sheet_row_is_refused(tmp_path):
    root = tmp_path / "deidentified_nongated"
    write_nongated_layout(root, {"4": nongated_volume()})
    with pytest.raises(LesionDetectError, match=r"no row '4A' for patient folder 4"):
        list(iter_nongated(root))


def test_nongated_row_with_an_empty_score_is_refused(tmp_path):
    root = tmp_path / "deidentified_nongated"
    write_nongated_layout(root, {"1": nongated_volume()}, rows={"1A": (0, 0, None, 0, 0)})
    with pytest.raises(LesionDetectError, match=r"row '1A' has no number for LCX"):
        read_nongated_case(root, "1")


def test_nongated_sheet_without_an_artery_column_is_refused(tmp_path):
    path = tmp_path / "scores.xlsx"
    write_xlsx(path, score_sheet(order=(0, 1, 2, 4, 5)))  # no LCX
    with pytest.raises(LesionDetectError, match=r"no column for LCX"):
        read_nongated_scores(path)


def test_nongated_layout_problems_are_refused_with_what_is_missing(tmp_path):
    with pytest.raises(LesionDetectError, match="does not exist"):
        list(iter_nongated(tmp_path / "nowhere"))
    (tmp_path / "1").mkdir()
    with pytest.raises(LesionDetectError, match="has no 'scores.xlsx'"):
        list(iter_nongated(tmp_path))
    (tmp_path / "scores.xlsx").write_text("not a workbook")
    with pytest.raises(LesionDetectError, match="not a readable .xlsx"):
        list(iter_nongated(tmp_path))
    write_xlsx(tmp_path / "scores.xlsx", score_sheet())
    with pytest.raises(LesionDetectError, match="holds no files"):
        list(iter_nongated(tmp_path))
    (tmp_path / "1").rmdir()
    with pytest.raises(LesionDetectError, match="no numbered patient folders"):
        list(iter_nongated(tmp_path))

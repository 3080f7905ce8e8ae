"""Microbleed readers on small files written here: VALDO label maps, point lists and slice images with boxes."""

import numpy as np
import pytest
import SimpleITK as sitk
from microbleed_datasets import read_box_list, read_point_list, read_valdo, read_valdo_subject
from scipy.spatial.transform import Rotation

from LesionDetectLib.errors import LesionDetectError

SPACING_IJK = (0.5, 0.6, 2.0)
SHAPE_KJI = (6, 20, 24)
DIRECTIONS_LPS = Rotation.from_euler("zyx", [25, 10, -15], degrees=True).as_matrix()


def oblique_image(array: np.ndarray, spacing=SPACING_IJK) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetDirection(DIRECTIONS_LPS.ravel().tolist())
    image.SetOrigin((10.0, -5.0, 3.0))
    return image


def ras_of(image: sitk.Image, point_ijk) -> np.ndarray:
    """SimpleITK's own physical point (LPS) of a continuous index, as RAS."""
    return np.array(image.TransformContinuousIndexToPhysicalPoint([float(x) for x in point_ijk])) * [-1, -1, 1]


def swi_array() -> np.ndarray:
    return np.random.default_rng(0).uniform(100, 200, SHAPE_KJI).astype(np.float32)


def write_valdo_subject(folder, label: np.ndarray, label_spacing=SPACING_IJK) -> sitk.Image:
    folder.mkdir(parents=True)
    image = oblique_image(swi_array())
    sitk.WriteImage(image, str(folder / f"{folder.name}_space-T2S_desc-masked_T2S.nii.gz"))
    sitk.WriteImage(image, str(folder / f"{folder.name}_space-T2S_desc-masked_T1.nii.gz"))  # not the SWI/T2*
    sitk.WriteImage(oblique_image(label, label_spacing), str(folder / f"{folder.name}_space-T2S_CMB.nii.gz"))
    return image


def two_microbleeds() -> np.ndarray:
    label = np.zeros(SHAPE_KJI, dtype=np.uint8)
    label[2:4, 5:7, 4:7] = 1  # 12 voxels: i 4-6, j 5-6, k 2-3
    label[4, 14, 18] = label[5, 15, 19] = 1  # corners touching: one microbleed with 26-connectivity
    return label


def test_valdo_components_are_the_microbleeds_with_centres_in_ras_and_slice_boxes(tmp_path):
    image = write_valdo_subject(tmp_path / "sub-101", two_microbleeds())

    (scan,) = read_valdo(tmp_path)

    assert scan.source == str(tmp_path / "sub-101")
    assert np.allclose(scan.volume.array, swi_array())
    first, second = scan.microbleeds
    assert (first["id"], first["voxels"], first["slices"]) == (1, 12, [2, 3])
    assert (second["id"], second["voxels"], second["slices"]) == (2, 2, [4, 5])
    np.testing.assert_allclose(first["center_ijk"], [5.0, 5.5, 2.5], atol=1e-9)
    np.testing.assert_allclose(first["center_ras_mm"], ras_of(image, [5.0, 5.5, 2.5]), atol=1e-4)
    np.testing.assert_allclose(second["center_ras_mm"], ras_of(image, [18.5, 14.5, 4.5]), atol=1e-4)
    assert first["diameter_mm"] == pytest.approx((6 * 12 * 0.6 / np.pi) ** (1 / 3))
    assert scan.slice_boxes == [
        {"microbleed": 1, "slice": 2, "box_xyxy": [4, 5, 7, 7]},
        {"microbleed": 1, "slice": 3, "box_xyxy": [4, 5, 7, 7]},
        {"microbleed": 2, "slice": 4, "box_xyxy": [18, 14, 19, 15]},
        {"microbleed": 2, "slice": 5, "box_xyxy": [19, 15, 20, 16]},
    ]


def test_valdo_subject_without_image_or_with_label_off_grid_is_refused(tmp_path):
    write_valdo_subject(tmp_path / "sub-102", two_microbleeds(), label_spacing=(0.5, 0.6, 2.5))
    with pytest.raises(LesionDetectError, match=r"sub-102_space-T2S_CMB.nii.gz' \(24×20×6 voxels of 0.5×0.6×2.5 mm"):
        read_valdo_subject(tmp_path / "sub-102")

    (tmp_path / "sub-102" / "sub-102_space-T2S_desc-masked_T2S.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"sub-102' needs a NIfTI image named \*_T2S or \*_SWI; found none"):
        read_valdo_subject(tmp_path / "sub-102")


def test_point_list_gives_squares_of_the_diameter_on_the_slices_the_sphere_reaches(tmp_path):
    image = oblique_image(swi_array())
    sitk.WriteImage(image, str(tmp_path / "sub-7.nii.gz"))  # a subject's volume file beside the CSV
    write_valdo_subject(tmp_path / "sub-8", np.zeros(SHAPE_KJI, dtype=np.uint8))  # or its VALDO folder
    first, second = ras_of(image, [10, 8, 3]), ras_of(image, [3, 4, 0])
    rows = ["subject,x,y,z,diameter_mm", f"sub-7,{','.join(map(str, first))},3", f"sub-8,{','.join(map(str, second))},"]
    (tmp_path / "points.csv").write_text("\n".join(rows) + "\n")

    sub7, sub8 = read_point_list(tmp_path / "points.csv")

    assert sub7.source == str(tmp_path / "sub-7.nii.gz")
    (point,) = sub7.microbleeds
    np.testing.assert_allclose(point["center_ijk"], [10, 8, 3], atol=1e-4)
    assert (point["diameter_mm"], point["voxels"], point["slices"]) == (3.0, None, [2, 4])
    # radius 1.5 mm: 3 px along i, 2.5 px along j, 0.75 slice along k (the slabs of slices 2 and 4 are reached)
    assert [box["slice"] for box in sub7.slice_boxes] == [2, 3, 4]
    np.testing.assert_allclose(sub7.slice_boxes[0]["box_xyxy"], [7.5, 6.0, 13.5, 11.0], atol=1e-4)
    # the default 5 mm, clipped at the slice's edge and the first slice
    assert sub8.microbleeds[0]["diameter_mm"] == 5.0 and sub8.microbleeds[0]["slices"] == [0, 1]
    np.testing.assert_allclose(sub8.slice_boxes[0]["box_xyxy"], [0.0, 4.5 - 2.5 / 0.6, 8.5, 4.5 + 2.5 / 0.6], atol=1e-4)


def test_point_list_reads_voxel_indices_when_told_and_refuses_points_outside(tmp_path):
    sitk.WriteImage(oblique_image(swi_array()), str(tmp_path / "sub-7.nii.gz"))
    (tmp_path / "points.csv").write_text("subject,x,y,z\nsub-7,10,8,3\n")

    (scan,) = read_point_list(tmp_path / "points.csv", coordinates="ijk")
    assert scan.microbleeds[0]["center_ijk"] == [10.0, 8.0, 3.0] and scan.microbleeds[0]["slices"] == [2, 4]

    with pytest.raises(LesionDetectError, match=r"points.csv' line 2: the point \(10, 8, 3\) lies outside"):
        read_point_list(tmp_path / "points.csv")  # as RAS mm it lies far outside the grid
    (tmp_path / "points.csv").write_text("subject,x,y,z,diameter_mm\nsub-7,10,8,3,0\n")
    with pytest.raises(LesionDetectError, match="line 2: diameter_mm is 0, not positive"):
        read_point_list(tmp_path / "points.csv", coordinates="ijk")
    (tmp_path / "points.csv").write_text("subject,x,y,z\nsub-9,10,8,3\n")
    with pytest.raises(FileNotFoundError, match="one image of subject sub-9"):
        read_point_list(tmp_path / "points.csv")


def test_slice_images_with_a_box_csv_are_single_slice_records(tmp_path):
    grey = np.random.default_rng(1).integers(0, 255, (32, 40), dtype=np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(grey), str(tmp_path / "a.png"))
    sitk.WriteImage(sitk.GetImageFromArray(grey[::-1]), str(tmp_path / "b.png"))
    rows = ["image,x0,y0,x1,y1", "a.png,5,6,9,10", "b.png,,,,", "a.png,20,3,26,8"]
    (tmp_path / "boxes.csv").write_text("\n".join(rows) + "\n")

    a, b = read_box_list(tmp_path / "boxes.csv")

    assert np.array_equal(a.volume.array, grey[None]) and np.array_equal(b.volume.array, grey[::-1][None])
    assert a.slice_boxes == [
        {"microbleed": 1, "slice": 0, "box_xyxy": [5.0, 6.0, 9.0, 10.0]},
        {"microbleed": 2, "slice": 0, "box_xyxy": [20.0, 3.0, 26.0, 8.0]},
    ]
    assert a.microbleeds[0]["center_ijk"] == [6.5, 7.5, 0.0] and a.microbleeds[1]["diameter_mm"] == 6.0
    assert b.microbleeds == [] and b.slice_boxes == []


def test_csv_with_a_missing_column_a_bad_number_or_a_missing_image_is_refused(tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((8, 8), dtype=np.uint8)), str(tmp_path / "a.png"))
    (tmp_path / "boxes.csv").write_text("image,x0,x1,y1\na.png,1,2,3\n")
    with pytest.raises(LesionDetectError, match="boxes.csv' lacks the column.s. y0: it needs image, x0, y0, x1, y1"):
        read_box_list(tmp_path / "boxes.csv")
    (tmp_path / "boxes.csv").write_text("image,x0,y0,x1,y1\na.png,1,2,three,4\n")
    with pytest.raises(LesionDetectError, match="line 2: x1 is 'three', not a number"):
        read_box_list(tmp_path / "boxes.csv")
    (tmp_path / "boxes.csv").write_text("image,x0,y0,x1,y1\nc.png,1,2,3,4\n")
    with pytest.raises(FileNotFoundError, match="c.png' .listed in the box CSV. does not exist"):
        read_box_list(tmp_path / "boxes.csv")
    (tmp_path / "points.csv").write_text("subject,x,y\n")
    with pytest.raises(LesionDetectError, match="points.csv' lacks the column.s. z"):
        read_point_list(tmp_path / "points.csv")

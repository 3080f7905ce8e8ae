"""Per-slice microbleed boxes merged into 3D lesions on an oblique, anisotropic grid."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from LesionDetectLib.detectors.microbleed.merge import linkable, merge_slice_detections
from LesionDetectLib.io.volume import Volume, ijk_to_ras_matrix

SPACING_IJK = (0.5, 0.8, 2.5)
SHAPE_KJI = (16, 64, 64)


def oblique_volume() -> Volume:
    directions = Rotation.from_euler("xyz", [20, -10, 35], degrees=True).as_matrix()
    matrix = ijk_to_ras_matrix(SPACING_IJK, [12.0, -30.0, 41.0], directions)
    return Volume(np.zeros(SHAPE_KJI, dtype=np.float32), matrix, "swi")


def per_slice(**boxes_on_slice) -> list[list]:
    """Per-slice (box, score) lists from keywords k3=[(box, score), ...]."""
    detections = [[] for _ in range(SHAPE_KJI[0])]
    for key, detections_of_slice in boxes_on_slice.items():
        detections[int(key[1:])] = detections_of_slice
    return detections


def test_a_blob_on_two_consecutive_slices_is_one_lesion_with_its_box_centre_and_size():
    volume = oblique_volume()
    detections = per_slice(k3=[([10, 20, 16, 24], 0.9)], k4=[([11, 20, 17, 25], 0.6)])

    (lesion,) = merge_slice_detections(detections, volume)

    assert lesion.slices == (3, 4)
    assert lesion.box_ijk.tolist() == [[10, 20, 3], [16, 24, 4]]
    assert lesion.score == 0.9 and lesion.mean_score == pytest.approx(0.75)
    # box centres as voxel indices (a box edge x is index x - 0.5), weighted by score
    center_ijk = (0.9 * np.array([12.5, 21.5, 3.0]) + 0.6 * np.array([13.5, 22.0, 4.0])) / 1.5
    np.testing.assert_allclose(lesion.center_ras, (volume.ijk_to_ras @ [*center_ijk, 1.0])[:3], atol=1e-9)
    # slice 4's box: 6 px × 0.5 mm along i, 5 px × 0.8 mm along j
    assert lesion.diameter_mm == pytest.approx(4.0)
    assert lesion.extent_mm == pytest.approx(5.0) and lesion.elongation == pytest.approx(1.25)
    assert [detection.slice for detection in lesion.detections] == [3, 4]


def test_detections_that_do_not_overlap_stay_separate_lesions_best_first():
    detections = per_slice(k3=[([10, 20, 16, 24], 0.4)], k4=[([40, 40, 46, 44], 0.8)])

    lesions = merge_slice_detections(detections, oblique_volume())

    assert [(lesion.slices, lesion.score) for lesion in lesions] == [((4, 4), 0.8), ((3, 3), 0.4)]


def test_boxes_link_by_overlap_or_by_centres_within_half_the_larger_side():
    pixel_mm = SPACING_IJK[:2]
    box = [10, 10, 12, 14]  # 1 mm along i, 3.2 mm along j: centres may lie 1.6 mm apart
    assert linkable(box, [12, 10, 14, 14], pixel_mm)  # touching, IoU 0, centres 1 mm apart
    assert linkable(box, [13, 10, 15, 14], pixel_mm)  # 1.5 mm apart
    assert not linkable(box, [14, 10, 16, 14], pixel_mm)  # 2 mm apart
    assert linkable([0, 0, 10, 10], [4, 4, 14, 14], pixel_mm)  # IoU 36 / 164 = 0.22
    assert not linkable([0, 0, 10, 10], [5, 5, 15, 15], pixel_mm)  # IoU 0.14, centres 4.7 mm > 4 mm apart


def test_a_chain_across_many_slices_is_elongated_like_a_vein():
    detections = per_slice(**{f"k{k}": [([20, 20, 23, 23], 0.5 + 0.01 * k)] for k in range(2, 14)})

    (vein,) = merge_slice_detections(detections, oblique_volume())

    assert vein.slices == (2, 13) and vein.score == pytest.approx(0.63)
    assert vein.diameter_mm == pytest.approx(2.4)  # 3 px × 0.8 mm along j
    assert vein.extent_mm == pytest.approx(30.0) and vein.elongation == pytest.approx(12.5)


def test_a_gap_of_one_slice_is_not_bridged():
    detections = per_slice(k2=[([20, 20, 26, 26], 0.7)], k4=[([20, 20, 26, 26], 0.6)])

    lesions = merge_slice_detections(detections, oblique_volume())

    assert [lesion.slices for lesion in lesions] == [(2, 2), (4, 4)]


def test_each_detection_joins_one_lesion_only_the_best_one_and_the_other_is_its_duplicate():
    # both boxes on slice 3 overlap the one on slice 4; it goes with the better, which seeds first; the worse
    # box's own one-slice lesion has its centre inside that lesion's box, so it is dropped as a duplicate
    detections = per_slice(k3=[([10, 10, 16, 16], 0.5), ([14, 10, 20, 16], 0.9)], k4=[([12, 10, 18, 16], 0.7)])

    (lesion,) = merge_slice_detections(detections, oblique_volume())

    assert (lesion.slices, lesion.score) == ((3, 4), 0.9)
    assert lesion.box_ijk.tolist() == [[12, 10, 3], [19, 15, 4]]
    assert [detection.score for detection in lesion.detections] == [0.9, 0.7]


def test_a_box_inside_a_larger_one_is_a_duplicate_but_a_neighbour_is_not():
    big, small = ([20, 20, 30, 30], 0.8), ([22, 22, 25, 25], 0.6)  # IoU 0.09: both survive a slice NMS
    neighbour = ([36, 20, 42, 26], 0.7)  # 3 mm of i beyond the big box
    detections = per_slice(k5=[big, small, neighbour], k6=[([20, 20, 30, 30], 0.5), ([22, 22, 25, 25], 0.55)])

    lesions = merge_slice_detections(detections, oblique_volume())

    assert [(lesion.score, lesion.slices) for lesion in lesions] == [(0.8, (5, 6)), (0.7, (5, 5))]


def test_lesions_sharing_a_third_of_the_smaller_box_are_one():
    # the worse box's centre (i = 26) lies outside the better box (i 20–25), but 1 of its 3 columns is shared
    better = per_slice(k5=[([20, 20, 26, 26], 0.9)], k6=[([20, 20, 26, 26], 0.8)])
    worse = [([25, 20, 28, 26], 0.4)]
    beside = [row + (worse if k == 6 else []) for k, row in enumerate(better)]
    apart = [row + (worse if k == 8 else []) for k, row in enumerate(better)]  # a slice gap: no voxel shared

    assert [lesion.score for lesion in merge_slice_detections(beside, oblique_volume())] == [0.9]
    assert [lesion.score for lesion in merge_slice_detections(apart, oblique_volume())] == [0.9, 0.4]


def test_no_detections_give_no_lesions():
    assert merge_slice_detections([], oblique_volume()) == []
    assert merge_slice_detections(per_slice(), oblique_volume()) == []


def test_malformed_input_is_refused():
    with pytest.raises(ValueError, match="17 slices given"):
        merge_slice_detections([[]] * 17, oblique_volume())
    with pytest.raises(ValueError, match="Slice 2: box"):
        merge_slice_detections(per_slice(k2=[([5, 5, 5, 9], 0.5)]), oblique_volume())
    with pytest.raises(ValueError, match="Slice 1: score"):
        merge_slice_detections(per_slice(k1=[([5, 5, 8, 9], 0.0)]), oblique_volume())

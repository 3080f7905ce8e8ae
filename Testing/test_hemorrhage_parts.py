"""Hemorrhage detector stages: axial layout, key images, Grad-CAM, hot regions, the loss of partly labelled slices."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from LesionDetectLib.detection.hot_regions import hot_regions
from LesionDetectLib.detection.slice_square import SliceSquare, to_slice_pixels
from LesionDetectLib.detectors.hemorrhage.gradcam import label_heatmaps, union
from LesionDetectLib.detectors.hemorrhage.key_image import (
    ASSUMED_HEAD_LENGTH_MM,
    brain_window_only,
    hu_from_brain_window,
    pixel_mm_from_head,
)
from LesionDetectLib.detectors.hemorrhage.labels import LABELS, LOSS_WEIGHTS
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.axial_view import axial_view
from LesionDetectLib.io.volume import Volume
from LesionDetectLib.nets.multilabel_loss import weighted_log_loss

SIZE = 64  # the toy CNN's input
TRAINED_LAYOUT = np.diag([-0.5, -0.5, 2.0, 1.0])  # i → left, j → posterior, k → superior


def _volume(ijk_to_ras, shape=(4, 5, 6)):
    array = np.arange(np.prod(shape), dtype=np.int16).reshape(shape)
    return Volume(array, np.asarray(ijk_to_ras, dtype=float), "v", "CT")


def test_the_trained_layout_is_read_as_it_is():
    view = axial_view(_volume(TRAINED_LAYOUT))
    assert view.flip_axes == () and not view.swap_in_plane


@pytest.mark.parametrize(
    "ijk_to_ras, flips, swap",
    [
        (np.diag([0.5, 0.5, 2.0, 1.0]), (1, 2), False),  # RAS-stored NIfTI: i → right, j → anterior
        (np.diag([-0.5, -0.5, -2.0, 1.0]), (0,), False),  # slices stored top to bottom
        (np.array([[0, -0.5, 0, 0], [-0.5, 0, 0, 0], [0, 0, 2.0, 0], [0, 0, 0, 1]]), (), True),  # i along y
    ],
)
def test_other_layouts_are_flipped_into_the_trained_one_and_back(ijk_to_ras, flips, swap):
    volume = _volume(ijk_to_ras)
    view = axial_view(volume)
    assert view.flip_axes == flips and view.swap_in_plane == swap
    network = view.to_network(volume.array)
    assert np.array_equal(view.from_network(network), volume.array)
    # the voxel at network index (k, j, i) is the input voxel at the box the view maps it to
    k, j, i = 1, 2, 3
    box = view.box_to_input(np.array([[k, j, i], [k, j, i]]), volume.array.shape)
    assert network[k, j, i] == volume.array[tuple(box[0])]
    # and the network layout's axes run the trained way in RAS
    points = volume.ijk_to_ras_points(np.array([box[0][::-1]]))
    step = view.box_to_input(np.array([[k, j, i + 1]] * 2), volume.array.shape)[0]
    assert volume.ijk_to_ras_points(np.array([step[::-1]]))[0, 0] < points[0, 0]  # network i runs to −x (left)


def test_a_sagittal_volume_is_refused():
    sagittal = np.array([[0, 0, 2.0, 0], [0, -0.5, 0, 0], [-0.5, 0, 0, 0], [0, 0, 0, 1]])
    with pytest.raises(LesionDetectError, match="not stored as axial slices"):
        axial_view(_volume(sagittal))


def test_key_image_grey_reads_back_through_the_brain_window():
    grey = np.array([[0, 255], [128, 64]], dtype=np.uint8)
    assert np.allclose(hu_from_brain_window(grey), [[0.0, 80.0], [128 / 255 * 80, 64 / 255 * 80]])
    assert np.array_equal(brain_window_only(np.array([-3024.0, -5.0, 40.0, 1200.0])), [0.0, 0.0, 40.0, 80.0])


def test_key_image_pixel_size_comes_from_the_heads_longer_extent():
    grey = np.zeros((300, 300), dtype=np.uint8)
    grey[20:270, 60:240] = 120  # 250 rows by 180 columns of head
    assert pixel_mm_from_head(grey) == pytest.approx(ASSUMED_HEAD_LENGTH_MM / 250)
    with pytest.raises(LesionDetectError, match="shows no head"):
        pixel_mm_from_head(np.zeros((10, 10), dtype=np.uint8))


def test_loss_leaves_out_unknown_labels():
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.0, 1.0, -2.0]])
    targets = torch.tensor([[1.0, 1.0, 0.0, 1.0, 0.0, 1.0]])
    any_only = torch.zeros_like(targets)
    any_only[0, 0] = 1.0
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[0, 0], targets[0, 0])
    assert weighted_log_loss(logits, targets, LOSS_WEIGHTS, any_only).item() == pytest.approx(expected.item())
    everything = weighted_log_loss(logits, targets, LOSS_WEIGHTS, torch.ones_like(targets))
    assert everything.item() == pytest.approx(weighted_log_loss(logits, targets, LOSS_WEIGHTS).item())


def test_hot_regions_box_each_connected_region_hottest_first():
    heat = np.zeros((3, 20, 20), dtype=np.float32)
    heat[0:2, 2:5, 3:7] = 0.6
    heat[2, 10:15, 12:14] = 1.0
    heat[1, 18, 18] = 0.9  # one voxel: smaller than a region
    regions = hot_regions(heat, 0.5, min_voxels=4)
    assert [region.box.tolist() for region in regions] == [[[2, 10, 12], [2, 14, 13]], [[0, 2, 3], [1, 4, 6]]]
    assert regions[0].peak_heat == 1.0 and hot_regions(np.zeros((2, 3, 3)), 0.5, 4) == []


class _BrightnessCNN(nn.Module):
    """A toy slice CNN whose every label's logit is the image's mean local brightness above 0.5: its evidence is
    exactly where the image is bright. Its trunk's `layer3` is the stage Grad-CAM reads."""

    def __init__(self) -> None:
        super().__init__()
        conv = nn.Conv2d(3, 1, 5, padding=2, bias=True)
        nn.init.constant_(conv.weight, 1.0 / 75)  # mean of the three channels over 5 × 5
        nn.init.constant_(conv.bias, -0.5)
        self.trunk = nn.Sequential(OrderedDict(layer3=nn.Sequential(conv, nn.ReLU())))
        self.head = nn.Linear(1, len(LABELS))
        nn.init.constant_(self.head.weight, 1000.0)
        nn.init.constant_(self.head.bias, -2.0)

    def forward(self, slices):
        features = self.trunk(slices).mean(dim=(2, 3))
        return features, self.head(features)


def _image_with_blob(size: int, centre) -> torch.Tensor:
    image = torch.full((3, size, size), 0.2)
    row, col = centre
    image[:, row - 4 : row + 4, col - 4 : col + 4] = 1.0
    return image


def test_gradcam_peaks_on_a_planted_bright_blob_and_keeps_the_inputs_geometry():
    network = nn.Module()
    network.cnn = _BrightnessCNN().eval()
    centres = [(20, 40), (45, 15), None]
    images = torch.stack([_image_with_blob(SIZE, c) if c else torch.full((3, SIZE, SIZE), 0.2) for c in centres])
    with torch.no_grad():
        probabilities = network.cnn(images)[1].sigmoid().numpy()
    assert (probabilities[:2] >= 0.5).all() and (probabilities[2] < 0.5).all()
    maps = label_heatmaps(network, images, probabilities, ["subdural"], 0.5, "cnn.trunk.layer3")
    heat = maps["subdural"]
    assert heat.shape == (3, SIZE, SIZE) and not heat[2].any()  # a slice below the threshold gets no map
    for n, (row, col) in enumerate(centres[:2]):
        peak = np.unravel_index(heat[n].argmax(), heat[n].shape)
        assert abs(peak[0] - row) <= 4 and abs(peak[1] - col) <= 4  # on the blob, not off it (nor coldest there)
        assert heat[n].max() == pytest.approx(probabilities[n, LABELS.index("subdural")], rel=1e-4)
    # onto slice pixels: the square, twice its size, placed at rows 10…, columns 20… of 200 × 220 slices
    on_slices = to_slice_pixels(torch.from_numpy(heat), SliceSquare(10.0, 20.0, 2.0 * SIZE), (200, 220))
    assert on_slices.shape == (3, 200, 220)
    peak = np.unravel_index(on_slices[0].argmax(), (200, 220))
    assert abs(peak[0] - 10 - 2 * 20) <= 8 and abs(peak[1] - 20 - 2 * 40) <= 8
    combined, which = union({"a": heat, "b": heat * 0.5})
    assert np.array_equal(combined, heat) and not which.any()


def test_the_intracranial_space_is_what_the_skull_encloses_with_bright_spots_inside_kept():
    from LesionDetectLib.detectors.hemorrhage.anatomy import intracranial

    rows, cols = np.indices((80, 80))
    radius = np.hypot(rows - 40, cols - 40)
    closed = np.where(radius < 30, 30.0, -1000.0)
    closed[(radius >= 30) & (radius < 34)] = 1200.0  # the skull
    closed[38:42, 38:42] = 700.0  # a calcification inside, brighter than the bone threshold
    opened = closed.copy()
    opened[(radius >= 30) & (cols > 60)] = 30.0  # the ring open (skull base): no enclosed space
    inside = intracranial(np.stack([closed, opened]))
    assert inside[0, 40, 40] and inside[0, 40, 15] and not inside[0, 40, 8] and not inside[0, 40, 72]
    assert inside[1, 40, 15] and inside[1, 40, 75]  # open ring: the whole head's soft tissue


def test_blood_density_weight_keeps_acute_blood_and_drops_brain_csf_and_calcification():
    from LesionDetectLib.detectors.hemorrhage.anatomy import blood_density_weight

    patches = np.zeros((1, 40, 160), dtype=np.float32)
    for n, hu in enumerate((8.0, 25.0, 40.0, 70.0, 300.0)):  # CSF, white matter, grey matter, blood, calcification
        patches[0, :, 32 * n : 32 * (n + 1)] = hu
    weight = blood_density_weight(patches, pixel_mm=0.5)[0, 20, 16::32]
    assert weight == pytest.approx([0.0, 0.0, 0.4, 1.0, 0.0], abs=1e-4)


def test_the_density_weighted_heatmap_points_at_the_dense_voxels_within_a_gradcam_cell():
    from LesionDetectLib.detectors.hemorrhage.detect import scan_heatmap

    network = nn.Module()
    network.cnn = _BrightnessCNN().eval()
    network.cnn.cam_layer = "trunk.layer3"
    inputs = _image_with_blob(SIZE, (32, 32))[None]  # the network's evidence: a blob at the square's centre
    with torch.no_grad():
        probabilities = network.cnn(inputs)[1].sigmoid().numpy()
    radius = np.hypot(*(np.indices((SIZE, SIZE)) - 32))
    hu = np.where(radius < 26, 35.0, -1000.0)  # brain at grey-matter density inside a skull ring
    hu[(radius >= 26) & (radius < 30)] = 1000.0
    hu[34:36, 30:34] = 70.0  # blood at the blob's lower edge, where Grad-CAM is lower than at its centre
    frame = SliceSquare(0.0, 0.0, float(SIZE))  # the square is the slice
    arguments = (network, inputs, probabilities, ["subdural"], 0.5, frame, hu[None])
    gated, hottest = scan_heatmap(*arguments)
    plain, _ = scan_heatmap(*arguments, density_gate=False)
    assert hottest.labels == ["subdural"] and gated.shape == (1, SIZE, SIZE)
    assert np.unravel_index(plain[0].argmax(), (SIZE, SIZE)) not in {
        (r, c) for r in range(34, 36) for c in range(30, 34)
    }
    row, col = np.unravel_index(gated[0].argmax(), (SIZE, SIZE))
    assert 34 <= row < 36 and 30 <= col < 34
    assert not gated[0][radius >= 26].any()  # nothing outside the skull


def test_gradcam_leaves_no_hooks_on_the_network_and_repeats_identically():
    network = nn.Module()
    network.cnn = _BrightnessCNN().eval()
    layer = network.cnn.trunk.layer3
    images = torch.stack([_image_with_blob(SIZE, (20, 40))])
    with torch.no_grad():
        probabilities = network.cnn(images)[1].sigmoid().numpy()
    first = label_heatmaps(network, images, probabilities, ["subdural", "epidural"], 0.5, "cnn.trunk.layer3")
    assert not layer._forward_hooks and not layer._backward_hooks  # MONAI keeps no handles; grad_cam removes them
    again = label_heatmaps(network, images, probabilities, ["subdural", "epidural"], 0.5, "cnn.trunk.layer3")
    assert all(np.array_equal(first[label], again[label]) for label in first)

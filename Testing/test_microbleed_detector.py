"""The microbleed detector's parts and its path from slices to 3D lesions in RAS, on phantoms with known answers.

`DarkSpotNet` has the SSD's interface (anchors, config, logits and deltas): it scores the smallest default boxes
by how dark the slice is at their centres, so it finds exactly the dark spots; with it the slice → network square
→ input pixels → 3D merge → RAS chain is checked on volumes stored in different orientations. The shipped model is
tested on the bundled sample in test_microbleed_shipped.py.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from LesionDetectLib.detection.findings import Findings, Lesion
from LesionDetectLib.detection.registry import get_detector
from LesionDetectLib.detectors.microbleed.checks import check_swi
from LesionDetectLib.detectors.microbleed.detect import detect_microbleeds, split_at
from LesionDetectLib.detectors.microbleed.location import (
    location_from_parcellation,
    location_from_position,
)
from LesionDetectLib.detectors.microbleed.model import MicrobleedModel, score_threshold
from LesionDetectLib.detectors.microbleed.options import MicrobleedOptions
from LesionDetectLib.detectors.microbleed.preprocess import depth_channels, network_slices
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.axial_view import axial_view
from LesionDetectLib.io.volume import Volume, ijk_to_ras_matrix

SIZE = 192  # the toy network's input side: 1.25 mm pixels over the 240-mm square
POINTS = [{"sensitivity": 0.5, "score": 0.9}, {"sensitivity": 0.9, "score": 0.5}, {"sensitivity": 0.99, "score": 0.1}]


class DarkSpotNet(nn.Module):
    """A box of 4 px on every pixel; its foreground logit is high at a local minimum of the middle channel that is
    dark (< 0.15) and darker than its 14-mm surroundings by more than 0.3: the dark spots of `phantom`."""

    def __init__(self, size: int = SIZE) -> None:
        super().__init__()
        self.config = SimpleNamespace(image_size=size, feature_enhancement=False)
        rows, cols = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
        centres = torch.stack([rows.flatten(), cols.flatten()], dim=1)
        self.register_buffer("anchors", torch.cat([centres - 2, centres + 2], dim=1))

    def forward(self, images):
        middle = images[:, 1]
        surroundings = nn.functional.avg_pool2d(middle[:, None], 11, 1, 5, count_include_pad=False)[:, 0]
        is_minimum = middle == -nn.functional.max_pool2d(-middle[:, None], 7, 1, 3)[:, 0]
        evidence = torch.minimum(surroundings - middle - 0.3, 0.15 - middle)
        foreground = torch.where(is_minimum, 40 * evidence, torch.full_like(middle, -30.0)).flatten(1)
        logits = torch.stack([torch.zeros_like(foreground), foreground], dim=-1)
        return logits, torch.zeros(*foreground.shape, 4)


def toy_model(**card) -> MicrobleedModel:
    manifest = {"version": "toy", "operating_points": POINTS, **card}
    return MicrobleedModel(DarkSpotNet().eval(), SIZE, manifest, "0" * 64)


def phantom(spots_ras, spacing=(0.9, 0.9, 2.0), shape_kji=(40, 200, 200), flip_i=False) -> Volume:
    """An ellipsoidal head of uniform tissue with a little noise and dark spheres (radius 3 mm) at RAS points;
    i runs to the patient's left, j to posterior, k upwards, like a DICOM axial series; with flip_i the same
    voxels are stored with i running to the right."""
    directions = np.diag([-1.0, -1.0, 1.0])
    extent = (np.array(shape_kji[::-1]) - 1) * spacing
    origin = -directions @ (extent / 2)
    ijk_to_ras = ijk_to_ras_matrix(spacing, origin, directions)
    k, j, i = np.indices(shape_kji)
    ras = np.stack([i, j, k], axis=-1).reshape(-1, 3) @ ijk_to_ras[:3, :3].T + ijk_to_ras[:3, 3]
    ras = ras.reshape(*shape_kji, 3)
    array = np.where(_in_ellipsoid(ras, (0, 0, 0), (70, 85, 60)), 100.0, 2.0)
    array[_in_ellipsoid(ras, (0, 30, 0), (20, 15, 1e3))] = 20.0  # a dark column through every slice and a bright
    array[_in_ellipsoid(ras, (0, -25, 20), (15, 20, 12))] = 200.0  # ventricle: normalised, tissue is about 0.44
    array += np.random.default_rng(0).normal(0, 2, shape_kji)
    for spot in spots_ras:
        distance = np.linalg.norm(ras - spot, axis=-1)
        array[distance <= 3.0] = 25.0 + 75.0 * (distance[distance <= 3.0] / 3.0) ** 2  # darkest at the centre
    volume = Volume(np.abs(array).astype(np.float32), ijk_to_ras, name="phantom", modality="MR")
    return stored_right_to_left(volume) if flip_i else volume


def _in_ellipsoid(ras, centre, axes) -> np.ndarray:
    return (((ras - centre) / axes) ** 2).sum(axis=-1) <= 1


def stored_right_to_left(volume: Volume) -> Volume:
    """The same voxels in the same places, with the array's i axis reversed."""
    ijk_to_ras = volume.ijk_to_ras.copy()
    ijk_to_ras[:3, 3] = volume.ijk_to_ras_points([[volume.array.shape[2] - 1, 0, 0]])[0]
    ijk_to_ras[:3, 0] *= -1
    return dataclasses.replace(volume, array=np.ascontiguousarray(volume.array[:, :, ::-1]), ijk_to_ras=ijk_to_ras)


def test_depth_channels_are_the_tissue_two_mm_below_at_and_above():
    stack = np.arange(5, dtype=np.float32)[:, None, None] * np.ones((5, 2, 2), np.float32)
    channels = depth_channels(stack, slice_mm=4.0, offset_mm=2.0)  # half a slice each way
    assert channels.shape == (5, 3, 2, 2)
    np.testing.assert_allclose(
        channels[:, :, 0, 0], [[0, 0, 0.5], [0.5, 1, 1.5], [1.5, 2, 2.5], [2.5, 3, 3.5], [3.5, 4, 4]]
    )


@pytest.mark.parametrize("swap", [False, True])
def test_a_network_layout_box_maps_back_onto_the_same_input_pixels(swap):
    directions = np.diag([1.0, 1.0, -1.0])  # i to the right, j anterior, k downwards: every axis flipped
    if swap:
        directions = directions[:, [1, 0, 2]]
    volume = Volume(np.zeros((4, 30, 50), np.float32), ijk_to_ras_matrix((1, 1, 1), (0, 0, 0), directions))
    view = axial_view(volume)
    mask = np.zeros((4, 30, 50), bool)
    mask[1, 5:9, 20:31] = True  # rows 5–8, columns 20–30 of input slice 1
    rows, cols = np.nonzero(view.to_network(mask)[view.slice_order(4).tolist().index(1)])
    network_box = [rows.min(), cols.min(), rows.max() + 1, cols.max() + 1]
    np.testing.assert_array_equal(view.pixel_box_to_input(network_box, (30, 50)), [5, 20, 9, 31])


def test_network_slices_are_the_same_however_the_volume_is_stored():
    spots = [[10.0, -20.0, 5.0]]
    plain, flipped = phantom(spots), phantom(spots, flip_i=True)
    first = network_slices(plain, SIZE, bias_correction=False).slices
    second = network_slices(flipped, SIZE, bias_correction=False).slices
    assert first.shape == (40, 3, SIZE, SIZE)
    assert torch.allclose(first, second, atol=1e-5)


@pytest.mark.parametrize("flip_i", [False, True])
def test_dark_spots_come_back_as_microbleeds_at_their_ras_centres(flip_i):
    spots = np.array([[12.0, -20.0, 6.0], [-30.0, 25.0, -10.0]])
    volume = phantom(spots, flip_i=flip_i)
    findings = detect_microbleeds(volume, toy_model(), MicrobleedOptions(bias_correction=False))
    assert findings.summary["count"] == len(findings.lesions) == 2, [lesion.center_ras for lesion in findings.lesions]
    found = np.array(sorted((lesion.center_ras for lesion in findings.lesions), key=lambda c: -c[0]))
    assert np.abs(found - spots).max() < 1.5, found  # within about a network pixel (1.25 mm) of the true centres
    for lesion in findings.lesions:
        assert lesion.measurements["location"] in ("lobar", "deep") and 2.0 <= lesion.measurements["diameter_mm"] < 9
        assert volume.ijk_to_ras_points(np.asarray(lesion.box_ijk, float).mean(axis=0)[None])[0] == pytest.approx(
            lesion.center_ras, abs=3.0
        )
    assert findings.summary["location_source"] == "position guess"
    assert findings.summary["operating_point"] == {"sensitivity": 0.9, "score_threshold": 0.5}
    assert findings.warnings == []


def test_the_model_cards_caution_is_a_warning_of_every_run():
    volume = phantom([[12.0, -20.0, 6.0]])
    model = toy_model(caution="trained on synthetic SWI only.")
    findings = detect_microbleeds(volume, model, MicrobleedOptions(bias_correction=False))
    assert findings.warnings == ["Model toy: trained on synthetic SWI only."]


def test_operating_points_split_candidates_and_refiltering_moves_them_without_a_rerun():
    volume = phantom([])
    lesions = [
        Lesion.from_box(volume, n, "microbleed", [[0, 0, 0], [1, 1, 1]], score=s)
        for n, s in ((1, 0.8), (2, 0.3), (3, 0.05))
    ]
    for lesion in lesions:
        lesion.measurements = {"location": "lobar", "diameter_mm": 3.0, "slice_range": [0, 1], "elongation": 1.0}
    assert score_threshold(POINTS, 0.7) == pytest.approx(0.7)  # halfway between the 0.5 and 0.9 points
    kept, below, point = split_at(lesions, POINTS, 0.9)
    assert [lesion.id for lesion in kept] == [1] and [lesion.id for lesion in below] == [2, 3]
    detector = get_detector("microbleed")
    findings = Findings(
        "microbleed",
        "deep",
        volume,
        kept,
        {"operating_points": POINTS, "location_source": "position guess"},
        candidates=below,
    )
    more = detector.refiltered(findings, MicrobleedOptions(sensitivity=0.99))
    assert [lesion.id for lesion in more.lesions] == [1, 2] and [lesion.id for lesion in more.candidates] == [3]
    assert more.summary["count"] == 2 and more.summary["operating_point"]["sensitivity"] == 0.99
    assert detector.summary_line(more) == "2 microbleeds (2 lobar, 0 deep) at 99 % sensitivity"
    read_back = dataclasses.replace(findings, candidates=None)  # a result folder written before candidates were kept
    fewer = detector.refiltered(read_back, MicrobleedOptions(sensitivity=0.9))
    assert [lesion.id for lesion in fewer.lesions] == [1] and fewer.candidates == []


def test_parcellation_labels_give_lobar_deep_or_unknown_and_the_nearest_label_counts():
    labels = np.zeros((10, 10, 10), np.int32)
    labels[:, :, :5] = 3  # left cerebral cortex
    labels[:, :, 5:] = 11  # left caudate
    labels[:, :, 7] = 4  # a lateral ventricle column: no meaning, the nearest label decides
    spacing = (1.0, 1.0, 1.0)
    assert location_from_parcellation(labels, (5, 5, 2), spacing) == "lobar"
    assert location_from_parcellation(labels, (5, 5, 8), spacing) == "deep"
    assert location_from_parcellation(labels, (5, 5, 7), spacing) == "deep"
    assert location_from_parcellation(np.full((10, 10, 10), 24), (5, 5, 5), spacing) == "unknown"  # CSF only
    depth = np.zeros((5, 5, 5))
    depth[2, 2, 2] = 45.0
    assert location_from_position(depth, (2, 2, 2)) == "deep" and location_from_position(depth, (0, 0, 0)) == "lobar"


def test_a_parcellation_option_is_used_and_said_so():
    spots = np.array([[12.0, -20.0, 6.0]])
    volume = phantom(spots)
    parcellation = np.full(volume.array.shape, 10, np.int32)  # thalamus everywhere
    findings = detect_microbleeds(
        volume, toy_model(), MicrobleedOptions(bias_correction=False, parcellation=parcellation)
    )
    assert findings.summary["location_source"] == "parcellation" and findings.summary["deep"] == 1


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda v: dataclasses.replace(v, array=v.array * 20 - 1024), "like CT in Hounsfield units"),
        (lambda v: dataclasses.replace(v, array=(v.array / v.array.max() - 0.5) * 6), "like a phase image"),
        (lambda v: dataclasses.replace(v, array=v.array[:4]), "needs at least 8 slices"),
    ],
)
def test_input_that_is_not_an_swi_magnitude_is_refused_by_name(make, words):
    with pytest.raises(LesionDetectError, match=words):
        check_swi(make(phantom([])))


def test_a_single_slice_is_refused_as_not_3d():
    volume = phantom([])
    single = dataclasses.replace(volume, array=volume.array[:1])
    with pytest.raises(LesionDetectError, match="not a 3D volume"):
        get_detector("microbleed").check(single, MicrobleedOptions())

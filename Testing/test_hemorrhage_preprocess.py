"""Hemorrhage input: the three HU windows, the head's square in mm, and maps back onto the slice pixels."""

import numpy as np
import pytest
from synthetic_head_ct import make_head_case

from LesionDetectLib.detection.slice_square import to_slice_pixels
from LesionDetectLib.detectors.hemorrhage.preprocess import INPUT_FOV_MM, head_frame, network_input
from LesionDetectLib.detectors.hemorrhage.windows import window_channels


def test_windows_map_their_level_to_the_middle_and_their_edges_to_0_and_1():
    hu = np.array([[-3024.0, -2000.0, -1000.0, 0.0, 40.0, 80.0, -150.0, 230.0, 1000.0]])
    brain, subdural, soft = window_channels(hu)
    np.testing.assert_allclose(brain[0], [0, 0, 0, 0, 0.5, 1, 0, 1, 1])
    np.testing.assert_allclose(subdural[0], [0, 0, 0, 0.1, 0.3, 0.5, 0, 1, 1])
    np.testing.assert_allclose(soft[0], np.clip((hu[0].clip(-1000) + 150) / 380, 0, 1), rtol=1e-6)
    assert soft[0, 6] == 0 and soft[0, 7] == 1  # L 40 / W 380 spans −150 … 230 HU


def test_windows_stack_as_channels_of_every_slice():
    volume = np.random.default_rng(0).uniform(-1100, 200, size=(5, 7, 9))
    channels = window_channels(volume)
    assert channels.shape == (5, 3, 7, 9) and channels.dtype == np.float32
    np.testing.assert_array_equal(channels[2], window_channels(volume[2]))


def test_the_frame_is_a_fixed_square_in_mm_centred_on_the_head():
    hu = np.full((3, 200, 300), -3024.0)
    hu[:, 50:150, 150:250] = 40.0  # a head right of centre
    frame = head_frame(hu, pixel_mm=0.5)
    assert frame.side_px == pytest.approx(INPUT_FOV_MM / 0.5)
    assert (frame.j0 + frame.side_px / 2, frame.i0 + frame.side_px / 2) == (100.0, 200.0)


def test_the_same_head_at_two_pixel_sizes_gives_the_same_network_input():
    inputs = []
    for matrix in (192, 320):
        case = make_head_case(5, matrix=matrix, slice_thickness_mm=5.0, fov_mm=230.0)
        volume = case.volume
        inputs.append(network_input(volume.array, head_frame(volume.array, float(volume.spacing[0])), 96))
    assert inputs[0].shape == inputs[1].shape == (inputs[0].shape[0], 3, 96, 96)
    assert (inputs[0] - inputs[1]).abs().mean() < 0.02


def test_a_map_goes_back_onto_the_slice_pixels_where_it_came_from():
    hu = np.full((2, 180, 240), -1000.0)
    hu[:, 20:170, 30:200] = 30.0
    hu[1, 60:70, 140:150] = 80.0  # a bright spot: 1 in the brain window
    frame = head_frame(hu, pixel_mm=1.2)
    brain = network_input(hu, frame, 64)[:, 0]
    back = to_slice_pixels(brain, frame, hu.shape[1:])
    assert back.shape == hu.shape
    row, col = np.unravel_index(np.argmax(back[1] - back[0]), back.shape[1:])
    assert abs(row - 64.5) <= 2 and abs(col - 144.5) <= 2
    assert frame.i0 == pytest.approx(15.0) and (back[:, :, :15] == 0).all()  # outside the square: nothing

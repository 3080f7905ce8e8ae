"""Candidate crops: geometry of the resampling, the position channels, and box mapping both ways."""

import numpy as np
import pytest
import torch

from LesionDetectLib.detectors.calcium.crops import (
    CROP_PX,
    HU_HIGH,
    HU_LOW,
    HeartFrame,
    Window,
    heart_frame,
    make_crops,
    neighbour_offset,
    to_crop_pixels,
    to_slice_pixels,
)


def air_volume(slices=5, size=100):
    return np.full((slices, size, size), -1000, dtype=np.int16)


def test_a_bright_square_lands_where_the_window_maps_it():
    hu = air_volume()
    hu[2, 40:44, 60:64] = 1700  # rows 40–43, columns 60–63 on the middle slice
    window = Window(k=2, center_ji=(42.0, 62.0), side_px=32.0)  # 2 crop pixels per slice pixel
    crop = make_crops(hu, [window], slice_spacing_mm=3.0, heart=HeartFrame((50.0, 50.0), 25.0))[0]
    expected = to_crop_pixels(np.array([40, 60, 44, 64]), window)
    np.testing.assert_allclose(expected, [28, 28, 36, 36])
    rows, cols = np.nonzero(crop[1].numpy() > 0.0)
    assert rows.min() >= 27 and rows.max() <= 36 and cols.min() >= 27 and cols.max() <= 36
    assert (crop[1, 29:35, 29:35] > 0.99).all()
    assert float(crop[1, 5, 5]) == pytest.approx(0.0)  # air clips to the window's low end
    assert float(crop[0].max()) == pytest.approx(0.0) and float(crop[2].max()) == pytest.approx(0.0)  # neighbours: air


def test_neighbour_channels_take_slices_about_1p5_mm_away():
    assert neighbour_offset(3.0) == 1 and neighbour_offset(0.5) == 3 and neighbour_offset(1.0) == 2
    hu = air_volume(slices=9)
    hu[1, 50, 50] = hu[7, 50, 50] = 1700
    crop = make_crops(hu, [Window(4, (50.5, 50.5), 8.0)], slice_spacing_mm=0.5, heart=HeartFrame((50, 50), 20))[0]
    assert float(crop[0].max()) > 0.8 and float(crop[2].max()) > 0.8 and float(crop[1].max()) == 0.0


def test_intensity_scaling_and_outside_the_volume():
    hu = np.full((3, 20, 20), 700, dtype=np.int16)
    crop = make_crops(hu, [Window(1, (0.0, 0.0), 20.0)], slice_spacing_mm=3.0, heart=HeartFrame((10, 10), 10))[0]
    inside = (700 - HU_LOW) / (HU_HIGH - HU_LOW)
    assert float(crop[1, -1, -1]) == pytest.approx(inside, abs=1e-6)
    assert float(crop[1, 0, 0]) == pytest.approx(0.0)  # outside the volume: zeros


def test_position_channels_count_heart_radii_from_its_centre():
    window = Window(0, (60.0, 30.0), 16.0)
    crop = make_crops(air_volume(), [window], 3.0, HeartFrame((50.0, 50.0), 20.0))[0]
    centre_row, centre_col = float(crop[3, 32, 32]), float(crop[4, 32, 32])
    assert centre_row == pytest.approx((60.0 + 0.125 - 0.5 - 50.0) / 20.0, abs=1e-4)
    assert centre_col == pytest.approx((30.0 + 0.125 - 0.5 - 50.0) / 20.0, abs=1e-4)
    assert torch.all(crop[3, 1:] > crop[3, :-1]) and torch.all(crop[4, :, 1:] > crop[4, :, :-1])


def test_boxes_map_between_slice_and_crop_pixels():
    window = Window(3, (100.0, 80.0), 48.0)
    boxes = np.array([[90.0, 70.0, 95.0, 81.0], [76.0, 56.0, 124.0, 104.0]])
    crop_boxes = to_crop_pixels(boxes, window)
    np.testing.assert_allclose(crop_boxes[1], [0, 0, CROP_PX, CROP_PX])
    np.testing.assert_allclose(to_slice_pixels(crop_boxes, window), boxes)


def test_heart_frame_of_a_disc():
    mask = np.zeros((4, 100, 100), dtype=bool)
    rows, cols = np.ogrid[:100, :100]
    mask[1:3] = (rows - 40) ** 2 + (cols - 60) ** 2 <= 20**2
    frame = heart_frame(mask)
    np.testing.assert_allclose(frame.center_ji, (40, 60), atol=0.01)
    assert frame.radius_px == pytest.approx(20, rel=0.02)

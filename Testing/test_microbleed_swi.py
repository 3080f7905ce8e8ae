"""SWI from GRE magnitude and phase on a phantom with known phase; multi-echo refusal; N4 and normalisation."""

import time

import numpy as np
import pytest
import SimpleITK as sitk

from LesionDetectLib.detectors.microbleed.intensity import head_mask, n4_bias_corrected, normalized_intensity
from LesionDetectLib.detectors.microbleed.swi import homodyne_phase, negative_phase_mask, phase_radians, swi
from LesionDetectLib.errors import LesionDetectError

SPACING_IJK = (0.25, 0.25, 1.0)
SHAPE_KJI = (5, 160, 160)
SHIFT = -np.pi / 2  # inside the sphere: mask ((pi - pi/2)/pi)^4 = 1/16
MAGNITUDE = 100.0


@pytest.fixture(autouse=True)
def one_itk_thread():
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    yield
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def gre_phantom():
    """Uniform magnitude; wrapped phase = a background ramp (1.5 turns along i, 0.5 along j, 0.2 per slice) plus
    SHIFT in a sphere of radius 0.6 mm at the centre of slice 2. Returns magnitude, phase, sphere, background."""
    k, j, i = np.indices(SHAPE_KJI, dtype=np.float32)
    ramp = 2 * np.pi * (1.5 * i / 160 + 0.5 * j / 160 + 0.2 * k)
    sphere = ((i - 80) * 0.25) ** 2 + ((j - 80) * 0.25) ** 2 + (k - 2) ** 2 <= 0.6**2
    phase = np.angle(np.exp(1j * (ramp + SHIFT * sphere))).astype(np.float32)
    # Away from the border (3 sigma of the 3-mm low-pass) and from the sphere's own low-pass halo.
    interior = np.zeros(SHAPE_KJI, dtype=bool)
    interior[:, 36:-36, 36:-36] = True
    background = interior & ((i - 80) ** 2 + (j - 80) ** 2 > 24**2)
    return np.full(SHAPE_KJI, MAGNITUDE, dtype=np.float32), phase, sphere, background


def test_negative_phase_mask_on_hand_values():
    phase = np.array([-np.pi, -np.pi / 2, -np.pi / 4, 0.0, 0.3, np.pi - 1e-6])
    expected = [0.0, 1 / 16, 81 / 256, 1.0, 1.0, 1.0]
    np.testing.assert_allclose(negative_phase_mask(phase), expected, atol=1e-6)


def test_raw_phase_is_scaled_to_radians():
    np.testing.assert_allclose(
        phase_radians([0, 1024, 2048, 4096], raw_range=(0, 4096)), [-np.pi, -np.pi / 2, 0, -np.pi]
    )
    np.testing.assert_allclose(phase_radians([-4096, 0, 2048], raw_range=(-4096, 4096)), [-np.pi, 0, np.pi / 2])
    with pytest.raises(LesionDetectError, match="not in radians"):
        phase_radians([0, 2048, 4095])


def test_homodyne_filter_removes_the_wrapped_background_ramp():
    magnitude, phase, sphere, background = gre_phantom()
    assert np.ptp(phase[background]) > 6  # the raw background phase wraps
    filtered = homodyne_phase(magnitude, phase, SPACING_IJK)
    assert np.abs(filtered[background]).max() < 0.03
    assert filtered[sphere] == pytest.approx(SHIFT, abs=0.05)


def test_swi_darkens_the_sphere_by_the_phase_mask_factor():
    magnitude, phase, sphere, background = gre_phantom()
    image = swi(magnitude, phase, SPACING_IJK)
    assert image.dtype == np.float32 and image.shape == SHAPE_KJI
    assert image[background] == pytest.approx(MAGNITUDE, rel=0.01)
    assert image[sphere] / MAGNITUDE == pytest.approx(1 / 16, rel=0.15)


def test_left_handed_phase_is_negated():
    magnitude, phase, sphere, _ = gre_phantom()
    right = swi(magnitude, phase, SPACING_IJK)
    np.testing.assert_allclose(swi(magnitude, -phase, SPACING_IJK, left_handed=True), right, rtol=1e-5)
    assert swi(magnitude, -phase, SPACING_IJK)[sphere].min() > 0.99 * MAGNITUDE  # the wrong sign: no darkening


def test_multi_echo_needs_a_chosen_echo():
    magnitude, phase, _, _ = gre_phantom()
    echoes_magnitude = np.stack([magnitude * 1.2, magnitude, magnitude * 0.8])
    echoes_phase = np.stack([phase, phase, phase])
    with pytest.raises(LesionDetectError, match="multi-echo series of 3 echoes: choose the echo"):
        swi(echoes_magnitude, echoes_phase, SPACING_IJK)
    with pytest.raises(LesionDetectError, match="echoes 0 to 2 only"):
        swi(echoes_magnitude, echoes_phase, SPACING_IJK, echo=3)
    np.testing.assert_array_equal(
        swi(echoes_magnitude, echoes_phase, SPACING_IJK, echo=1), swi(magnitude, phase, SPACING_IJK)
    )
    with pytest.raises(LesionDetectError, match="differ in size"):
        swi(magnitude, phase[:, :-1], SPACING_IJK)


def head_phantom(rng):
    """(volume, head, bias): an ellipsoid head of 100 (noise 1) on a dark background, times a smooth bias field."""
    k, j, i = np.indices((40, 128, 128), dtype=np.float32)
    head = ((i - 64) / 50) ** 2 + ((j - 64) / 58) ** 2 + ((k - 20) / 22) ** 2 < 1
    bias = np.exp(0.35 * (i - 64) / 64 - 0.25 * ((j - 64) / 64) ** 2 + 0.15 * (k - 20) / 20)
    truth = np.where(head, 100.0, 2.0) + rng.normal(0, 1, head.shape)
    return (truth * bias).astype(np.float32), head, bias


def coefficient_of_variation(values):
    return values.std() / values.mean()


def test_n4_removes_a_smooth_bias_fast():
    volume, head, _ = head_phantom(np.random.default_rng(0))
    start = time.perf_counter()
    corrected = n4_bias_corrected(volume, spacing_ijk=(1.0, 1.0, 2.0))
    seconds = time.perf_counter() - start
    assert coefficient_of_variation(volume[head]) > 0.14
    assert coefficient_of_variation(corrected[head]) < 0.03
    assert corrected.dtype == np.float32 and seconds < 5


def test_head_mask_fills_dark_veins_and_normalisation_maps_percentiles():
    volume, head, _ = head_phantom(np.random.default_rng(1))
    volume[:, 60:64, 60:64] = 0.0  # a dark vein through all slices
    assert (head_mask(volume) == head).mean() > 0.999
    normalized = normalized_intensity(volume)
    low, high = np.percentile(volume[head_mask(volume)], (0.5, 99.5))
    assert normalized.min() == 0 and normalized.max() == 1
    assert normalized[10, 64, 64] == pytest.approx((volume[10, 64, 64] - low) / (high - low), rel=1e-5)
    with pytest.raises(LesionDetectError, match="one intensity only"):
        head_mask(np.ones((4, 8, 8)))

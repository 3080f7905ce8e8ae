"""Susceptibility-weighted imaging from GRE magnitude and phase (Haacke et al. 2004), the microbleed input.

Phase in radians -> homodyne high-pass (the complex image divided by a low-pass copy of itself, which removes
the smooth background field and its wraps) -> negative phase mask ((pi + phi)/pi for phi < 0, 1 elsewhere) to
the 4th power -> times the magnitude. Paramagnetic sources (veins, hemosiderin of microbleeds) come out dark.

Arrays are (k, j, i) as Slicer's arrayFromVolume returns them, multi-echo series (echo, k, j, i); spacing is
(i, j, k) in mm like `Volume.spacing`. Phase sign: right-handed by default (Haacke's convention: paramagnetic
sources have negative phase); `left_handed=True` negates the phase first, for data where veins are bright in
the filtered phase. The low-pass reflects at the image border, so within about 2 sigma of the border of a crop
through tissue a steep background ramp is removed less well (a whole-head image has air there).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from LesionDetectLib.errors import LesionDetectError

# Gaussian low-pass in-plane (slice by slice, like Haacke's 2D filter): about his 64x64 Hanning k-space window on
# a 512x512, 240-mm slice (image-space sigma about 7 pixels of 0.47 mm).
HIGH_PASS_SIGMA_MM = 3.0
MASK_POWER = 4


def chosen_echo(volume: np.ndarray, echo: int | None, name: str) -> np.ndarray:
    """One echo (k, j, i) of a multi-echo series (echo, k, j, i); a 3D volume as it is."""
    volume = np.asarray(volume)
    if volume.ndim == 3:
        if echo not in (None, 0):
            raise LesionDetectError(f"Echo {echo} was chosen, but the {name} holds a single echo.")
        return volume
    if volume.ndim != 4:
        raise LesionDetectError(
            f"The {name} has shape {volume.shape}: SWI needs one 3D volume or a 4D multi-echo series "
            "(echo, slices, rows, columns)."
        )
    echoes = volume.shape[0]
    if echo is None:
        raise LesionDetectError(
            f"The {name} is a multi-echo series of {echoes} echoes: choose the echo to compute SWI from "
            f"(echo = 0 to {echoes - 1}; later echoes show more susceptibility contrast)."
        )
    if not 0 <= echo < echoes:
        raise LesionDetectError(f"Echo {echo} was chosen, but the {name} has echoes 0 to {echoes - 1} only.")
    return volume[echo]


def phase_radians(phase: np.ndarray, raw_range: tuple[float, float] | None = None) -> np.ndarray:
    """Phase in radians (float32). With raw_range (low, high), raw values (e.g. DICOM 0...4096 or -4096...4096)
    span one turn: low -> -pi, high -> pi, wrapped into [-pi, pi). Without it the phase must be in radians."""
    phase = np.asarray(phase, dtype=np.float32)
    if raw_range is None:
        if np.abs(phase).max() > np.pi + 1e-3:
            raise LesionDetectError(
                f"The phase spans {phase.min():g} to {phase.max():g}, so it is not in radians: give the raw "
                "range that spans one turn (e.g. the series' minimum and maximum phase value)."
            )
        return phase
    low, high = raw_range
    radians = 2 * np.pi * (phase - low) / (high - low) - np.pi
    return (np.mod(radians + np.pi, 2 * np.pi) - np.pi).astype(np.float32)


def homodyne_phase(
    magnitude: np.ndarray, phase: np.ndarray, spacing_ijk, sigma_mm: float = HIGH_PASS_SIGMA_MM
) -> np.ndarray:
    """High-pass phase (float32): the angle of z / lowpass(z) for the complex image z, an in-plane Gaussian low-pass;
    taken as angle(z * conj(lowpass(z))), the same angle without dividing by zero where there is no signal."""
    complex_image = (magnitude * np.exp(1j * phase)).astype(np.complex64)
    sigma_kji = (0.0, sigma_mm / spacing_ijk[1], sigma_mm / spacing_ijk[0])
    low_pass = ndimage.gaussian_filter(complex_image, sigma_kji, mode="reflect")
    return np.angle(complex_image * np.conj(low_pass)).astype(np.float32)


def negative_phase_mask(phase: np.ndarray, power: int = MASK_POWER) -> np.ndarray:
    """Haacke's mask ((pi + phi)/pi)^power where phi < 0, 1 elsewhere (float32 in 0...1)."""
    return (np.where(phase < 0, (np.pi + phase) / np.pi, 1.0) ** power).astype(np.float32)


def swi(
    magnitude: np.ndarray,
    phase: np.ndarray,
    spacing_ijk,
    echo: int | None = None,
    raw_phase_range: tuple[float, float] | None = None,
    left_handed: bool = False,
    sigma_mm: float = HIGH_PASS_SIGMA_MM,
) -> np.ndarray:
    """SWI (k, j, i) float32 from magnitude and phase of one echo; a multi-echo series needs `echo`."""
    magnitude = chosen_echo(magnitude, echo, "magnitude").astype(np.float32)
    phase = chosen_echo(phase, echo, "phase")
    if magnitude.shape != phase.shape:
        raise LesionDetectError(
            f"Magnitude {magnitude.shape} and phase {phase.shape} differ in size: choose the magnitude and phase "
            "series of the same GRE acquisition."
        )
    radians = phase_radians(phase, raw_phase_range)
    if left_handed:
        radians = -radians
    return magnitude * negative_phase_mask(homodyne_phase(magnitude, radians, spacing_ijk, sigma_mm))

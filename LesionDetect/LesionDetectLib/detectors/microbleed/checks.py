"""What the microbleed detector refuses before running: input that is not an SWI / T2*-GRE magnitude volume."""

from __future__ import annotations

import numpy as np

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.volume import Volume

MIN_SLICES = 8
MIN_COVERAGE_MM = 20.0
NEGATIVE_FRACTION = 0.01  # magnitude images are never negative; CT (air −1000 HU) and phase images are


def check_swi(volume: Volume) -> None:
    """Refuse CT (HU), phase images and slabs too thin to tell a microbleed from a vein, naming the problem."""
    array = np.asarray(volume.array)
    negative = float(np.mean(array < 0))
    if negative > NEGATIVE_FRACTION:
        low, high = float(array.min()), float(array.max())
        like = "CT in Hounsfield units" if low <= -500 else "a phase image"
        raise LesionDetectError(
            f"'{volume.name}' has negative values in {100 * negative:.0f} % of its voxels ({low:g} to {high:g}), "
            f"like {like}: the microbleed detector needs an SWI or T2*-GRE magnitude MRI (give a phase image as "
            "the phase option, with its magnitude as the input)."
        )
    slices, coverage = array.shape[0], array.shape[0] * float(volume.spacing[2])
    if slices < MIN_SLICES or coverage < MIN_COVERAGE_MM:
        raise LesionDetectError(
            f"'{volume.name}' has {slices} slices covering {coverage:.0f} mm: the microbleed detector needs at least "
            f"{MIN_SLICES} slices and {MIN_COVERAGE_MM:.0f} mm, to tell microbleeds from veins across slices."
        )

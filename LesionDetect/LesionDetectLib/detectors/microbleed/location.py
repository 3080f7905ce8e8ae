"""Lobar or deep, the location of a microbleed (as the MARS rating scale reads it).

From a brain parcellation on the input's grid in FreeSurfer / SynthSeg label numbers (aseg, aparc+aseg) when one
is given: cortex and cerebral white matter are lobar; basal ganglia, thalamus, ventral diencephalon, brainstem and
cerebellum are deep (infratentorial counted with deep). A label with neither meaning (CSF, ventricles, vessels)
takes the nearest labelled voxel within NEAREST_MM. Without a parcellation the location is a position-based guess:
deep when the microbleed lies at least DEEP_FROM_SURFACE_MM inside the head's surface, lobar otherwise.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

LOBAR_LABELS = frozenset([2, 3, 41, 42, 17, 18, 53, 54, *range(1000, 3000)])  # cortex, white matter, hippocampus…
DEEP_LABELS = frozenset([7, 8, 46, 47, 10, 11, 12, 13, 49, 50, 51, 52, 16, 26, 58, 28, 60])  # cerebellum … ventral DC
NEAREST_MM = 3.0
DEEP_FROM_SURFACE_MM = 38.0  # set on synthetic heads (training/check_microbleed_location.py)
PARCELLATION = "parcellation"
POSITION_GUESS = "position guess"


def location_from_parcellation(parcellation_kji: np.ndarray, center_kji, spacing_ijk) -> str:
    """ "lobar", "deep" or "unknown" at a voxel (k, j, i) of a FreeSurfer-numbered parcellation."""
    labels = np.asarray(parcellation_kji).astype(np.int64)
    reach = np.ceil(NEAREST_MM / np.asarray(spacing_ijk, dtype=float)[::-1]).astype(int)
    centre = np.clip(np.round(center_kji).astype(int), 0, np.array(labels.shape) - 1)
    low, high = np.maximum(centre - reach, 0), np.minimum(centre + reach + 1, labels.shape)
    window = labels[tuple(slice(a, b) for a, b in zip(low, high))]
    offsets = np.stack(np.meshgrid(*(np.arange(a, b) for a, b in zip(low, high)), indexing="ij"), axis=-1) - centre
    distance = np.linalg.norm(offsets * np.asarray(spacing_ijk, dtype=float)[::-1], axis=-1)
    meaningful = np.isin(window, list(LOBAR_LABELS | DEEP_LABELS)) & (distance <= NEAREST_MM)
    if not meaningful.any():
        return "unknown"
    nearest = window[meaningful][np.argmin(distance[meaningful])]
    return "lobar" if nearest in LOBAR_LABELS else "deep"


def depth_in_head_mm(head_kji: np.ndarray, spacing_ijk) -> np.ndarray:
    """Distance (mm) of every head voxel from the outside of the head (0 outside)."""
    return ndimage.distance_transform_edt(head_kji, sampling=np.asarray(spacing_ijk, dtype=float)[::-1])


def location_from_position(depth_mm: np.ndarray, center_kji) -> str:
    """ "deep" at least DEEP_FROM_SURFACE_MM inside the head's surface, else "lobar" (a guess)."""
    centre = np.clip(np.round(center_kji).astype(int), 0, np.array(depth_mm.shape) - 1)
    return "deep" if depth_mm[tuple(centre)] >= DEEP_FROM_SURFACE_MM else "lobar"

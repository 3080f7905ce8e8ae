"""Small CT phantoms whose calcium scores and geometry are known by construction."""

import numpy as np

from LesionDetectLib.io.volume import LPS_TO_RAS, Volume, ijk_to_ras_matrix

BACKGROUND_HU = 40


def ct_volume(shape_kji, spacing_ijk, origin_lps=(0.0, 0.0, 0.0), directions_lps=None, name="phantom") -> Volume:
    """Soft-tissue CT (40 HU) with an air corner so it reads as CT in HU; LPS geometry as DICOM gives it."""
    array = np.full(shape_kji, BACKGROUND_HU, dtype=np.int16)
    array[:, :2, :2] = -1000
    ijk_to_lps = ijk_to_ras_matrix(spacing_ijk, origin_lps, directions_lps)
    return Volume(array, LPS_TO_RAS @ ijk_to_lps, name=name, modality="CT")


def voxel_centers_lps(volume: Volume) -> np.ndarray:
    """(k, j, i, 3) LPS positions of every voxel centre."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in volume.array.shape), indexing="ij")
    ijk = np.stack([i, j, k], axis=-1).reshape(-1, 3).astype(float)
    ras = volume.ijk_to_ras_points(ijk)
    return (ras * np.array([-1.0, -1.0, 1.0])).reshape(*volume.array.shape, 3)


def add_sphere(volume: Volume, center_lps, radius_mm: float, hu: float, samples: int = 5) -> float:
    """Add a sphere with exact partial volume (supersampled voxels); return its true volume in mm³."""
    ijk_to_lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ volume.ijk_to_ras
    offsets = (np.arange(samples) + 0.5) / samples - 0.5
    sub = np.stack(np.meshgrid(offsets, offsets, offsets, indexing="ij"), -1).reshape(-1, 3)
    centers = voxel_centers_lps(volume)
    near = np.linalg.norm(centers - np.asarray(center_lps), axis=-1) <= radius_mm + volume.spacing.max()
    k, j, i = np.nonzero(near)
    ijk = np.stack([i, j, k], -1).astype(float)
    points_lps = (ijk[:, None, :] + sub[None]) @ ijk_to_lps[:3, :3].T + ijk_to_lps[:3, 3]
    fraction = (np.linalg.norm(points_lps - np.asarray(center_lps), axis=-1) <= radius_mm).mean(axis=1)
    values = volume.array[k, j, i] + fraction * (hu - volume.array[k, j, i])
    volume.array[k, j, i] = np.rint(values).astype(np.int16)
    return 4.0 / 3.0 * np.pi * radius_mm**3

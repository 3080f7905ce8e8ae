"""The bundled sample: a deterministic synthetic non-contrast cardiac CT with known calcifications.

Axial slices in DICOM's LPS patient frame on a heart-centred 200 mm field of view: chest wall,
lungs, heart in epicardial fat, aorta, spine, sternum and ribs cut by the field of view, and
calcified coronary plaques (ellipsoids with partial volume and a little blooming) whose centres,
sizes, densities and arteries are returned as ground truth. Not real anatomy: it exercises the
pipeline and its geometry, it does not measure clinical accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from LesionDetectLib.io.volume import LPS_TO_RAS, Volume

FIELD_OF_VIEW_MM = 200.0


@dataclass(frozen=True)
class Plaque:
    """A calcified plaque: ellipsoid centre (LPS mm), semi-axes (mm), density (HU) and artery."""

    center_lps: tuple[float, float, float]
    radii_mm: tuple[float, float, float]
    hu: float
    artery: str


HEART_CENTER_LPS = (-5.0, -15.0)
HEART_RADII_MM = (72.0, 62.0, 55.0)


def _heart_scale(z: float) -> float:
    """Cross-section scale of the heart ellipsoid at height `z` from its centre."""
    return float(np.sqrt(max(0.0, 1.0 - (z / HEART_RADII_MM[2]) ** 2)))


def sample_plaques(z_center: float) -> list[Plaque]:
    """The sample's coronary plaques, in the epicardial fat 4 mm outside the heart surface."""
    layout = [  # angle from patient left towards posterior (deg), height (mm), semi-axes, HU, artery
        (-100.0, 30.0, (2.5, 2.0, 4.0), 650.0, "LM"),
        (-70.0, 15.0, (3.0, 2.5, 6.0), 900.0, "LAD"),
        (-50.0, 0.0, (1.5, 1.5, 3.0), 320.0, "LAD"),
        (-30.0, -15.0, (1.2, 1.2, 2.5), 260.0, "LAD"),
        (10.0, 21.0, (2.0, 2.5, 5.0), 480.0, "LCX"),
        (40.0, 6.0, (1.5, 1.5, 2.5), 240.0, "LCX"),
        (-150.0, 24.0, (2.5, 2.5, 6.0), 750.0, "RCA"),
        (170.0, 6.0, (2.0, 2.0, 4.0), 400.0, "RCA"),
        (135.0, -15.0, (1.8, 1.5, 3.0), 1100.0, "RCA"),
    ]
    plaques = []
    for angle_deg, height, radii, hu, artery in layout:
        scale = _heart_scale(height)
        angle = np.deg2rad(angle_deg)
        x = HEART_CENTER_LPS[0] + (HEART_RADII_MM[0] * scale + 4.0) * np.cos(angle)
        y = HEART_CENTER_LPS[1] + (HEART_RADII_MM[1] * scale + 4.0) * np.sin(angle)
        plaques.append(Plaque((float(x), float(y), z_center + height), radii, hu, artery))
    return plaques


def _ellipse(x, y, cx, cy, rx, ry):
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


def _partial_volume_ellipsoid(shape_kji, ijk_to_lps, plaque: Plaque, samples: int = 4):
    """Fraction of each voxel inside the plaque (supersampled), as (crop slices, fractions)."""
    spacing = np.diag(ijk_to_lps)[:3]
    origin = ijk_to_lps[:3, 3]
    center_ijk = (np.asarray(plaque.center_lps) - origin) / spacing
    reach = np.asarray(plaque.radii_mm) / spacing + 2
    lo = np.maximum(np.floor(center_ijk - reach).astype(int), 0)
    hi = np.minimum(np.ceil(center_ijk + reach).astype(int) + 1, shape_kji[::-1])
    offsets = (np.arange(samples) + 0.5) / samples - 0.5
    axes = [
        (np.arange(lo[d], hi[d])[:, None] + offsets[None, :]).ravel() * spacing[d] + origin[d] - plaque.center_lps[d]
        for d in range(3)
    ]
    x, y, z = (axes[d] / plaque.radii_mm[d] for d in range(3))
    inside = (z[:, None, None] ** 2 + y[None, :, None] ** 2 + x[None, None, :] ** 2) <= 1.0
    sizes = hi - lo
    fraction = inside.reshape(sizes[2], samples, sizes[1], samples, sizes[0], samples).mean(axis=(1, 3, 5))
    crop = tuple(slice(lo[d], hi[d]) for d in (2, 1, 0))
    return crop, fraction


def make_sample(
    shape_ijk: tuple[int, int, int] = (512, 512, 64),
    slice_spacing_mm: float = 3.0,
    noise_hu: float = 12.0,
    seed: int = 20261123,
) -> tuple[Volume, list[Plaque], np.ndarray]:
    """Return (CT volume in HU as int16, its plaques, a heart-region mask) — same output for same arguments."""
    size_i, size_j, size_k = shape_ijk
    pixel_mm = FIELD_OF_VIEW_MM / size_i
    z_extent = size_k * slice_spacing_mm
    ijk_to_lps = np.diag([pixel_mm, pixel_mm, slice_spacing_mm, 1.0])
    ijk_to_lps[:3, 3] = (-FIELD_OF_VIEW_MM / 2 + pixel_mm / 2, -FIELD_OF_VIEW_MM / 2 + pixel_mm / 2, 0.0)
    z_center = z_extent / 2
    x = ijk_to_lps[0, 3] + pixel_mm * np.arange(size_i)
    y = ijk_to_lps[1, 3] + pixel_mm * np.arange(size_j)
    xx, yy = np.meshgrid(x, y)  # (j, i)
    ct = np.empty((size_k, size_j, size_i), dtype=np.float32)
    heart_mask = np.zeros(ct.shape, dtype=np.uint8)
    for k in range(size_k):
        z = k * slice_spacing_mm - z_center
        slice_hu = np.full((size_j, size_i), -1000.0, dtype=np.float32)
        slice_hu[_ellipse(xx, yy, 0, 0, 160, 115)] = -90.0  # subcutaneous fat
        slice_hu[_ellipse(xx, yy, 0, 0, 150, 105)] = 40.0  # chest wall muscle
        slice_hu[_ellipse(xx, yy, -85, 5, 65, 85) | _ellipse(xx, yy, 85, 5, 65, 85)] = -850.0  # lungs
        heart_scale = _heart_scale(z)
        if heart_scale > 0:
            cx, cy = HEART_CENTER_LPS
            rx, ry = HEART_RADII_MM[0] * heart_scale, HEART_RADII_MM[1] * heart_scale
            slice_hu[_ellipse(xx, yy, cx, cy, rx + 8, ry + 8)] = -80.0  # epicardial fat
            slice_hu[_ellipse(xx, yy, cx, cy, rx, ry)] = 40.0  # myocardium and blood
            heart_mask[k] = _ellipse(xx, yy, cx, cy, rx + 10, ry + 10)
        slice_hu[_ellipse(xx, yy, 12, 35, 15, 15)] = 40.0  # descending aorta
        slice_hu[_ellipse(xx, yy, 0, 72, 20, 17)] = 260.0  # vertebral body
        slice_hu[_ellipse(xx, yy, 0, 72, 20, 17) & ~_ellipse(xx, yy, 0, 72, 17, 14)] = 700.0  # cortex
        slice_hu[_ellipse(xx, yy, 0, -98, 14, 6)] = 450.0  # sternum
        rib_phase = (z / 22.0) % 1.0
        for side in (-1, 1):  # ribs where the field of view cuts the chest wall
            slice_hu[_ellipse(xx, yy, side * 97, -60 + 80 * rib_phase, 6, 9)] = 500.0
        ct[k] = slice_hu
    plaques = sample_plaques(z_center)
    rng = np.random.default_rng(seed)
    for plaque in plaques:
        crop, fraction = _partial_volume_ellipsoid(ct.shape, ijk_to_lps, plaque)
        region = ct[crop]
        blurred = ndimage.gaussian_filter(fraction, sigma=0.6 / np.array([slice_spacing_mm, pixel_mm, pixel_mm]))
        region += blurred * (plaque.hu - region)
    ct += rng.normal(0.0, noise_hu, ct.shape).astype(np.float32)
    volume = Volume(
        np.clip(np.rint(ct), -1024, 3071).astype(np.int16),
        LPS_TO_RAS @ ijk_to_lps,
        name="LesionDetect sample cardiac CT",
        modality="CT",
    )
    return volume, plaques, heart_mask

"""Anatomy of the synthetic cardiac CT: the chest, heart, coronary tree, vessels and bones, drawn and rendered.

Every size, position and density is drawn per seed from ranges meant to cover adult chests on gated
calcium-scoring and non-gated chest scans (heart size, orientation and coronary dominance vary; costal cartilage
may be calcified); the result is a plausible arrangement of simple shapes (`synthetic_shapes`), not real
anatomy. Soft tissue may be rendered on a coarser in-plane grid; bones are rendered at full resolution and owned
(labelled) through a `Tracker`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from synthetic_shapes import (
    SLAB_VOXELS,
    Grid,
    Segment,
    Tracker,
    VerticalTube,
    blend,
    ellipse_fraction,
    intersect,
    paint_segments,
    paint_tube,
    periodic_slab_fraction,
    polyline_segments,
    ramp,
    random_perpendicular,
    rotation_about,
    slab_fraction,
    tube_fraction,
    unit,
)

BONE_CODE = 8
HEART_SCALE_RANGE = (0.8, 1.3)  # overall heart size factor
HEART_TILT_DEG = 22.0  # long axis tilted up to this far from its mean direction
HEART_ROLL_DEG = 25.0  # rotation about the long axis, ±
DOMINANCE = {"right": 0.7, "co": 0.2, "left": 0.1}  # which artery supplies the posterior descending territory
COSTAL_CALCIFICATION_PROBABILITY = 0.45
COSTAL_CALCIUM_HU = (180.0, 700.0)
LEFT_MAIN_EXTRA_FAT_MM = 3.0
ATRIAL_FAT_FRACTION = 0.5  # epicardial fat over the atria, relative to the ventricles


# ---------------------------------------------------------------------------------------------------------------
# The heart: a tapered ellipsoid ("egg"), wider at the base, long axis from base to apex


@dataclass(frozen=True)
class Egg:
    """Heart-like solid: (t/a)² + ((s2/b)² + (s3/c)²)/g(t)² ≤ 1 with g = 1 − taper·t/a, in the frame (e1, e2, e3).

    e1 runs from base to apex, e2 is the transverse direction closest to anterior; the transverse angle φ runs
    from e2 towards e3. T = t/a is the normalised position along the long axis (−1 base, +1 apex).
    """

    center: np.ndarray
    frame: np.ndarray  # columns e1, e2, e3 in LPS
    half_axes: np.ndarray  # a, b, c
    taper: float

    def grown(self, by: float, shift=(0.0, 0.0, 0.0)) -> Egg:
        """The shape offset outwards by about `by` mm (inwards when negative), its centre moved by `shift`."""
        a = self.half_axes[0]
        return Egg(self.center + np.asarray(shift), self.frame, self.half_axes + by, self.taper * a / (a + by))

    def local(self, x, y, z):
        """Frame coordinates (t, s2, s3) of LPS points."""
        dx, dy, dz = x - float(self.center[0]), y - float(self.center[1]), z - float(self.center[2])
        e = self.frame
        return tuple(float(e[0, n]) * dx + float(e[1, n]) * dy + float(e[2, n]) * dz for n in range(3))

    def implicit(self, t, s2, s3):
        """F and its LPS gradient at frame coordinates."""
        a, b, c = (float(v) for v in self.half_axes)
        g = np.maximum(1.0 - self.taper * t / a, 0.3)
        inv_g2 = 1.0 / (g * g)
        q = (s2 / b) ** 2 + (s3 / c) ** 2
        big_t = t / a
        f = big_t * big_t + q * inv_g2 - 1.0
        d_t = 2.0 * big_t / a + 2.0 * q * self.taper * inv_g2 / (a * g)
        d_2 = 2.0 * s2 * inv_g2 / (b * b)
        d_3 = 2.0 * s3 * inv_g2 / (c * c)
        e = self.frame
        gx, gy, gz = (float(e[n, 0]) * d_t + float(e[n, 1]) * d_2 + float(e[n, 2]) * d_3 for n in range(3))
        return f, gx, gy, gz

    def fraction(self, local, edge_mm, shift_local=(0.0, 0.0, 0.0)) -> np.ndarray:
        t, s2, s3 = (coordinate - float(offset) for coordinate, offset in zip(local, shift_local))
        return ramp(*self.implicit(t, s2, s3), edge_mm)

    def contains(self, points) -> np.ndarray:
        points = np.atleast_2d(points).astype(float)
        return self.implicit(*self.local(points[:, 0], points[:, 1], points[:, 2]))[0] < 0

    def transverse(self, phi) -> np.ndarray:
        """LPS unit vectors of transverse angle φ."""
        phi = np.asarray(phi, dtype=float)[..., None]
        return np.cos(phi) * self.frame[:, 1] + np.sin(phi) * self.frame[:, 2]

    def angle_of(self, direction) -> float:
        """Transverse angle of an LPS direction projected onto the transverse plane."""
        direction = unit(direction)
        return float(np.arctan2(direction @ self.frame[:, 2], direction @ self.frame[:, 1]))

    def surface(self, big_t, phi, offset=0.0):
        """Surface points at (T, φ) moved `offset` mm along the outward normal, and the normals."""
        big_t, phi, offset = np.broadcast_arrays(np.asarray(big_t, float), np.asarray(phi, float), offset)
        a, b, c = self.half_axes
        g = 1.0 - self.taper * big_t
        rho = g * np.sqrt(np.clip(1.0 - big_t**2, 0.0, None)) / np.hypot(np.cos(phi) / b, np.sin(phi) / c)
        t, s2, s3 = big_t * a, rho * np.cos(phi), rho * np.sin(phi)
        normals = unit(np.stack(self.implicit(t, s2, s3)[1:], axis=-1))
        points = self.center + np.stack([t, s2, s3], axis=-1) @ self.frame.T
        return points + offset[..., None] * normals, normals

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        big_t, phi = np.meshgrid(np.linspace(-1, 1, 41), np.linspace(0, 2 * np.pi, 48, endpoint=False))
        points, _ = self.surface(big_t, phi)
        return points.reshape(-1, 3).min(axis=0), points.reshape(-1, 3).max(axis=0)


def draw_heart(rng, center) -> Egg:
    """Heart size, shape and orientation: the apex points left, anterior and down, tilted at random."""
    scale = rng.uniform(*HEART_SCALE_RANGE)
    half_axes = np.array([rng.uniform(50, 62), rng.uniform(38, 48), rng.uniform(34, 44)]) * scale
    long_axis = unit([0.6, -0.6, -0.45])
    tilt = np.deg2rad(rng.uniform(0, HEART_TILT_DEG))
    long_axis = rotation_about(random_perpendicular(rng, long_axis), tilt) @ long_axis
    anterior = np.array([0.0, -1.0, 0.0])
    e2 = unit(anterior - (anterior @ long_axis) * long_axis)
    roll = rotation_about(long_axis, np.deg2rad(rng.uniform(-HEART_ROLL_DEG, HEART_ROLL_DEG)))
    e2 = roll @ e2
    frame = np.column_stack([long_axis, e2, np.cross(long_axis, e2)])
    return Egg(np.asarray(center, dtype=float), frame, half_axes, rng.uniform(0.12, 0.25))


@dataclass(frozen=True)
class Ellipsoid:
    """Solid ellipsoid: centre, unit axes as columns, semi-axes (mm)."""

    center: np.ndarray
    axes: np.ndarray
    radii: np.ndarray

    def fractions(self, x, y, z, edge_mm, grows) -> list[np.ndarray]:
        """Fractions inside the ellipsoid with its semi-axes grown by each of `grows` (mm)."""
        dx, dy, dz = x - float(self.center[0]), y - float(self.center[1]), z - float(self.center[2])
        along = [float(a[0]) * dx + float(a[1]) * dy + float(a[2]) * dz for a in self.axes.T]
        result = []
        for grow in grows:
            radii = [float(r + grow) for r in self.radii]
            scaled = [coordinate / radius for coordinate, radius in zip(along, radii)]
            f = scaled[0] ** 2 + scaled[1] ** 2 + scaled[2] ** 2 - 1.0
            gradient = [sum(2.0 * scaled[n] * float(self.axes[m, n]) / radii[n] for n in range(3)) for m in range(3)]
            result.append(ramp(f, *gradient, edge_mm))
        return result

    def contains(self, points) -> np.ndarray:
        local = (np.atleast_2d(points) - self.center) @ self.axes / self.radii
        return np.sum(local**2, axis=1) < 1.0

    def bounds(self, grow: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        reach = np.sqrt((self.axes**2) @ (self.radii + grow) ** 2)
        return self.center - reach, self.center + reach


def draw_atria(rng, heart: Egg) -> tuple[Ellipsoid, Ellipsoid]:
    """Left atrium (back, top) and right atrium (right side) bulging from the heart's base."""
    atria = []
    for big_t, direction, depth in ((-0.85, [0.2, 1.0, 0.3], 12.0), (-0.6, [-1.0, 0.2, 0.2], 10.0)):
        center, _ = heart.surface(big_t, heart.angle_of(direction), -depth)
        radii = np.array([rng.uniform(22, 28), rng.uniform(17, 22), rng.uniform(17, 22)])
        atria.append(Ellipsoid(center, heart.frame, radii))
    return tuple(atria)


# ---------------------------------------------------------------------------------------------------------------
# Coronary arteries: curves on the heart surface, in the epicardial fat


@dataclass(frozen=True)
class Artery:
    """A coronary branch: centreline points (LPS, about 1 mm apart), lumen radii, and its label code."""

    name: str
    code: int
    points: np.ndarray
    radii: np.ndarray

    @property
    def arc(self) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(self.points, axis=0), axis=1))])

    @property
    def length(self) -> float:
        return float(self.arc[-1])

    def pieces(self, grow: float = 0.0, step: int = 3) -> list[Segment]:
        """Capsules along the lumen (widened by `grow` mm), one per `step` centreline points."""
        keep = np.unique(np.append(np.arange(0, len(self.points), step), len(self.points) - 1))
        return polyline_segments(self.points[keep], self.radii[keep], grow)

    def at(self, s: float):
        """(point, unit tangent, lumen radius) at arc length `s` mm."""
        arc = self.arc
        s = float(np.clip(s, 0.0, arc[-1]))
        point = np.array([np.interp(s, arc, self.points[:, n]) for n in range(3)])
        n = int(np.clip(np.searchsorted(arc, s), 1, len(arc) - 1))
        return point, unit(self.points[n] - self.points[n - 1]), float(np.interp(s, arc, self.radii))


def resample(points: np.ndarray, step: float) -> np.ndarray:
    """Points about `step` mm apart along a polyline."""
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    targets = np.linspace(0.0, arc[-1], max(2, int(np.ceil(arc[-1] / step)) + 1))
    return np.column_stack([np.interp(targets, arc, points[:, n]) for n in range(3)])


def surface_artery(heart: Egg, name, code, knots, radius_start, radius_end, gap) -> Artery:
    """An artery running over the surface through (T, φ) knots, its lumen `gap` mm outside the muscle."""
    knots = np.asarray(knots, dtype=float)
    u = np.linspace(0.0, len(knots) - 1.0, 60 * len(knots))
    big_t = np.interp(u, np.arange(len(knots)), knots[:, 0])
    phi = np.interp(u, np.arange(len(knots)), knots[:, 1])
    dense, _ = heart.surface(big_t, phi)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
    count = max(2, int(np.ceil(arc[-1])) + 1)
    targets = np.linspace(0.0, arc[-1], count)
    radii = np.linspace(radius_start, radius_end, count)
    points, _ = heart.surface(np.interp(targets, arc, big_t), np.interp(targets, arc, phi), radii + gap)
    return Artery(name, code, points, radii)


def straight_points(start, end, step: float = 1.0) -> np.ndarray:
    count = max(2, int(np.ceil(np.linalg.norm(np.asarray(end) - start) / step)) + 1)
    return np.linspace(start, end, count)


def angle_along(start: float, end: float, sense: int) -> float:
    """Angle swept from `start` to `end` turning in direction `sense` (±1), in [0, 2π)."""
    return float(((end - start) * sense) % (2 * np.pi))


@dataclass(frozen=True)
class Aorta:
    """Ascending aorta with its root: axis through the ostium level, valve plane below it."""

    axis_point: np.ndarray  # on the axis at the ostium level
    direction: np.ndarray  # unit, upwards
    root_radius: float
    radius: float
    valve_center: np.ndarray

    def tubes(self, z_top: float) -> tuple[VerticalTube, VerticalTube]:
        """(root sinus, ascending aorta) as vertical tubes."""
        slope = (self.direction[0] / self.direction[2], self.direction[1] / self.direction[2])
        center = tuple(self.axis_point)
        z_valve = float(self.valve_center[2])
        root = VerticalTube(center, slope, self.root_radius, z_valve - 6.0, float(self.axis_point[2]) + 6.0)
        return root, VerticalTube(center, slope, self.radius, z_valve - 6.0, z_top)

    def center_at(self, z: float) -> np.ndarray:
        return self.axis_point + (z - self.axis_point[2]) / self.direction[2] * self.direction


@dataclass(frozen=True)
class CoronaryTree:
    arteries: list[Artery]
    aorta: Aorta
    sleeve_mm: float  # epicardial fat around each artery beyond its lumen (the LM's fat pad is wider)
    mitral_ring: tuple[np.ndarray, float, float]  # annulus centre, radius, angle of its posterior part (φ)
    av_level: float  # T of the atrioventricular groove
    dominance: str  # "right", "left" or "co": which artery supplies the posterior descending territory

    @property
    def ostia(self) -> np.ndarray:
        """LM and RCA ostia (LPS), where each leaves the aortic root."""
        by_name = {artery.name: artery for artery in self.arteries}
        return np.array([by_name["LM"].points[0], by_name["RCA"].points[0]])


def draw_coronary_tree(rng, heart: Egg) -> CoronaryTree:
    """LM, LAD with a diagonal, LCX with a marginal, RCA, PDA (and a posterolateral LCX branch when co-dominant);
    the aortic root placed from the LM length. Dominance decides how far the LCX and RCA run round the groove
    and which of them gives the PDA."""
    av = rng.uniform(-0.45, -0.28)
    gap = rng.uniform(0.4, 1.0)
    phi_lm = heart.angle_of([0.6, -0.4, 0.7]) + rng.normal(0, 0.12)
    phi_lad = phi_lm + np.angle(np.exp(1j * (heart.angle_of([0.45, -0.85, 0.1]) - phi_lm))) + rng.normal(0, 0.1)
    phi_crux = heart.angle_of([-0.1, 0.6, -0.8]) + rng.normal(0, 0.12)
    left_posterior = unit([0.6, 0.8, 0.0])
    sense = (
        1 if heart.transverse(phi_lm + 1.0) @ left_posterior > heart.transverse(phi_lm - 1.0) @ left_posterior else -1
    )
    phi_right = phi_lm - sense * np.deg2rad(rng.uniform(70, 110))
    dominance = str(rng.choice(list(DOMINANCE), p=list(DOMINANCE.values())))

    aorta = _draw_aorta(rng, heart, av, phi_lm)
    lm_radius = rng.uniform(1.7, 2.1)
    lm_end, _ = heart.surface(av, phi_lm, lm_radius + gap)
    lm = Artery("LM", 1, *_ostial(aorta, lm_end, float(lm_end[2]), lm_radius))

    lad_radius = rng.uniform(1.5, 1.9)
    apex_level = rng.uniform(0.8, 0.95)
    lad = surface_artery(
        heart,
        "LAD",
        2,
        [(av, phi_lm), (av + 0.12, phi_lad), (apex_level, phi_lad + rng.uniform(-0.15, 0.15))],
        lad_radius,
        1.0,
        gap,
    )
    branch_level = av + rng.uniform(0.15, 0.35)
    diagonal = surface_artery(
        heart,
        "D1",
        2,
        [(branch_level, phi_lad), (branch_level + rng.uniform(0.3, 0.45), phi_lad + sense * rng.uniform(0.4, 0.7))],
        1.1,
        0.75,
        gap,
    )
    to_crux = angle_along(phi_lm, phi_crux, sense)
    if dominance == "right":
        lcx_sweep = max(0.6, min(np.deg2rad(rng.uniform(70, 130)), to_crux - 0.3))
    elif dominance == "co":
        lcx_sweep = max(0.6, to_crux - rng.uniform(0.15, 0.35))
    else:
        lcx_sweep = to_crux
    lcx = surface_artery(
        heart, "LCX", 3, _ring_knots(av, phi_lm, sense * lcx_sweep, rng), rng.uniform(1.4, 1.8), 1.0, gap
    )
    phi_marginal = phi_lm + sense * lcx_sweep * rng.uniform(0.3, 0.7)
    marginal = surface_artery(
        heart,
        "OM1",
        3,
        [(av, phi_marginal), (av + rng.uniform(0.4, 0.6), phi_marginal + sense * rng.uniform(0.0, 0.2))],
        1.1,
        0.75,
        gap,
    )

    rca_radius = rng.uniform(1.6, 2.0)
    rca_sweep = angle_along(phi_right, phi_crux, -sense) - (rng.uniform(0.5, 1.0) if dominance == "left" else 0.0)
    ring = surface_artery(heart, "RCA", 4, _ring_knots(av, phi_right, -sense * rca_sweep, rng), rca_radius, 1.2, gap)
    proximal_points, proximal_radii = _ostial(
        aorta, ring.points[0], aorta.axis_point[2] + rng.uniform(-3, 3), rca_radius
    )
    rca = Artery(
        "RCA", 4, np.vstack([proximal_points, ring.points[1:]]), np.concatenate([proximal_radii, ring.radii[1:]])
    )
    pda = surface_artery(
        heart,
        "PDA",
        3 if dominance == "left" else 4,
        [(av, phi_crux), (rng.uniform(0.4, 0.7), phi_crux + rng.uniform(-0.1, 0.1))],
        1.2,
        0.8,
        gap,
    )
    arteries = [lm, lad, diagonal, lcx, marginal, rca, pda]
    if dominance == "co":  # the LCX also reaches the posterior wall: a posterolateral branch beside the PDA
        phi_end = phi_lm + sense * lcx_sweep
        arteries.append(
            surface_artery(
                heart,
                "PL",
                3,
                [(av, phi_end), (rng.uniform(0.3, 0.55), phi_end - sense * rng.uniform(0.0, 0.15))],
                1.1,
                0.75,
                gap,
            )
        )

    mitral_phi = phi_lm + sense * rng.uniform(0.8, 1.4)
    mitral_level = av + 0.05
    surface_point, _ = heart.surface(mitral_level, mitral_phi)
    axis_point = heart.center + mitral_level * heart.half_axes[0] * heart.frame[:, 0]
    mitral_radius = rng.uniform(12, 16)
    mitral_center = surface_point + (mitral_radius + rng.uniform(3, 8)) * (axis_point - surface_point) / np.linalg.norm(
        axis_point - surface_point
    )
    return CoronaryTree(
        arteries, aorta, rng.uniform(3.5, 6.0), (mitral_center, mitral_radius, mitral_phi), av, dominance
    )


def _ring_knots(av: float, phi_start: float, sweep: float, rng) -> list[tuple[float, float]]:
    """Knots along the atrioventricular groove, which wanders a little along the long axis."""
    steps = np.linspace(0.0, 1.0, 6)
    wander = rng.uniform(-0.05, 0.05) * np.sin(np.pi * steps)
    return [(av + w, phi_start + sweep * s) for s, w in zip(steps, wander)]


def _draw_aorta(rng, heart: Egg, av: float, phi_lm: float) -> Aorta:
    """Aortic root inside the heart's base, set back from the LM bifurcation by root radius + LM length."""
    root_radius = rng.uniform(13.0, 19.0)
    lm_length = rng.uniform(5.0, 15.0)
    lm_point, _ = heart.surface(av, phi_lm)
    outward = heart.transverse(phi_lm) * np.array([1.0, 1.0, 0.0])
    axis_point = lm_point - (root_radius + lm_length) * unit(outward)
    direction = unit([rng.uniform(-0.35, -0.1), rng.uniform(-0.3, 0.0), 1.0])
    radius = float(np.clip(root_radius * rng.uniform(0.85, 1.05), 12.5, 20.0))
    return Aorta(axis_point, direction, root_radius, radius, axis_point - rng.uniform(10, 14) * direction)


def _ostial(aorta: Aorta, target, ostium_z: float, radius) -> tuple[np.ndarray, np.ndarray]:
    """Straight proximal course from the aortic wall at height `ostium_z` to `target`."""
    level = aorta.center_at(ostium_z)
    horizontal = np.asarray(target, float) - level
    horizontal[2] = 0.0
    points = straight_points(level + aorta.root_radius * unit(horizontal), target)
    return points, np.full(len(points), radius)


# ---------------------------------------------------------------------------------------------------------------
# Chest: body wall, lungs, mediastinum, spine, ribs, sternum, diaphragm domes, great vessels


@dataclass(frozen=True)
class Chest:
    """Axial outlines (the same on every slice): body, muscle and thoracic cavity."""

    body_center: tuple[float, float]
    body_half: tuple[float, float]
    muscle_half: tuple[float, float]
    cavity_center: tuple[float, float]
    cavity_half: tuple[float, float]


@dataclass(frozen=True)
class Spine:
    """Vertebral bodies (elliptic cylinders between discs) with neural arch, canal and spinous process."""

    center: tuple[float, float]
    body_half: tuple[float, float]
    period: float
    body_height: float
    phase: float
    cortex_mm: float
    canal_center: tuple[float, float]
    canal_half: tuple[float, float]
    arch_mm: float
    spinous_center: tuple[float, float]
    spinous_half: tuple[float, float]


@dataclass(frozen=True)
class Ribs:
    """Ribs as bands winding down from the spine to the sternum around the cavity outline (θ 0 back, π front)."""

    pitch: float
    drop: float
    power: float
    phases: tuple[float, float]  # right, left
    radial_half: float
    height_half: float
    cortex_mm: float
    cartilage_from: float  # θ/π where ribs become costal cartilage
    cartilage_calcified_to: float  # cartilage between cartilage_from and this θ/π is calcified (bone, code 8)
    calcified_shell_mm: float  # thickness of the calcified rim of that cartilage


@dataclass(frozen=True)
class Sternum:
    center: tuple[float, float, float]
    slope: float  # dy/dz: the lower sternum lies more anterior
    half: tuple[float, float]
    z_low: float
    cortex_mm: float


@dataclass(frozen=True)
class Dome:
    """Hemidiaphragm: abdomen below a paraboloid with apex `apex` and curvature radius `radius`."""

    apex: tuple[float, float, float]
    radius: float
    hu_key: str


@dataclass(frozen=True)
class Layout:
    """Everything drawn for one chest, in LPS millimetres, plus its densities (HU)."""

    hu: dict
    chest: Chest
    spine: Spine
    ribs: Ribs
    sternum: Sternum
    domes: tuple[Dome, Dome]  # right (liver), left (spleen and stomach)
    heart: Egg
    atria: tuple[Ellipsoid, ...]
    fat_mm: float
    fat_shift: np.ndarray
    pericardium_mm: float
    collar_mm: float
    coronary: CoronaryTree
    descending_aorta: VerticalTube
    esophagus: VerticalTube
    esophagus_air: VerticalTube | None
    svc: VerticalTube
    ivc: VerticalTube
    pulmonary_arteries: list[Segment]
    pulmonary_veins: list[Segment]
    airways: list[Segment]
    lung_vessels: list[Segment]
    z_range: tuple[float, float]

    @property
    def envelope(self) -> Egg:
        """Heart with epicardial fat and pericardium."""
        return self.heart.grown(self.fat_mm + self.pericardium_mm, self.fat_shift)

    @property
    def aortic_tubes(self) -> tuple[VerticalTube, VerticalTube]:
        """(root sinus, ascending aorta), the latter running out through the top of the scan."""
        return self.coronary.aorta.tubes(self.z_range[1] + 20.0)

    @property
    def atrial_fat_mm(self) -> float:
        return ATRIAL_FAT_FRACTION * self.fat_mm

    def heart_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """LPS box around the heart with its fat and pericardium."""
        return _heart_bounds(self.envelope, self.atria, self.atrial_fat_mm + self.pericardium_mm)

    def summary(self) -> dict:
        """JSON-serialisable description of the drawn anatomy."""
        aorta = self.coronary.aorta
        return {
            "heart_center_lps": [round(float(v), 2) for v in self.heart.center],
            "heart_half_axes_mm": [round(float(v), 2) for v in self.heart.half_axes],
            "heart_long_axis_lps": [round(float(v), 4) for v in self.heart.frame[:, 0]],
            "heart_taper": round(float(self.heart.taper), 3),
            "epicardial_fat_mm": round(float(self.fat_mm), 2),
            "aortic_root_diameter_mm": round(2 * float(aorta.root_radius), 2),
            "ascending_aorta_diameter_mm": round(2 * float(aorta.radius), 2),
            "dominance": self.coronary.dominance,
            "ostia_lps": [[round(float(v), 2) for v in point] for point in self.coronary.ostia],
            "costal_calcification": bool(self.ribs.cartilage_calcified_to > self.ribs.cartilage_from),
            "body_half_axes_mm": [round(float(v), 2) for v in self.chest.body_half],
            "densities_hu": {key: round(float(value), 1) for key, value in self.hu.items()},
        }


def draw_densities(rng) -> dict:
    """Tissue densities (HU) of one non-contrast scan."""
    blood = rng.uniform(35, 50)
    return {
        "air": -1000.0,
        "fat": rng.uniform(-115, -85),
        "epicardial_fat": rng.uniform(-110, -70),
        "mediastinal_fat": rng.uniform(-110, -80),
        "muscle": rng.uniform(35, 55),
        "blood": blood,
        "myocardium": blood + rng.uniform(-3, 3),  # non-contrast: heart muscle and blood look alike
        "pericardium": rng.uniform(15, 40),
        "lung": rng.uniform(-880, -820),
        "lung_gradient": rng.uniform(0.0, 0.5),  # HU per mm towards the back (dependent lung)
        "liver": rng.uniform(50, 65),
        "spleen": rng.uniform(35, 50),
        "disc": rng.uniform(70, 100),
        "csf": rng.uniform(5, 20),
        "cartilage": rng.uniform(70, 115),
        "cartilage_calcium": rng.uniform(*COSTAL_CALCIUM_HU),
        "rib_cortex": rng.uniform(600, 1100),
        "vertebra_cortex": rng.uniform(450, 900),
        "marrow": rng.uniform(150, 300),
    }


def draw_layout(rng) -> Layout:
    """One chest: heart first, then the chest wall, spine and vessels arranged around it."""
    hu = draw_densities(rng)
    habitus = rng.uniform(0.0, 1.0)
    midline = rng.normal(0.0, 8.0)
    heart = draw_heart(rng, (midline + rng.uniform(12, 32), rng.uniform(-45, -15), rng.uniform(-220, 40)))
    fat_mm = 2.0 + 9.0 * habitus + rng.uniform(0, 3)
    fat_shift = unit(rng.normal(size=3)) * rng.uniform(0, 0.5) * fat_mm
    pericardium_mm = rng.uniform(0.8, 1.5)
    atria = draw_atria(rng, heart)
    envelope = heart.grown(fat_mm + pericardium_mm, fat_shift)
    low, high = _heart_bounds(envelope, atria, ATRIAL_FAT_FRACTION * fat_mm + pericardium_mm)

    esophagus_radius = rng.uniform(6, 9)
    spine_half = (rng.uniform(17, 22), rng.uniform(14, 18))
    spine_center = (midline, high[1] + 2 * esophagus_radius + rng.uniform(3, 10) + spine_half[1])
    sternum_half = (rng.uniform(12, 18), rng.uniform(5, 7))
    sternum_back = low[1] - rng.uniform(2, 12)
    chest = _draw_chest(
        rng, habitus, midline, sternum_back - 0.5 * sternum_half[1], spine_center, spine_half, low, high
    )
    spine = _draw_spine(rng, spine_center, spine_half)

    z_low = low[2] - rng.uniform(5, 20)
    z_high = float(np.clip(high[2] + rng.uniform(15, 40), z_low + 100, z_low + 150))
    sternum = Sternum(
        (midline, sternum_back - sternum_half[1], heart.center[2]),
        rng.uniform(-0.25, -0.05),
        sternum_half,
        low[2] + rng.uniform(-10, 25),
        rng.uniform(0.8, 1.5),
    )
    coronary = draw_coronary_tree(rng, heart)
    chambers = _Chambers(heart, atria)
    vessels = _draw_mediastinal_vessels(rng, chambers, coronary.aorta, spine, esophagus_radius, z_low, z_high)
    return Layout(
        hu=hu,
        chest=chest,
        spine=spine,
        ribs=_draw_ribs(rng),
        sternum=sternum,
        domes=_draw_domes(rng, midline, chest.cavity_center[1], low[2]),
        heart=heart,
        atria=atria,
        fat_mm=fat_mm,
        fat_shift=fat_shift,
        pericardium_mm=pericardium_mm,
        collar_mm=rng.uniform(4, 10),
        coronary=coronary,
        z_range=(float(z_low), z_high),
        **vessels,
    )


def _draw_domes(rng, midline: float, cavity_y: float, heart_bottom: float) -> tuple[Dome, Dome]:
    """Right hemidiaphragm (liver) near the heart's bottom, the left (spleen, stomach) a little lower."""
    right_top = heart_bottom + rng.uniform(5, 30)
    right = (midline - rng.uniform(40, 65), cavity_y + rng.uniform(-10, 25), right_top)
    left = (midline + rng.uniform(45, 70), cavity_y + rng.uniform(-10, 25), right_top - rng.uniform(5, 25))
    return Dome(right, rng.uniform(60, 110), "liver"), Dome(left, rng.uniform(60, 110), "spleen")


def _heart_bounds(envelope: Egg, atria, atrial_grow: float) -> tuple[np.ndarray, np.ndarray]:
    boxes = [envelope.bounds()] + [atrium.bounds(atrial_grow) for atrium in atria]
    return np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)


@dataclass(frozen=True)
class _Chambers:
    """The heart's muscle: ventricular egg and atria."""

    egg: Egg
    atria: tuple[Ellipsoid, ...]

    def contains(self, points) -> np.ndarray:
        inside = self.egg.contains(points)
        for atrium in self.atria:
            inside |= atrium.contains(points)
        return inside


def _draw_chest(rng, habitus, midline, cavity_front, spine_center, spine_half, heart_low, heart_high) -> Chest:
    cavity_back = spine_center[1] + spine_half[1] * rng.uniform(0.2, 0.5)
    lateral_reach = max(heart_high[0] - midline, midline - heart_low[0]) + rng.uniform(15, 30)
    cavity_half = (max(rng.uniform(105, 140), lateral_reach), 0.5 * (cavity_back - cavity_front))
    cavity_center = (midline, 0.5 * (cavity_back + cavity_front))
    muscle = rng.uniform(8, 16)
    fat = 4.0 + 30.0 * habitus + rng.uniform(0, 4)
    body_front = cavity_front - muscle * rng.uniform(0.8, 1.2) - fat
    body_back = cavity_back + rng.uniform(30, 45) + fat
    body_half = (cavity_half[0] + muscle + fat, 0.5 * (body_back - body_front))
    return Chest(
        body_center=(midline, 0.5 * (body_back + body_front)),
        body_half=body_half,
        muscle_half=(body_half[0] - fat, body_half[1] - fat),
        cavity_center=cavity_center,
        cavity_half=cavity_half,
    )


def _draw_spine(rng, center, body_half) -> Spine:
    canal_half = (rng.uniform(7, 9), rng.uniform(6, 8))
    arch_mm = rng.uniform(5, 7)
    canal_center = (center[0], center[1] + body_half[1] + canal_half[1] + rng.uniform(1, 3))
    spinous_half = (rng.uniform(3.5, 5), rng.uniform(12, 18))
    spinous_y = canal_center[1] + canal_half[1] + arch_mm + spinous_half[1] - 3.0
    body_height = rng.uniform(19, 25)
    return Spine(
        center=center,
        body_half=body_half,
        period=body_height + rng.uniform(4, 7),
        body_height=body_height,
        phase=rng.uniform(0, 30),
        cortex_mm=rng.uniform(1.0, 2.0),
        canal_center=canal_center,
        canal_half=canal_half,
        arch_mm=arch_mm,
        spinous_center=(center[0], spinous_y),
        spinous_half=spinous_half,
    )


def _draw_ribs(rng) -> Ribs:
    pitch = rng.uniform(22, 28)
    cartilage_from = rng.uniform(0.72, 0.82)
    calcified = rng.random() < COSTAL_CALCIFICATION_PROBABILITY
    return Ribs(
        pitch=pitch,
        drop=rng.uniform(100, 150),
        power=rng.uniform(1.3, 1.8),
        phases=(rng.uniform(0, pitch), rng.uniform(0, pitch)),
        radial_half=rng.uniform(2.5, 4.0),
        height_half=rng.uniform(4.5, 7.0),
        cortex_mm=rng.uniform(0.8, 1.5),
        cartilage_from=cartilage_from,
        cartilage_calcified_to=cartilage_from + rng.uniform(0.04, 0.2) if calcified else 0.0,
        calcified_shell_mm=rng.uniform(0.8, 2.0),
    )


def _draw_mediastinal_vessels(
    rng, heart: _Chambers, aorta: Aorta, spine: Spine, esophagus_radius, z_low, z_high
) -> dict:
    """Descending aorta, oesophagus, caval veins, pulmonary arteries, main bronchi and lung vessel trees."""
    da_radius = rng.uniform(10, 14)
    angle = np.deg2rad(rng.uniform(15, 55))
    reach = 0.9 * max(spine.body_half) + da_radius + 2.0
    da_center = (spine.center[0] + reach * np.cos(angle), spine.center[1] - reach * np.sin(angle), heart.egg.center[2])
    descending = VerticalTube(
        da_center, (rng.uniform(0, 0.12), rng.uniform(0, 0.12)), da_radius, z_low - 20, z_high + 20
    )

    eso_center = np.array(
        [
            spine.center[0] + rng.uniform(-8, 2),
            spine.center[1] - spine.body_half[1] - esophagus_radius - rng.uniform(1, 4),
        ]
    )
    overlap = da_radius + esophagus_radius + 1.0 - np.hypot(*(eso_center - da_center[:2]))
    eso_center[0] -= max(overlap, 0.0)
    eso = (*eso_center, heart.egg.center[2])
    esophagus = VerticalTube(eso, (0.0, 0.0), esophagus_radius, z_low - 20, z_high + 20)
    esophagus_air = (
        VerticalTube(eso, (0.0, 0.0), rng.uniform(1.5, 3.0), z_low - 20, z_high + 20) if rng.random() < 0.4 else None
    )

    svc_radius = rng.uniform(8, 12)
    top = aorta.center_at(z_high)
    svc_top = (top[0] - aorta.radius - svc_radius - rng.uniform(2, 6), top[1] + rng.uniform(0, 10), z_high)
    svc_slope = (rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.1))
    svc_probe = VerticalTube(svc_top, svc_slope, svc_radius, z_low, z_high)
    svc = VerticalTube(
        svc_top, svc_slope, svc_radius, _entry_height(heart, svc_probe, downwards=True) - 10.0, z_high + 20
    )

    inferior, _ = heart.egg.surface(rng.uniform(0.0, 0.2), heart.egg.angle_of([-0.5, 0.5, -0.7]))
    toward_axis = heart.egg.center - inferior
    toward_axis[2] = 0.0
    ivc_point = inferior + 8.0 * unit(toward_axis)
    ivc_probe = VerticalTube(tuple(ivc_point), (0.0, 0.0), 12.0, z_low - 20, z_high)
    ivc = VerticalTube(
        tuple(ivc_point),
        (0.0, 0.0),
        rng.uniform(10, 13),
        z_low - 20,
        _entry_height(heart, ivc_probe, downwards=False) + 10.0,
    )

    carina = np.array(
        [
            spine.center[0] + rng.uniform(-3, 5),
            eso_center[1] - esophagus_radius - rng.uniform(10, 14),
            z_high + rng.uniform(-15, 10),
        ]
    )
    return {
        "descending_aorta": descending,
        "esophagus": esophagus,
        "esophagus_air": esophagus_air,
        "svc": svc,
        "ivc": ivc,
        "pulmonary_arteries": _pulmonary_arteries(rng, aorta),
        "pulmonary_veins": _pulmonary_veins(rng, heart.atria[0]),
        "airways": _airways(rng, carina),
        "lung_vessels": _lung_trees(rng, carina),
    }


def _entry_height(heart: _Chambers, tube: VerticalTube, downwards: bool) -> float:
    """Height where a vertical tube's axis first enters the heart, scanning down (or up) its z range."""
    heights = np.arange(tube.z_high, tube.z_low, -1.0) if downwards else np.arange(tube.z_low, tube.z_high, 1.0)
    points = np.array([[*tube.center_at(h), h] for h in heights])
    inside = np.flatnonzero(heart.contains(points))
    return float(heights[inside[0]]) if len(inside) else float(heart.egg.center[2])


def _pulmonary_arteries(rng, aorta: Aorta) -> list[Segment]:
    """Pulmonary trunk left-anterior of the aortic root, right PA behind the ascending aorta, left PA."""
    trunk_radius = rng.uniform(12, 15.5)
    branch_radius = rng.uniform(8.5, 11)
    start = aorta.axis_point + (aorta.root_radius + trunk_radius + 1.0) * unit([0.65, -0.75, 0.0])
    start = start + [0.0, 0.0, 0.6 * trunk_radius + rng.uniform(2, 8)]
    fork = start + rng.uniform(30, 45) * unit([0.3, 0.5, 0.8])
    behind_aorta = aorta.center_at(float(fork[2])) + [0.0, aorta.radius + branch_radius + 3.0, 0.0]
    right_end = behind_aorta + [-rng.uniform(25, 40), rng.uniform(0, 10), rng.uniform(-5, 2)]
    left_end = fork + [rng.uniform(25, 35), rng.uniform(15, 30), rng.uniform(0, 8)]
    return [
        Segment(start, fork, trunk_radius, trunk_radius),
        Segment(fork, behind_aorta, branch_radius, branch_radius),
        Segment(behind_aorta, right_end, branch_radius, 0.8 * branch_radius),
        Segment(fork, left_end, branch_radius, 0.8 * branch_radius),
    ]


def _pulmonary_veins(rng, left_atrium: Ellipsoid) -> list[Segment]:
    """Upper and lower pulmonary veins entering the left atrium from each side."""
    veins = []
    for side in (-1.0, 1.0):
        for height in (-1.0, 1.0):
            start = left_atrium.center + [0.5 * side * left_atrium.radii[0], 0.0, 8.0 * height]
            end = start + [side * rng.uniform(40, 60), rng.uniform(0, 15), height * rng.uniform(3, 12)]
            veins.append(Segment(start, end, rng.uniform(5, 7.5), rng.uniform(3, 4.5)))
    return veins


def _airways(rng, carina) -> list[Segment]:
    """Trachea above the carina and the two main bronchi (lumen radii; walls are drawn 1.5 mm wider)."""
    right = carina + 25.0 * unit([-0.55, 0.1, -0.8])
    left = carina + 45.0 * unit([0.75, 0.15, -0.6])
    return [
        Segment(carina + [0.0, 0.0, 60.0], carina, rng.uniform(8, 10), rng.uniform(7, 8)),
        Segment(carina, right, rng.uniform(6, 7.5), 5.5),
        Segment(carina, left, rng.uniform(5.5, 7), 5.0),
    ]


def _lung_trees(rng, carina) -> list[Segment]:
    """Branching vessel trees from each hilum into the lung (drawn only over lung)."""
    segments = []
    for side in (-1.0, 1.0):
        hilum = carina + [side * rng.uniform(30, 45), rng.uniform(5, 20), -rng.uniform(15, 35)]
        for _ in range(7):
            direction = unit(rng.normal(size=3) + [side * 1.2, 0.0, -0.3])
            _grow_branch(rng, segments, hilum, direction, rng.uniform(25, 40), rng.uniform(3.0, 5.0), depth=4)
    return segments


def _grow_branch(rng, segments, start, direction, length, radius, depth) -> None:
    end = start + length * direction
    segments.append(Segment(start, end, radius, 0.85 * radius))
    if depth <= 1:
        return
    for _ in range(2):
        turn = rotation_about(random_perpendicular(rng, direction), np.deg2rad(rng.uniform(20, 45)))
        _grow_branch(rng, segments, end, turn @ direction, length * rng.uniform(0.6, 0.9), 0.7 * radius, depth - 1)


# ---------------------------------------------------------------------------------------------------------------
# Rendering: soft tissue on a (possibly coarser) grid, bones at full resolution with ownership


def render_soft_tissue(grid: Grid, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Soft-tissue CT without calcium, bone or noise, and the heart region as a fraction, on `grid`."""
    hu = layout.hu
    volume = np.empty(grid.shape, dtype=np.float32)
    volume[:] = _chest_slice(grid, layout)
    heart_region = np.zeros(grid.shape, dtype=np.float32)
    _paint_abdomen(volume, grid, layout)
    _paint_collars(volume, grid, layout)
    paint_tube(volume, grid, layout.descending_aorta, hu["blood"])
    paint_tube(volume, grid, layout.esophagus, hu["muscle"])
    if layout.esophagus_air is not None:
        paint_tube(volume, grid, layout.esophagus_air, hu["air"])
    paint_tube(volume, grid, layout.ivc, hu["blood"])
    paint_segments(
        volume,
        grid,
        [segment.widened(1.5) for segment in layout.airways],
        hu["muscle"],
    )
    paint_segments(volume, grid, layout.airways, hu["air"])
    _paint_heart(volume, grid, layout, heart_region)
    paint_segments(volume, grid, layout.pulmonary_arteries, hu["blood"])
    paint_segments(volume, grid, layout.pulmonary_veins, hu["blood"])
    coronary = layout.coronary
    for artery in coronary.arteries:
        fat = coronary.sleeve_mm + (LEFT_MAIN_EXTRA_FAT_MM if artery.name == "LM" else 0.0)
        sleeve = paint_segments(volume, grid, artery.pieces(fat), hu["epicardial_fat"])
        _include(heart_region, sleeve)
    root, ascending = layout.aortic_tubes
    paint_tube(volume, grid, ascending, hu["blood"])
    paint_tube(volume, grid, root, hu["blood"])
    _include(heart_region, tube_fraction(grid, root, grow=6.0))
    paint_tube(volume, grid, layout.svc, hu["blood"])
    for artery in coronary.arteries:
        paint_segments(volume, grid, artery.pieces(), hu["blood"])
    paint_segments(volume, grid, layout.lung_vessels, hu["blood"], below_hu=-400.0)
    return volume, heart_region


def _paint_collars(volume, grid: Grid, layout: Layout) -> None:
    """Mediastinal fat around the great vessels and the oesophagus (the heart is drawn over it)."""
    collar, fat = layout.collar_mm, layout.hu["mediastinal_fat"]
    _, ascending = layout.aortic_tubes
    for tube in (layout.descending_aorta, layout.esophagus, ascending, layout.svc):
        covered = tube_fraction(grid, tube, collar)
        if covered is not None:
            blend(volume[covered[0]], covered[1], fat)
    paint_segments(volume, grid, [segment.widened(collar) for segment in layout.pulmonary_arteries], fat)


def _include(region: np.ndarray, painted) -> None:
    if painted is not None:
        crop, fraction = painted
        np.maximum(region[crop], fraction, out=region[crop])


def _chest_slice(grid: Grid, layout: Layout) -> np.ndarray:
    """One axial slice of body wall, lungs and mediastinal fat (the same at every height)."""
    hu, chest, spine = layout.hu, layout.chest, layout.spine
    x = grid.x.astype(np.float32)[None, :]
    y = grid.y.astype(np.float32)[:, None]
    edge = grid.edge_mm
    plane = np.full((len(grid.y), len(grid.x)), hu["air"], dtype=np.float32)
    blend(plane, ellipse_fraction(x, y, chest.body_center, chest.body_half, edge), hu["fat"])
    blend(plane, ellipse_fraction(x, y, chest.body_center, chest.muscle_half, edge), hu["muscle"])
    lung = hu["lung"] + hu["lung_gradient"] * (y - chest.cavity_center[1])
    blend(plane, ellipse_fraction(x, y, chest.cavity_center, chest.cavity_half, edge), lung)
    paraspinal = (spine.body_half[0] + 5.0, spine.body_half[1] + 4.0)
    blend(plane, ellipse_fraction(x, y, (spine.center[0], spine.center[1] + 3.0), paraspinal, edge), hu["muscle"])
    return plane


def _paint_abdomen(volume, grid: Grid, layout: Layout) -> None:
    """Abdomen below both hemidiaphragms (their union, each with its organ's density), replacing lung only."""
    top = max(dome.apex[2] for dome in layout.domes) + float(grid.edge_mm[2])
    crop = grid.crop(np.array([-1e9, -1e9, -1e9]), np.array([1e9, 1e9, top]))
    if crop is None:
        return
    for slab in grid.slabs(crop):
        x, y, z = grid.axes(slab)
        fractions = [_dome_fraction(x, y, z, dome, grid.edge_mm) for dome in layout.domes]
        densities = [layout.hu[dome.hu_key] for dome in layout.domes]
        region = volume[slab]
        below = np.maximum(*fractions)
        blend(region, below * (region < -400.0), np.where(fractions[0] >= fractions[1], *densities).astype(np.float32))


def _dome_fraction(x, y, z, dome: Dome, edge_mm) -> np.ndarray:
    """Fraction below one paraboloid dome."""
    ax, ay, az = dome.apex
    dx, dy = (x - ax) / dome.radius, (y - ay) / dome.radius
    return ramp(z - az + 0.5 * dome.radius * (dx * dx + dy * dy), dx, dy, 1.0, edge_mm)


def _paint_heart(volume, grid: Grid, layout: Layout, heart_region) -> None:
    """Pericardium, epicardial fat and myocardium of ventricles and atria; marks the heart region."""
    hu, heart = layout.hu, layout.heart
    envelope = layout.envelope
    fat = heart.grown(layout.fat_mm, layout.fat_shift)
    grows = (layout.atrial_fat_mm + layout.pericardium_mm, layout.atrial_fat_mm, 0.0)
    low, high = layout.heart_bounds()
    crop = grid.crop(low - 2 * grid.edge_mm, high + 2 * grid.edge_mm)
    if crop is None:
        return
    edge = grid.edge_mm
    for slab in grid.slabs(crop):
        local = heart.local(*grid.axes(slab))
        layers = [
            envelope.fraction(local, edge, heart.frame.T @ (envelope.center - heart.center)),
            fat.fraction(local, edge, heart.frame.T @ (fat.center - heart.center)),
            heart.fraction(local, edge),
        ]
        for atrium in layout.atria:
            low, high = atrium.bounds(grows[0] + 2 * float(edge.max()))
            sub = intersect(grid.crop(low, high), slab)
            if sub is None:
                continue
            within = tuple(slice(s.start - c.start, s.stop - c.start) for s, c in zip(sub, slab))
            for layer, fraction in zip(layers, atrium.fractions(*grid.axes(sub), edge, grows)):
                np.maximum(layer[within], fraction, out=layer[within])
        region = volume[slab]
        for layer, key in zip(layers, ("pericardium", "epicardial_fat", "myocardium")):
            blend(region, layer, hu[key])
        np.maximum(heart_region[slab], layers[0], out=heart_region[slab])


def paint_bones(volume, grid: Grid, layout: Layout, tracker: Tracker) -> None:
    """Spine, sternum and ribs (cortex and marrow), owned by one bone object; discs, canal and cartilage not."""
    owner = tracker.new_owner(BONE_CODE)
    _paint_spine(volume, grid, layout, tracker, owner)
    _paint_sternum(volume, grid, layout, tracker, owner)
    _paint_ribs(volume, grid, layout, tracker, owner)


def _paint_spine(volume, grid: Grid, layout: Layout, tracker: Tracker, owner: int) -> None:
    hu, spine = layout.hu, layout.spine
    reach_x = spine.body_half[0] + 12.0
    low = np.array([spine.center[0] - reach_x, spine.center[1] - spine.body_half[1] - 3.0, -1e9])
    high = np.array([spine.center[0] + reach_x, spine.spinous_center[1] + spine.spinous_half[1] + 3.0, 1e9])
    crop = grid.crop(low, high)
    if crop is None:
        return
    edge, cortex = grid.edge_mm, spine.cortex_mm
    for slab in grid.slabs(crop):
        x, y, z = grid.axes(slab)
        body = ellipse_fraction(x, y, spine.center, spine.body_half, edge)
        canal = ellipse_fraction(x, y, spine.canal_center, spine.canal_half, edge)
        region = volume[slab]
        blend(region, body, hu["disc"])
        blend(region, canal, hu["csf"])
        bone = region.copy()
        in_body = periodic_slab_fraction(z, spine.phase, spine.period, spine.body_height, edge[2])
        in_marrow = periodic_slab_fraction(z, spine.phase, spine.period, spine.body_height - 2 * cortex, edge[2])
        in_arch = periodic_slab_fraction(z, spine.phase + 3.0, spine.period, 0.8 * spine.body_height, edge[2])
        blend(bone, body * in_body, hu["vertebra_cortex"])
        inner = (spine.body_half[0] - cortex, spine.body_half[1] - cortex)
        blend(bone, ellipse_fraction(x, y, spine.center, inner, edge) * in_marrow, hu["marrow"])
        for center, half, grow in (
            (spine.canal_center, spine.canal_half, spine.arch_mm),
            (spine.spinous_center, spine.spinous_half, 0.0),
        ):
            outer = (half[0] + grow, half[1] + grow)
            blend(bone, ellipse_fraction(x, y, center, outer, edge) * in_arch, hu["vertebra_cortex"])
            inner = (outer[0] - cortex, outer[1] - cortex)
            blend(bone, ellipse_fraction(x, y, center, inner, edge) * in_arch, hu["marrow"])
        blend(bone, canal, hu["csf"])
        tracker.paint(volume, slab, bone, owner)


def _paint_sternum(volume, grid: Grid, layout: Layout, tracker: Tracker, owner: int) -> None:
    hu, sternum = layout.hu, layout.sternum
    cx, cy, cz = sternum.center
    z_top, z_bottom = grid.z[-1], max(grid.z[0], sternum.z_low)
    ys = [cy + sternum.slope * (h - cz) for h in (z_top, z_bottom)]
    low = np.array([cx - sternum.half[0] - 3.0, min(ys) - sternum.half[1] - 3.0, sternum.z_low - grid.edge_mm[2]])
    high = np.array([cx + sternum.half[0] + 3.0, max(ys) + sternum.half[1] + 3.0, 1e9])
    crop = grid.crop(low, high)
    if crop is None:
        return
    x, y, z = grid.axes(crop)
    present = slab_fraction(z, sternum.z_low, 1e6, grid.edge_mm[2])
    bone = volume[crop].copy()
    for grow, key in ((0.0, "rib_cortex"), (-sternum.cortex_mm, "marrow")):
        hx, hy = sternum.half[0] + grow, sternum.half[1] + grow
        dx, dy = (x - cx) / hx, (y - (cy + sternum.slope * (z - cz))) / hy
        f = dx * dx + dy * dy - 1.0
        fraction = ramp(f, 2 * dx / hx, 2 * dy / hy, -2 * dy * sternum.slope / hy, grid.edge_mm)
        blend(bone, fraction * present, hu[key])
    tracker.paint(volume, crop, bone, owner)


def _paint_ribs(volume, grid: Grid, layout: Layout, tracker: Tracker, owner: int) -> None:
    """Rib bands near the cavity outline, computed only on the pixels they can reach."""
    hu, ribs, chest = layout.hu, layout.ribs, layout.chest
    x = grid.x[None, :] - chest.cavity_center[0]
    y = grid.y[:, None] - chest.cavity_center[1]
    width, depth = chest.cavity_half
    ex, ey = x / width, y / depth
    theta = np.arctan2(np.abs(ex), ey)  # 0 at the back, π at the front
    local_radius = np.hypot(width * np.sin(theta), depth * np.cos(theta))
    radial = (np.hypot(ex, ey) - 1.0) * local_radius - (ribs.radial_half + 0.5)
    reach = ribs.radial_half + 2.0 * float(grid.edge_mm[0])
    near = (np.abs(radial) <= reach) & (theta > 0.1 * np.pi) & (theta < 0.95 * np.pi)
    rows, columns = np.nonzero(near)
    if len(rows) == 0:
        return
    theta, radial, local_radius = theta[rows, columns], radial[rows, columns], local_radius[rows, columns]
    side = (x[0, columns] > 0).astype(int)
    fraction_of_turn = theta / np.pi
    centre_z = np.asarray(ribs.phases)[side] - ribs.drop * fraction_of_turn**ribs.power
    slope = -ribs.drop * ribs.power * fraction_of_turn ** (ribs.power - 1) / (np.pi * local_radius)
    cos_incline = 1.0 / np.sqrt(1.0 + slope**2)
    cartilage = fraction_of_turn > ribs.cartilage_from
    calcified = cartilage & (fraction_of_turn < ribs.cartilage_calcified_to)
    plain_cartilage = cartilage & ~calcified
    grows = (0.0, -ribs.cortex_mm, -ribs.calcified_shell_mm)
    step = max(1, SLAB_VOXELS // len(rows))
    for start in range(0, len(grid.z), step):
        slices = slice(start, min(start + step, len(grid.z)))
        offset = (grid.z[slices][:, None] - centre_z) / ribs.pitch
        across = (offset - np.round(offset)) * ribs.pitch * cos_incline  # distance from the rib's axis, along z
        outer, inner, core = (
            _band_fraction(radial, across, slope, cos_incline, ribs.radial_half + grow, ribs.height_half + grow, grid)
            for grow in grows
        )
        region = (slices, rows, columns)
        bone = volume[region]
        rim = np.where(cartilage, np.where(calcified, hu["cartilage_calcium"], hu["cartilage"]), hu["rib_cortex"])
        blend(bone, outer, rim.astype(np.float32))
        blend(bone, inner * ~cartilage, hu["marrow"])
        blend(bone, core * calcified, hu["cartilage"])  # calcified cartilage: a dense rim round a soft core
        # plain costal cartilage is soft tissue, not owned; calcified cartilage is bone
        volume[region] = np.where(plain_cartilage, bone, volume[region])
        tracker.paint(volume, region, bone, owner)


def _band_fraction(radial, across, slope, cos_incline, radial_half, height_half, grid: Grid) -> np.ndarray:
    """Fraction inside a rib of elliptic section (`radial_half` × `height_half` mm) winding with `slope` dz/ds."""
    f = (radial / radial_half) ** 2 + (across / height_half) ** 2 - 1.0
    g_z = 2.0 * across * cos_incline / height_half**2
    return ramp(f, 2.0 * radial / radial_half**2, -g_z * slope, g_z, grid.edge_mm).astype(np.float32)

"""Calcified and metal objects of the synthetic cardiac CT: coronary plaques, aortic, aortic valve and mitral annulus
calcium, stents, pacemaker leads, sternal wires and surgical clips.

Coronary plaques range from 1 mm² specks through spots to arcs running along the vessel and dense, nearly
circumferential proximal LM/LAD/RCA plaques of 100–200 mm² a slice peaking at 1,000–2,200 HU. Aortic root and
valve calcium are drawn right beside the coronary ostia, mitral annular calcium beside the LCX in the left
atrioventricular groove. Each object is a small solid (a union of ellipsoids, an aortic wall patch, an arc of the
mitral annulus, a shell along a vessel, a chain of tube pieces) whose voxel occupancy is supersampled over the
pixel and the slice profile on a crop around it, blurred by the scanner's Gaussian PSF (blooming) and the rest of
its in-plane response (sharp-kernel edge enhancement, motion), and mixed into the image at the density that gives
it a drawn noise-free peak HU. An object too small to reach that peak with a physical density is enlarged. Metal objects
also get a few bright and dark streaks across their slices.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import numpy as np
from scipy import ndimage
from synthetic_anatomy import Artery, Egg, Layout, resample
from synthetic_shapes import Grid, Tracker, VerticalTube, intersect, random_perpendicular, rotation_about, unit

SUBSAMPLE_XY_MM = 0.2
SUBSAMPLE_Z_MM = 0.3
MAX_CALCIUM_HU = 3000.0  # densest calcium: a smaller object cannot reach its drawn peak, so it is enlarged
MAX_METAL_HU = 30000.0
ENLARGEMENT = 1.25
MAX_ENLARGEMENTS = 4
BURDEN_LEVELS = (0, 1, 2, 3, 4)
BURDEN_PROBABILITIES = (0.2, 0.15, 0.25, 0.2, 0.2)
PLAQUE_SHAPES = {"speck": 0.25, "spot": 0.5, "arc": 0.25}  # shape of each ordinary plaque
SPECK_SIZE_MM = (0.6, 1.3)  # length and width of a speck: about 1 mm² on a slice
ARC_LENGTH_MM = (5.0, 30.0)  # calcium running along the vessel
DENSE_PROBABILITY = {0: 0.0, 1: 0.0, 2: 0.1, 3: 0.35, 4: 0.7}  # chance of a dense proximal plaque per burden level
DENSE_ARTERIES = ("LM", "LAD", "RCA")
DENSE_REACH_MM = 35.0  # "proximal": within this arc length of the artery's origin
DENSE_LENGTH_MM = (10.0, 25.0)
DENSE_THICKNESS_MM = (2.0, 3.5)
DENSE_PEAK_HU = (1000.0, 2200.0)
PEAK_HU = (200.0, 1600.0)  # ordinary plaques (a faint share nearer 130 HU)
METAL_KINDS = ("stent", "lead", "wire", "clip")


@dataclass(frozen=True)
class Blobs:
    """Union of ellipsoids: centres (n, 3), axes (n, 3, 3) with unit columns, radii (n, 3)."""

    centers: np.ndarray
    axes: np.ndarray
    radii: np.ndarray

    def bounds(self):
        reach = np.sqrt(np.einsum("nij,nj->ni", self.axes**2, self.radii**2))
        return (self.centers - reach).min(axis=0), (self.centers + reach).max(axis=0)

    def inside(self, x, y, z):
        result = np.zeros(np.broadcast_shapes(x.shape, y.shape, z.shape), dtype=bool)
        for center, axes, radii in zip(self.centers, self.axes, self.radii):
            shape = axes @ np.diag(radii**-2.0) @ axes.T
            dx, dy, dz = x - center[0], y - center[1], z - center[2]
            q = (
                shape[0, 0] * dx * dx
                + shape[1, 1] * dy * dy
                + shape[2, 2] * dz * dz
                + 2 * (shape[0, 1] * dx * dy + shape[0, 2] * dx * dz + shape[1, 2] * dy * dz)
            )
            result |= q <= 1.0
        return result

    def scaled(self, factor: float) -> Blobs:
        return replace(self, radii=self.radii * factor)

    def skeleton(self) -> tuple[np.ndarray, float]:
        return self.centers, float(self.radii.max())


@dataclass(frozen=True)
class WallPatch:
    """Calcium in an aortic wall: a curved plate of `thickness` inside the wall, elliptic in (arc, height)."""

    tube: VerticalTube
    angle: float  # around the axis, from +x towards +y
    z_center: float
    arc_mm: float
    height_mm: float
    thickness_mm: float

    def center(self) -> np.ndarray:
        cx, cy = self.tube.center_at(self.z_center)
        radius = self.tube.radius - 0.5 * self.thickness_mm
        return np.array([cx + radius * np.cos(self.angle), cy + radius * np.sin(self.angle), self.z_center])

    def bounds(self):
        turns = self.angle + np.linspace(-0.5, 0.5, 17) * self.arc_mm / self.tube.radius
        points = []
        for z in (self.z_center - 0.5 * self.height_mm, self.z_center + 0.5 * self.height_mm):
            cx, cy = self.tube.center_at(z)
            for radius in (self.tube.radius - self.thickness_mm, self.tube.radius + 0.3):
                points += [[cx + radius * np.cos(t), cy + radius * np.sin(t), z] for t in turns]
        return np.min(points, axis=0), np.max(points, axis=0)

    def inside(self, x, y, z):
        cx, cy = self.tube.center_at(z)
        dx, dy = x - cx, y - cy
        rho = np.sqrt(dx * dx + dy * dy)
        turn = (np.arctan2(dy, dx) - self.angle + np.pi) % (2 * np.pi) - np.pi
        in_wall = (rho <= self.tube.radius + 0.3) & (rho >= self.tube.radius - self.thickness_mm)
        along = (turn * self.tube.radius / (0.5 * self.arc_mm)) ** 2 + (
            (z - self.z_center) / (0.5 * self.height_mm)
        ) ** 2
        return in_wall & (along <= 1.0)

    def scaled(self, factor: float) -> WallPatch:
        return replace(
            self,
            arc_mm=self.arc_mm * factor,
            height_mm=self.height_mm * factor,
            thickness_mm=self.thickness_mm * factor,
        )


@dataclass(frozen=True)
class AnnulusArc:
    """Mitral annular calcification: an arc of a torus around the annulus, centred on direction `middle`."""

    ring_center: np.ndarray
    normal: np.ndarray
    middle: np.ndarray
    ring_radius: float
    tube_radius: float
    half_angle: float

    def center(self) -> np.ndarray:
        """Middle of the arc."""
        return self.ring_center + self.ring_radius * self.middle

    def bounds(self):
        turns = np.linspace(-self.half_angle, self.half_angle, 33)[:, None]
        side = np.cross(self.normal, self.middle)
        points = self.ring_center + self.ring_radius * (np.cos(turns) * self.middle + np.sin(turns) * side)
        return points.min(axis=0) - self.tube_radius, points.max(axis=0) + self.tube_radius

    def inside(self, x, y, z):
        dx, dy, dz = x - self.ring_center[0], y - self.ring_center[1], z - self.ring_center[2]
        axial = dx * self.normal[0] + dy * self.normal[1] + dz * self.normal[2]
        side = np.cross(self.normal, self.middle)
        u = dx * self.middle[0] + dy * self.middle[1] + dz * self.middle[2]
        v = dx * side[0] + dy * side[1] + dz * side[2]
        rho = np.sqrt(u * u + v * v)
        in_tube = (rho - self.ring_radius) ** 2 + axial * axial <= self.tube_radius**2
        return in_tube & (np.abs(np.arctan2(v, u)) <= self.half_angle)

    def scaled(self, factor: float) -> AnnulusArc:
        return replace(self, tube_radius=self.tube_radius * factor)


@dataclass(frozen=True)
class VesselShell:
    """Calcium in a vessel wall along its centreline: a shell between `inner` and `outer` radii (per point), over the
    sector of half-angle `half_angle` around `toward` (a full ring from π)."""

    points: np.ndarray
    inner: np.ndarray
    outer: np.ndarray
    toward: np.ndarray
    half_angle: float

    def bounds(self):
        reach = float(self.outer.max())
        return self.points.min(axis=0) - reach, self.points.max(axis=0) + reach

    def scaled(self, factor: float) -> VesselShell:
        return replace(self, outer=self.inner + (self.outer - self.inner) * factor)

    def skeleton(self) -> tuple[np.ndarray, float]:
        return self.points, float(self.outer.max())

    def pieces(self):
        """(start, end, reach, inside) of each straight piece."""
        for n in range(len(self.points) - 1):
            start, end = self.points[n], self.points[n + 1]
            inner = 0.5 * float(self.inner[n] + self.inner[n + 1])
            outer = 0.5 * float(self.outer[n] + self.outer[n + 1])
            yield start, end, outer, partial(self.inside_piece, start, end, inner, outer)

    def inside_piece(self, start, end, inner, outer, x, y, z):
        axis = unit(end - start)
        length = float(np.linalg.norm(end - start))
        dx, dy, dz = x - start[0], y - start[1], z - start[2]
        along = dx * axis[0] + dy * axis[1] + dz * axis[2]
        rx, ry, rz = dx - along * axis[0], dy - along * axis[1], dz - along * axis[2]
        across2 = rx * rx + ry * ry + rz * rz
        result = (along >= 0.0) & (along < length) & (across2 <= outer**2) & (across2 >= inner**2)
        if self.half_angle < np.pi:
            middle = unit(self.toward - (self.toward @ axis) * axis)
            cosine = (rx * middle[0] + ry * middle[1] + rz * middle[2]) / np.sqrt(across2 + 1e-9)
            result &= cosine >= np.cos(self.half_angle)
        return result


@dataclass(frozen=True)
class TubeChain:
    """Metal along a centreline: a solid wire (`wall_mm` 0) or a stent shell of `wall_mm` with strut rings."""

    points: np.ndarray
    radii: np.ndarray
    wall_mm: float = 0.0
    strut_period_mm: float = 0.0

    def bounds(self):
        reach = self.radii.max() + self.wall_mm
        return self.points.min(axis=0) - reach, self.points.max(axis=0) + reach

    def scaled(self, factor: float) -> TubeChain:
        return replace(self, radii=self.radii * factor)

    def pieces(self):
        """(start, end, reach, inside) of each straight piece."""
        arc = 0.0
        for n in range(len(self.points) - 1):
            start, end = self.points[n], self.points[n + 1]
            radius = 0.5 * (self.radii[n] + self.radii[n + 1])
            yield start, end, radius + self.wall_mm, partial(self.inside_piece, start, end, radius, arc)
            arc += float(np.linalg.norm(end - start))

    def inside_piece(self, start, end, radius, arc_start, x, y, z):
        axis = end - start
        length = float(np.linalg.norm(axis))
        axis = axis / length
        dx, dy, dz = x - start[0], y - start[1], z - start[2]
        along = dx * axis[0] + dy * axis[1] + dz * axis[2]
        across2 = dx * dx + dy * dy + dz * dz - along * along
        within = (along >= 0.0) & (along < length)
        if self.wall_mm == 0.0:
            return within & (across2 <= radius**2)
        shell = (across2 <= (radius + 0.5 * self.wall_mm) ** 2) & (across2 >= (radius - 0.5 * self.wall_mm) ** 2)
        struts = ((arc_start + along) / self.strut_period_mm) % 1.0 < 0.5
        return within & shell & struts


@dataclass
class CalcifiedObject:
    """One object to draw: its solid, label code, drawn noise-free peak (HU), and what it is."""

    solid: Blobs | WallPatch | AnnulusArc | VesselShell | TubeChain
    code: int
    peak_hu: float
    center: np.ndarray
    kind: str  # speck, spot, arc, dense (coronary); aortic, ostial aortic; valve, mitral; stent, lead, wire, clip

    @property
    def metal(self) -> bool:
        return self.kind in METAL_KINDS


# ---------------------------------------------------------------------------------------------------------------
# Drawing the objects of one case


def draw_objects(rng, layout: Layout) -> tuple[int, list[CalcifiedObject]]:
    """The calcium burden level (0–4) and every calcified or metal object of one case."""
    level = int(rng.choice(BURDEN_LEVELS, p=BURDEN_PROBABILITIES))
    objects = _draw_plaques(rng, layout, level)
    objects += _draw_aortic_calcium(rng, layout, level)
    objects += _draw_valve_calcium(rng, layout, level)
    objects += _draw_metal(rng, layout, level)
    return level, objects


PLAQUE_COUNTS = {0: (0, 0), 1: (1, 2), 2: (2, 5), 3: (4, 12), 4: (8, 25)}
PLAQUE_LENGTH_MEDIAN_MM = {0: 2.0, 1: 2.0, 2: 3.0, 3: 3.5, 4: 5.0}
ARTERY_GROUPS = {1: 0.1, 2: 0.4, 3: 0.2, 4: 0.3}  # probability of each artery's code
OSTIAL_ARTERIES = ("LM", "RCA")  # branches leaving the aortic root
OSTIAL_CLEARANCE_MM = 1.5  # plaques keep this far from the aortic wall


def _draw_plaques(rng, layout: Layout, level: int) -> list[CalcifiedObject]:
    low, high = PLAQUE_COUNTS[level]
    count = int(rng.integers(low, high + 1))
    arteries = [a for a in layout.coronary.arteries if a.length > 3.0]
    plaques: list[CalcifiedObject] = []
    if rng.random() < DENSE_PROBABILITY[level]:
        for _ in range(1 if level < 4 or rng.random() < 0.6 else 2):
            for _attempt in range(10):
                plaque = _dense_plaque(rng, layout, arteries)
                if plaque is not None and all(_apart(plaque, other) for other in plaques):
                    plaques.append(plaque)
                    break
    for _ in range(count):
        for _attempt in range(20):
            plaque = _draw_plaque(rng, layout, arteries, level)
            if plaque is not None and all(_apart(plaque, other) for other in plaques):
                plaques.append(plaque)
                break
    return plaques


def _apart(first: CalcifiedObject, second: CalcifiedObject) -> bool:
    """Whether two plaques' skeletons (centres or centreline points, with their largest radius) stay 1 mm apart."""
    points_a, reach_a = first.solid.skeleton()
    points_b, reach_b = second.solid.skeleton()
    gaps = np.linalg.norm(points_a[:, None, :] - points_b[None, :, :], axis=-1)
    return float(gaps.min()) >= reach_a + reach_b + 1.0


def _draw_plaque(rng, layout: Layout, arteries: list[Artery], level: int) -> CalcifiedObject | None:
    """A wall calcification on a coronary artery: a speck, a spot elongated along it, or an arc along its course."""
    code = int(rng.choice(list(ARTERY_GROUPS), p=list(ARTERY_GROUPS.values())))
    candidates = [a for a in arteries if a.code == code]
    if not candidates:
        return None
    weights = np.array([a.length * (1.0 if a.name in ("LM", "LAD", "LCX", "RCA") else 0.5) for a in candidates])
    artery = candidates[int(rng.choice(len(candidates), p=weights / weights.sum()))]
    shape = str(rng.choice(list(PLAQUE_SHAPES), p=list(PLAQUE_SHAPES.values())))
    if shape == "arc":
        length = float(np.exp(rng.uniform(np.log(ARC_LENGTH_MM[0]), np.log(ARC_LENGTH_MM[1]))))
        start = OSTIAL_CLEARANCE_MM if artery.name in OSTIAL_ARTERIES else 0.5
        if artery.length - 1.0 - length <= start:
            return None
        s0 = start + (artery.length - 1.0 - length - start) * rng.beta(1.4, 2.2)
        solid = _shell(rng, layout, artery, s0, length, rng.uniform(0.6, 1.6), np.deg2rad(rng.uniform(30, 120)))
        peak = _draw_peak(rng, faint=level == 1)
        return CalcifiedObject(solid, artery.code, peak, _shell_center(solid), "arc")
    if shape == "speck":
        length, width = rng.uniform(*SPECK_SIZE_MM), rng.uniform(*SPECK_SIZE_MM)
        peak = float(rng.uniform(135, 400))
    else:
        length = float(np.clip(rng.lognormal(np.log(PLAQUE_LENGTH_MEDIAN_MM[level]), 0.55), 1.0, 20.0))
        width = rng.uniform(1.0, 2.4 + 0.2 * level)
        peak = _draw_peak(rng, faint=level == 1)
    start = 0.5 * length + OSTIAL_CLEARANCE_MM if artery.name in OSTIAL_ARTERIES else 1.0  # clear of the aorta
    if artery.length - 1.0 <= start:
        return None
    point, tangent, lumen = artery.at(start + (artery.length - 1.0 - start) * rng.beta(1.4, 2.2))
    across = random_perpendicular(rng, tangent)
    if across @ _heart_normal(layout.heart, point) < -0.3:
        across = -across
    center = point + lumen * rng.uniform(0.3, 0.8) * across
    width = min(width, 2.0 * lumen + 0.8)
    solid = _plaque_solid(rng, center, tangent, across, length, width)
    return CalcifiedObject(solid, artery.code, peak, center, shape)


def _dense_plaque(rng, layout: Layout, arteries: list[Artery]) -> CalcifiedObject | None:
    """A dense, nearly circumferential plaque in the proximal LM, LAD or RCA: 100–200 mm² a slice, ≥ 1,000 HU."""
    by_name = {a.name: a for a in arteries}
    names = [name for name in DENSE_ARTERIES if name in by_name]
    if not names:
        return None
    artery = by_name[str(rng.choice(names))]
    start = OSTIAL_CLEARANCE_MM if artery.name in OSTIAL_ARTERIES else 0.0
    room = min(artery.length - 1.0, DENSE_REACH_MM) - start
    if room < 4.0:
        return None
    length = min(rng.uniform(*DENSE_LENGTH_MM), room)
    s0 = start + rng.uniform(0.0, room - length)
    solid = _shell(rng, layout, artery, s0, length, rng.uniform(*DENSE_THICKNESS_MM), np.deg2rad(rng.uniform(130, 180)))
    return CalcifiedObject(solid, artery.code, float(rng.uniform(*DENSE_PEAK_HU)), _shell_center(solid), "dense")


def _shell(rng, layout: Layout, artery: Artery, s0: float, length: float, thickness: float, half_angle: float):
    """Wall calcium from arc length s0 over `length` mm of an artery, thickest in its middle, facing outwards."""
    arc = artery.arc
    targets = np.linspace(s0, s0 + length, max(2, int(np.ceil(length)) + 1))
    points = np.column_stack([np.interp(targets, arc, artery.points[:, n]) for n in range(3)])
    lumen = np.interp(targets, arc, artery.radii)
    inner = lumen * rng.uniform(0.6, 1.0)
    profile = np.sqrt(np.clip(1.0 - np.linspace(-1.0, 1.0, len(targets)) ** 2, 0.0, None))
    outer = inner + thickness * np.maximum(profile, 0.4)
    toward = _heart_normal(layout.heart, points[len(points) // 2])
    spin = rotation_about(unit(points[-1] - points[0]), rng.uniform(-1.0, 1.0))
    return VesselShell(points, inner, outer, spin @ toward, float(half_angle))


def _shell_center(shell: VesselShell) -> np.ndarray:
    """A point in the middle of a shell's calcium, on its wall."""
    n = len(shell.points) // 2
    axis = unit(shell.points[min(n + 1, len(shell.points) - 1)] - shell.points[max(n - 1, 0)])
    middle = unit(shell.toward - (shell.toward @ axis) * axis)
    return shell.points[n] + 0.5 * (shell.inner[n] + shell.outer[n]) * middle


def _plaque_solid(rng, center, tangent, across, length, width) -> Blobs:
    """An ellipsoid thin across the wall, with up to two smaller ones along the vessel when long."""
    axes = np.column_stack([tangent, across, np.cross(tangent, across)])
    radii = np.array([0.5 * length, 0.5 * width * rng.uniform(0.5, 0.9), 0.5 * width])
    centers, all_radii = [center], [radii]
    for _ in range(int(rng.integers(0, 3)) if length > 3.0 else 0):
        shift = rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 0.6) * 0.5 * length
        centers.append(center + shift * tangent + rng.normal(0, 0.2, 3))
        all_radii.append(radii * rng.uniform(0.5, 0.8))
    return Blobs(np.array(centers), np.repeat(axes[None], len(centers), axis=0), np.array(all_radii))


def _heart_normal(heart: Egg, point) -> np.ndarray:
    _, gx, gy, gz = heart.implicit(*heart.local(*np.asarray(point, float)))
    return unit([gx, gy, gz])


def _draw_peak(rng, faint: bool) -> float:
    """Noise-free peak density: often faint near 130 HU, otherwise log-uniform up to 1600 HU."""
    if faint:
        return float(rng.uniform(140, 320))
    if rng.random() < 0.15:
        return float(rng.uniform(135, 200))
    return _log_uniform(rng, *PEAK_HU)


def _log_uniform(rng, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _draw_aortic_calcium(rng, layout: Layout, level: int) -> list[CalcifiedObject]:
    z_low, z_high = layout.z_range
    aorta = layout.coronary.aorta
    root, ascending = layout.aortic_tubes
    places = (  # tube and the heights its calcium may sit at
        (layout.descending_aorta, z_low + 3, z_high - 3),
        (ascending, float(aorta.axis_point[2]) + 5, z_high - 3),
        (root, float(aorta.valve_center[2]) + 2, float(aorta.axis_point[2])),
    )
    objects = []
    for _ in range(min(int(rng.poisson(0.3 + 0.8 * level)), 10)):
        tube, low, high = places[int(rng.choice(3, p=[0.55, 0.3, 0.15]))]
        if high <= low:
            continue
        patch = WallPatch(
            tube,
            rng.uniform(-np.pi, np.pi),
            rng.uniform(low, high),
            rng.uniform(3, 15),
            rng.uniform(2, 12),
            rng.uniform(0.8, 2.2),
        )
        objects.append(CalcifiedObject(patch, 6, _log_uniform(rng, 200, 1200), patch.center(), "aortic"))
    return objects + _ostial_root_calcium(rng, layout, level)


def _ostial_root_calcium(rng, layout: Layout, level: int) -> list[CalcifiedObject]:
    """Aortic root wall calcium right beside the LM or RCA ostium (aortic, code 6), clear of the ostium itself."""
    root, _ = layout.aortic_tubes
    by_name = {a.name: a for a in layout.coronary.arteries}
    objects = []
    for name in OSTIAL_ARTERIES:
        if rng.random() >= 0.05 + 0.1 * level:
            continue
        artery = by_name[name]
        ostium = artery.points[0]
        cx, cy = root.center_at(float(ostium[2]))
        arc = rng.uniform(3, 10)
        clear = (float(artery.radii[0]) + 1.0 + 0.5 * arc) / root.radius  # radians beside the ostium
        angle = float(np.arctan2(ostium[1] - cy, ostium[0] - cx)) + rng.choice([-1.0, 1.0]) * (
            clear + rng.uniform(0.0, 0.3)
        )
        patch = WallPatch(
            root, angle, float(ostium[2]) + rng.uniform(-3, 3), arc, rng.uniform(2, 7), rng.uniform(0.8, 2.0)
        )
        objects.append(CalcifiedObject(patch, 6, _log_uniform(rng, 250, 1400), patch.center(), "ostial aortic"))
    return objects


def _draw_valve_calcium(rng, layout: Layout, level: int) -> list[CalcifiedObject]:
    """Aortic valve cusps (the left and right coronary cusps lie just below the LM and RCA ostia) and the mitral
    annulus beside the LCX: valve calcium, code 7."""
    aorta, heart = layout.coronary.aorta, layout.heart
    objects = []
    if rng.random() < 0.15 + 0.1 * level:
        across = random_perpendicular(rng, aorta.direction)
        side = np.cross(aorta.direction, across)
        cusps = []
        for ostium in layout.coronary.ostia:  # left and right coronary cusps face their ostia
            offset = ostium - aorta.valve_center
            cusps.append(float(np.arctan2(offset @ side, offset @ across)))
        cusps.append(float(np.angle(-np.exp(1j * cusps[0]) - np.exp(1j * cusps[1]))))  # non-coronary cusp
        for _ in range(int(rng.integers(1, 6))):
            angle = cusps[int(rng.integers(0, 3))] + rng.normal(0, 0.3)
            radial = rng.uniform(0.4, 0.9) * aorta.root_radius
            center = (
                aorta.valve_center
                + rng.uniform(0, 9) * aorta.direction
                + radial * (np.cos(angle) * across + np.sin(angle) * side)
            )
            axes = np.linalg.qr(rng.normal(size=(3, 3)))[0]
            blob = Blobs(center[None], axes[None], rng.uniform(1.0, 3.5, size=(1, 3)))
            objects.append(CalcifiedObject(blob, 7, _log_uniform(rng, 250, 1600), center, "valve"))
    if rng.random() < 0.1 + 0.07 * level:
        center, radius, phi = layout.coronary.mitral_ring
        arc = AnnulusArc(
            center,
            heart.frame[:, 0],
            heart.transverse(phi),
            radius,
            rng.uniform(1.0, 3.0),
            np.deg2rad(rng.uniform(20, 120)),
        )
        objects.append(CalcifiedObject(arc, 7, _log_uniform(rng, 250, 1500), arc.center(), "mitral"))
    return objects


STERNOTOMY_PROBABILITY = 0.1  # sternal wires, and surgical clips in most of these cases
CLIPS_ALONE_PROBABILITY = 0.03
LEAD_PROBABILITY = 0.08


def _draw_metal(rng, layout: Layout, level: int) -> list[CalcifiedObject]:
    objects = []
    if rng.random() < 0.02 + 0.04 * level:
        main = {a.name: a for a in layout.coronary.arteries}
        for _ in range(1 if rng.random() < 0.75 else 2):
            artery = main[str(rng.choice(["LAD", "RCA", "LCX"], p=[0.5, 0.3, 0.2]))]
            objects.append(_stent(rng, artery))
    if rng.random() < LEAD_PROBABILITY:
        objects.append(_lead(rng, layout, atrial=False))
        if rng.random() < 0.4:
            objects.append(_lead(rng, layout, atrial=True))
    sternotomy = rng.random() < STERNOTOMY_PROBABILITY
    if sternotomy:
        objects += _sternal_wires(rng, layout)
    if (sternotomy and rng.random() < 0.7) or rng.random() < CLIPS_ALONE_PROBABILITY:
        objects += [_clip(rng, layout) for _ in range(int(rng.integers(2, 9)))]
    return objects


def _stent(rng, artery: Artery) -> CalcifiedObject:
    start = rng.uniform(0.05, 0.5) * artery.length
    length = min(rng.uniform(8, 30), artery.length - start - 2.0)
    arc = artery.arc
    inside = (arc >= start) & (arc <= start + length)
    points = resample(artery.points[inside], 2.0)
    radii = np.interp(np.linspace(start, start + length, len(points)), arc, artery.radii) + 0.15
    chain = TubeChain(points, radii, wall_mm=0.35, strut_period_mm=rng.uniform(1.0, 1.6))
    return CalcifiedObject(chain, 9, float(rng.uniform(2200, 3500)), points[len(points) // 2], "stent")


def _lead(rng, layout: Layout, atrial: bool) -> CalcifiedObject:
    """Pacemaker lead: down the superior vena cava into the right atrium, then to the right ventricular apex (or,
    for an atrial lead, up into the right atrial appendage)."""
    heart, svc = layout.heart, layout.svc
    top = np.array([*svc.center_at(layout.z_range[1] + 5), layout.z_range[1] + 5])
    entry = np.array([*svc.center_at(svc.z_low + 10), svc.z_low + 10])
    atrium, _ = heart.surface(-0.2, heart.angle_of([-1.0, 0.0, 0.2]), -10.0)
    if atrial:
        tip, _ = heart.surface(-0.55, heart.angle_of([-0.6, -0.8, 0.3]), -5.0)
    else:
        tip, _ = heart.surface(0.75, heart.angle_of([-0.2, -1.0, -0.3]), -6.0)
    u = np.linspace(0, 1, 40)[:, None]
    bend = (1 - u) ** 2 * entry + 2 * u * (1 - u) * atrium + u**2 * tip
    points = resample(np.vstack([top, bend]), 3.0)
    radii = np.full(len(points), rng.uniform(0.5, 0.8))
    radii[-2:] = 1.2  # tip electrode
    return CalcifiedObject(TubeChain(points, radii), 9, float(rng.uniform(2500, 4000)), tip, "lead")


def _sternal_wires(rng, layout: Layout) -> list[CalcifiedObject]:
    """Sternotomy wires: loops round the sternum every 15–30 mm, each with its twisted knot in front."""
    sternum = layout.sternum
    cx, cy, cz = sternum.center
    z_low, z_high = max(sternum.z_low + 5.0, layout.z_range[0]), layout.z_range[1] + 10.0
    wires = []
    z = z_low + rng.uniform(0, 15)
    while z < z_high and len(wires) < 7:
        y = cy + sternum.slope * (z - cz)
        hx, hy = sternum.half[0] + rng.uniform(0.8, 2.0), sternum.half[1] + rng.uniform(0.8, 2.0)
        turns = np.linspace(0.0, 2 * np.pi, 40)
        tilt = rng.uniform(-0.1, 0.1)
        loop = np.column_stack([cx + hx * np.sin(turns), y - hy * np.cos(turns), z + tilt * hx * np.sin(turns)])
        knot = loop[0] + np.outer(np.linspace(0.0, 1.0, 4), [rng.uniform(-2, 2), -rng.uniform(3, 7), 0.0])
        points = np.vstack([loop, knot[1:]])
        radii = np.full(len(points), rng.uniform(0.35, 0.6))
        wires.append(CalcifiedObject(TubeChain(points, radii), 9, float(rng.uniform(2500, 3800)), loop[0], "wire"))
        z += rng.uniform(15, 30)
    return wires


def _clip(rng, layout: Layout) -> CalcifiedObject:
    """A surgical clip (a small V of wire) on the heart surface beside the grafts, or behind the sternum."""
    heart = layout.heart
    if rng.random() < 0.6:
        point, normal = heart.surface(rng.uniform(-0.5, 0.6), rng.uniform(0, 2 * np.pi), rng.uniform(4, 12))
    else:
        sternum = layout.sternum
        z = rng.uniform(*layout.z_range)
        y = sternum.center[1] + sternum.slope * (z - sternum.center[2]) + sternum.half[1] + rng.uniform(3, 10)
        point = np.array([sternum.center[0] + rng.choice([-1.0, 1.0]) * rng.uniform(15, 35), y, z])
    direction = unit(rng.normal(size=3))
    spread = rotation_about(random_perpendicular(rng, direction), np.deg2rad(rng.uniform(10, 20)))
    length = rng.uniform(2.5, 4.5)
    points = np.array([point + length * spread @ direction, point, point + length * spread.T @ direction])
    radii = np.full(3, rng.uniform(0.3, 0.5))
    return CalcifiedObject(TubeChain(points, radii), 9, float(rng.uniform(2000, 3500)), point, "clip")


# ---------------------------------------------------------------------------------------------------------------
# Drawing into the image


def occupancy(grid: Grid, crop, inside) -> np.ndarray:
    """Fraction of each voxel of `crop` inside a solid, supersampled over the pixel and the slice profile."""
    k, j, i = crop
    n_xy = int(np.clip(np.ceil(grid.pixel_mm / SUBSAMPLE_XY_MM), 2, 4))
    n_z = int(np.clip(np.ceil(grid.thickness_mm / SUBSAMPLE_Z_MM), 2, 10))
    in_plane = ((np.arange(n_xy) + 0.5) / n_xy - 0.5) * grid.pixel_mm
    along_z = ((np.arange(n_z) + 0.5) / n_z - 0.5) * grid.thickness_mm
    xs = (grid.x[i][:, None] + in_plane).ravel().astype(np.float32)
    ys = (grid.y[j][:, None] + in_plane).ravel().astype(np.float32)
    zs = (grid.z[k][:, None] + along_z).ravel().astype(np.float32)
    samples = inside(xs[None, None, :], ys[None, :, None], zs[:, None, None])
    shape = (k.stop - k.start, n_z, j.stop - j.start, n_xy, i.stop - i.start, n_xy)
    return samples.reshape(shape).mean(axis=(1, 3, 5), dtype=np.float32)


def solid_occupancy(grid: Grid, crop, solid) -> np.ndarray:
    """Occupancy of any solid on `crop`; tube chains and vessel shells piece by piece on sub-crops."""
    if not isinstance(solid, (TubeChain, VesselShell)):
        return occupancy(grid, crop, solid.inside)
    total = np.zeros(tuple(s.stop - s.start for s in crop), dtype=np.float32)
    for start, end, reach, inside in solid.pieces():
        reach = reach + grid.pixel_mm
        box = (np.minimum(start, end) - reach, np.maximum(start, end) + reach + [0, 0, grid.thickness_mm])
        sub = intersect(grid.crop(*box), crop)
        if sub is None:
            continue
        local = tuple(slice(s.start - c.start, s.stop - c.start) for s, c in zip(sub, crop))
        total[local] += occupancy(grid, sub, inside)
    return np.minimum(total, 1.0, out=total)


def draw_object(
    volume, grid: Grid, tracker: Tracker, obj: CalcifiedObject, owner: int, psf_mm, psf_z_mm, response=None
):
    """Blur, scale to the drawn peak and paint one object.

    `response`, when given, is (margin_mm, function(blurred, crop, obj) → blurred): the rest of the scanner's
    in-plane response after its Gaussian PSF (a sharp kernel's edge enhancement, motion blur), applied to the
    object's blurred occupancy on a crop widened by margin_mm in-plane.
    Returns (crop, noise-free peak HU, the solid as drawn, its contribution on the crop), or None off the grid.
    """
    fitted = _fit_density(volume, grid, obj, psf_mm, psf_z_mm, response)
    if fitted is None:
        return None
    crop, blurred, density, solid = fitted
    background = volume[crop]
    contribution = blurred * (np.float32(density) - background)
    painted = background + contribution
    tracker.paint(volume, crop, painted, owner)
    return crop, float(painted.max()), solid, contribution


def _fit_density(volume, grid: Grid, obj: CalcifiedObject, psf_mm: float, psf_z_mm: float, response=None):
    """(crop, blurred occupancy, density HU, solid) giving the drawn peak, enlarging calcium that would need a
    denser than physical density; None when the object misses the grid."""
    sigma = (psf_z_mm / grid.spacing_mm, psf_mm / grid.pixel_mm, psf_mm / grid.pixel_mm)
    extra = response[0] if response is not None else 0.0
    margin = np.array([3.0 * psf_mm + 2 * grid.pixel_mm + extra] * 2 + [3.0 * psf_z_mm + grid.thickness_mm])
    max_density = MAX_METAL_HU if obj.metal else MAX_CALCIUM_HU
    solid, fitted = obj.solid, None
    for _ in range(MAX_ENLARGEMENTS + 1):
        low, high = solid.bounds()
        crop = grid.crop(low - margin, high + margin)
        if crop is None:
            return fitted
        blurred = ndimage.gaussian_filter(solid_occupancy(grid, crop, solid), sigma, mode="constant", truncate=3.0)
        if response is not None:
            blurred = response[1](blurred, crop, obj)
        at = np.unravel_index(int(np.argmax(blurred)), blurred.shape)
        if blurred[at] > 0.02:
            background = float(volume[crop][at])
            density = background + (obj.peak_hu - background) / float(blurred[at])
            fitted = (crop, blurred, min(density, max_density), solid)
            if density <= max_density:
                return fitted
        solid = solid.scaled(ENLARGEMENT)
    return fitted


def add_streaks(volume, grid: Grid, crop, contribution: np.ndarray, rng, strength: float = 1.0) -> None:
    """Metal artefact: a few bright and dark streaks through the metal on each slice it reaches (fainter and
    shorter for small metal: `strength` < 1)."""
    template = _streak_template(grid.pixel_mm, rng, strength)
    half = template.shape[0] // 2
    for k_local in range(contribution.shape[0]):
        metal = contribution[k_local] > 500.0
        if not metal.any():
            continue
        rows, columns = np.nonzero(metal)
        j = crop[1].start + int(round(rows.mean()))
        i = crop[2].start + int(round(columns.mean()))
        target = volume[crop[0].start + k_local]
        j0, i0 = max(j - half, 0), max(i - half, 0)
        j1, i1 = min(j + half + 1, target.shape[0]), min(i + half + 1, target.shape[1])
        target[j0:j1, i0:i1] += template[j0 - j + half : j1 - j + half, i0 - i + half : i1 - i + half]


def _streak_template(pixel_mm: float, rng, strength: float = 1.0) -> np.ndarray:
    """Alternating bright and dark lines through the centre of a square, fading with distance."""
    count = int(rng.integers(2, 6))
    angles = rng.uniform(0, np.pi, count)
    amplitudes = strength * rng.uniform(40, 150, count) * np.where(np.arange(count) % 2 == 0, 1.0, -1.0)
    width = rng.uniform(0.4, 0.9)
    decay = strength * rng.uniform(25, 60)
    half = int(2.5 * decay / pixel_mm)
    offsets = np.arange(-half, half + 1, dtype=np.float32) * pixel_mm
    dx, dy = offsets[None, :], offsets[:, None]
    template = np.zeros((2 * half + 1, 2 * half + 1), dtype=np.float32)
    for angle, amplitude in zip(angles, amplitudes):
        across = dx * np.sin(angle) - dy * np.cos(angle)
        along = np.abs(dx * np.cos(angle) + dy * np.sin(angle))
        template += amplitude * np.exp(-0.5 * (across / width) ** 2 - along / decay)
    return template

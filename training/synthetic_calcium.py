"""Calcified and metal objects of the synthetic cardiac CT: coronary plaques, aortic and valve calcium, stents, leads.

Each object is a small solid (a union of ellipsoids, an aortic wall patch, an arc of the mitral annulus, a chain of
tube pieces) whose voxel occupancy is supersampled over the pixel and the slice profile on a crop around it,
blurred by the scanner's Gaussian PSF (blooming), and mixed into the image at the density that gives it a drawn
noise-free peak HU. An object too small to reach that peak with a physical density is enlarged. Metal objects
also get a few bright and dark streaks across their slices.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import numpy as np
from scipy import ndimage
from synthetic_anatomy import Artery, Egg, Layout, resample
from synthetic_shapes import Grid, Tracker, VerticalTube, intersect, random_perpendicular, unit

SUBSAMPLE_XY_MM = 0.2
SUBSAMPLE_Z_MM = 0.3
MAX_CALCIUM_HU = 3000.0  # densest calcium: a smaller object cannot reach its drawn peak, so it is enlarged
MAX_METAL_HU = 30000.0
ENLARGEMENT = 1.25
MAX_ENLARGEMENTS = 4
BURDEN_LEVELS = (0, 1, 2, 3, 4)
BURDEN_PROBABILITIES = (0.2, 0.15, 0.25, 0.2, 0.2)


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
        """(start, end, radius, arc length at start) of each straight piece."""
        arc = 0.0
        for n in range(len(self.points) - 1):
            start, end = self.points[n], self.points[n + 1]
            yield start, end, 0.5 * (self.radii[n] + self.radii[n + 1]), arc
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

    solid: Blobs | WallPatch | AnnulusArc | TubeChain
    code: int
    peak_hu: float
    center: np.ndarray
    kind: str

    @property
    def metal(self) -> bool:
        return self.kind in ("stent", "lead")


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


def _draw_plaques(rng, layout: Layout, level: int) -> list[CalcifiedObject]:
    low, high = PLAQUE_COUNTS[level]
    count = int(rng.integers(low, high + 1))
    arteries = [a for a in layout.coronary.arteries if a.length > 3.0]
    plaques: list[CalcifiedObject] = []
    for _ in range(count):
        for _attempt in range(20):
            plaque = _draw_plaque(rng, layout, arteries, level)
            if plaque is not None and all(_apart(plaque, other) for other in plaques):
                plaques.append(plaque)
                break
    return plaques


def _apart(first: CalcifiedObject, second: CalcifiedObject) -> bool:
    """Whether two objects' bounding spheres (around their centres) stay 1 mm apart."""
    return float(np.linalg.norm(first.center - second.center)) >= _reach(first) + _reach(second) + 1.0


def _reach(obj: CalcifiedObject) -> float:
    low, high = obj.solid.bounds()
    return 0.5 * float(np.max(high - low))


def _draw_plaque(rng, layout: Layout, arteries: list[Artery], level: int) -> CalcifiedObject | None:
    """A wall calcification on a coronary artery, elongated along it, eccentric towards the outside."""
    code = int(rng.choice(list(ARTERY_GROUPS), p=list(ARTERY_GROUPS.values())))
    candidates = [a for a in arteries if a.code == code]
    if not candidates:
        return None
    weights = np.array([a.length * (1.0 if a.name in ("LM", "LAD", "LCX", "RCA") else 0.5) for a in candidates])
    artery = candidates[int(rng.choice(len(candidates), p=weights / weights.sum()))]
    length = float(np.clip(rng.lognormal(np.log(PLAQUE_LENGTH_MEDIAN_MM[level]), 0.55), 1.0, 20.0))
    start = 0.5 * length + 1.5 if artery.name in OSTIAL_ARTERIES else 1.0  # clear of the aortic wall
    if artery.length - 1.0 <= start:
        return None
    point, tangent, lumen = artery.at(start + (artery.length - 1.0 - start) * rng.beta(1.4, 2.2))
    across = random_perpendicular(rng, tangent)
    if across @ _heart_normal(layout.heart, point) < -0.3:
        across = -across
    center = point + lumen * rng.uniform(0.3, 0.8) * across
    width = min(rng.uniform(1.0, 2.4 + 0.2 * level), 2.0 * lumen + 0.8)
    solid = _plaque_solid(rng, center, tangent, across, length, width)
    return CalcifiedObject(solid, artery.code, _draw_peak(rng, faint=level == 1), center, "plaque")


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
    """Noise-free peak density: often faint near 130 HU, otherwise log-uniform up to 1500 HU."""
    if faint:
        return float(rng.uniform(140, 320))
    if rng.random() < 0.15:
        return float(rng.uniform(135, 200))
    return _log_uniform(rng, 200, 1500)


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
    return objects


def _draw_valve_calcium(rng, layout: Layout, level: int) -> list[CalcifiedObject]:
    aorta, heart = layout.coronary.aorta, layout.heart
    objects = []
    if rng.random() < 0.08 + 0.08 * level:
        first_cusp = rng.uniform(0, 2 * np.pi)
        across = random_perpendicular(rng, aorta.direction)
        side = np.cross(aorta.direction, across)
        for _ in range(int(rng.integers(1, 5))):
            angle = first_cusp + 2 * np.pi / 3 * int(rng.integers(0, 3)) + rng.normal(0, 0.3)
            radial = rng.uniform(0.3, 0.75) * aorta.root_radius
            center = (
                aorta.valve_center
                + rng.uniform(0, 5) * aorta.direction
                + radial * (np.cos(angle) * across + np.sin(angle) * side)
            )
            axes = np.linalg.qr(rng.normal(size=(3, 3)))[0]
            blob = Blobs(center[None], axes[None], rng.uniform(1.0, 3.0, size=(1, 3)))
            objects.append(CalcifiedObject(blob, 7, _log_uniform(rng, 250, 1500), center, "valve"))
    if rng.random() < 0.04 + 0.05 * level:
        center, radius, phi = layout.coronary.mitral_ring
        arc = AnnulusArc(
            center,
            heart.frame[:, 0],
            heart.transverse(phi),
            radius,
            rng.uniform(1.0, 2.5),
            np.deg2rad(rng.uniform(20, 80)),
        )
        objects.append(CalcifiedObject(arc, 7, _log_uniform(rng, 250, 1200), arc.center(), "valve"))
    return objects


def _draw_metal(rng, layout: Layout, level: int) -> list[CalcifiedObject]:
    objects = []
    if rng.random() < 0.02 + 0.04 * level:
        main = {a.name: a for a in layout.coronary.arteries}
        for _ in range(1 if rng.random() < 0.75 else 2):
            artery = main[str(rng.choice(["LAD", "RCA", "LCX"], p=[0.5, 0.3, 0.2]))]
            objects.append(_stent(rng, artery))
    if rng.random() < 0.05:
        objects.append(_lead(rng, layout))
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


def _lead(rng, layout: Layout) -> CalcifiedObject:
    """Pacemaker lead: down the superior vena cava, through the right atrium, to the right ventricular apex."""
    heart, svc = layout.heart, layout.svc
    top = np.array([*svc.center_at(layout.z_range[1] + 5), layout.z_range[1] + 5])
    entry = np.array([*svc.center_at(svc.z_low + 10), svc.z_low + 10])
    atrium, _ = heart.surface(-0.2, heart.angle_of([-1.0, 0.0, 0.2]), -10.0)
    apex, _ = heart.surface(0.75, heart.angle_of([-0.2, -1.0, -0.3]), -6.0)
    u = np.linspace(0, 1, 40)[:, None]
    bend = (1 - u) ** 2 * entry + 2 * u * (1 - u) * atrium + u**2 * apex
    points = resample(np.vstack([top, bend]), 3.0)
    radii = np.full(len(points), rng.uniform(0.5, 0.8))
    radii[-2:] = 1.2  # tip electrode
    return CalcifiedObject(TubeChain(points, radii), 9, float(rng.uniform(2500, 4000)), apex, "lead")


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
    """Occupancy of any solid on `crop`; tube chains piece by piece on sub-crops."""
    if not isinstance(solid, TubeChain):
        return occupancy(grid, crop, solid.inside)
    total = np.zeros(tuple(s.stop - s.start for s in crop), dtype=np.float32)
    for start, end, radius, arc in solid.pieces():
        reach = radius + solid.wall_mm + grid.pixel_mm
        box = (np.minimum(start, end) - reach, np.maximum(start, end) + reach + [0, 0, grid.thickness_mm])
        sub = intersect(grid.crop(*box), crop)
        if sub is None:
            continue
        local = tuple(slice(s.start - c.start, s.stop - c.start) for s, c in zip(sub, crop))
        total[local] += occupancy(grid, sub, partial(solid.inside_piece, start, end, radius, arc))
    return np.minimum(total, 1.0, out=total)


def draw_object(volume, grid: Grid, tracker: Tracker, obj: CalcifiedObject, owner: int, psf_mm, psf_z_mm):
    """Blur, scale to the drawn peak and paint one object.

    Returns (crop, noise-free peak HU, the solid as drawn, its contribution on the crop), or None off the grid.
    """
    fitted = _fit_density(volume, grid, obj, psf_mm, psf_z_mm)
    if fitted is None:
        return None
    crop, blurred, density, solid = fitted
    background = volume[crop]
    contribution = blurred * (np.float32(density) - background)
    painted = background + contribution
    tracker.paint(volume, crop, painted, owner)
    return crop, float(painted.max()), solid, contribution


def _fit_density(volume, grid: Grid, obj: CalcifiedObject, psf_mm: float, psf_z_mm: float):
    """(crop, blurred occupancy, density HU, solid) giving the drawn peak, enlarging calcium that would need a
    denser than physical density; None when the object misses the grid."""
    sigma = (psf_z_mm / grid.spacing_mm, psf_mm / grid.pixel_mm, psf_mm / grid.pixel_mm)
    margin = np.array([3.0 * psf_mm + 2 * grid.pixel_mm] * 2 + [3.0 * psf_z_mm + grid.thickness_mm])
    max_density = MAX_METAL_HU if obj.metal else MAX_CALCIUM_HU
    solid, fitted = obj.solid, None
    for _ in range(MAX_ENLARGEMENTS + 1):
        low, high = solid.bounds()
        crop = grid.crop(low - margin, high + margin)
        if crop is None:
            return fitted
        blurred = ndimage.gaussian_filter(solid_occupancy(grid, crop, solid), sigma, mode="constant", truncate=3.0)
        at = np.unravel_index(int(np.argmax(blurred)), blurred.shape)
        if blurred[at] > 0.02:
            background = float(volume[crop][at])
            density = background + (obj.peak_hu - background) / float(blurred[at])
            fitted = (crop, blurred, min(density, max_density), solid)
            if density <= max_density:
                return fitted
        solid = solid.scaled(ENLARGEMENT)
    return fitted


def add_streaks(volume, grid: Grid, crop, contribution: np.ndarray, rng) -> None:
    """Metal artefact: a few bright and dark streaks through the metal on each slice it reaches."""
    template = _streak_template(grid.pixel_mm, rng)
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


def _streak_template(pixel_mm: float, rng) -> np.ndarray:
    """Alternating bright and dark lines through the centre of a square, fading with distance."""
    count = int(rng.integers(2, 6))
    angles = rng.uniform(0, np.pi, count)
    amplitudes = rng.uniform(40, 150, count) * np.where(np.arange(count) % 2 == 0, 1.0, -1.0)
    width = rng.uniform(0.4, 0.9)
    decay = rng.uniform(25, 60)
    half = int(2.5 * decay / pixel_mm)
    offsets = np.arange(-half, half + 1, dtype=np.float32) * pixel_mm
    dx, dy = offsets[None, :], offsets[:, None]
    template = np.zeros((2 * half + 1, 2 * half + 1), dtype=np.float32)
    for angle, amplitude in zip(angles, amplitudes):
        across = dx * np.sin(angle) - dy * np.cos(angle)
        along = np.abs(dx * np.cos(angle) + dy * np.sin(angle))
        template += amplitude * np.exp(-0.5 * (across / width) ** 2 - along / decay)
    return template

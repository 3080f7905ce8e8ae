"""Image grid, smooth shapes with analytic partial volume, and painting with ownership, for the synthetic CT.

A shape is an implicit function F (negative inside) with its gradient. A voxel's fraction inside it is a linear
ramp of F across the voxel's footprint along the gradient — pixel size and slice thickness, each widened by the
scanner's Gaussian PSF — a first-order analytic partial volume that suits large smooth structures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

GAUSSIAN_EDGE_WIDTH = float(np.sqrt(2.0 * np.pi))  # width of the linear ramp with a Gaussian edge's slope, per σ
SLAB_VOXELS = 1_500_000  # largest block worked on at once, to keep temporaries small


@dataclass(frozen=True)
class Grid:
    """Voxel centres (LPS mm) along i, j, k of an axial volume, and the widths of its edge ramps (x, y, z)."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    thickness_mm: float
    edge_mm: np.ndarray

    @classmethod
    def for_scan(cls, x, y, z, thickness_mm: float, psf_mm: float, psf_z_mm: float) -> Grid:
        pixel = float(x[1] - x[0])
        in_plane = np.hypot(pixel, GAUSSIAN_EDGE_WIDTH * psf_mm)
        along_z = np.hypot(thickness_mm, GAUSSIAN_EDGE_WIDTH * psf_z_mm)
        return cls(x, y, z, thickness_mm, np.array([in_plane, in_plane, along_z], dtype=np.float32))

    @property
    def pixel_mm(self) -> float:
        return float(self.x[1] - self.x[0])

    @property
    def spacing_mm(self) -> float:
        return float(self.z[1] - self.z[0]) if len(self.z) > 1 else self.thickness_mm

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.z), len(self.y), len(self.x))

    def coarse(self, factor: int) -> Grid:
        """Every `factor`-th voxel in-plane with the same edge widths: for smooth soft-tissue anatomy."""
        return Grid(self.x[::factor], self.y[::factor], self.z, self.thickness_mm, self.edge_mm)

    def crop(self, low_lps, high_lps) -> tuple[slice, slice, slice] | None:
        """(k, j, i) slices of the voxels whose centres lie in the LPS box; None when it misses the grid."""
        slices = []
        for centres, low, high in zip((self.z, self.y, self.x), low_lps[::-1], high_lps[::-1]):
            first = int(np.searchsorted(centres, low, side="left"))
            last = int(np.searchsorted(centres, high, side="right"))
            if last <= first:
                return None
            slices.append(slice(first, last))
        return tuple(slices)

    def axes(self, crop) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable float32 x (1,1,i), y (1,j,1), z (k,1,1) of a crop's voxel centres."""
        k, j, i = crop
        return (
            self.x[i].astype(np.float32)[None, None, :],
            self.y[j].astype(np.float32)[None, :, None],
            self.z[k].astype(np.float32)[:, None, None],
        )

    def slabs(self, crop, max_voxels: int = SLAB_VOXELS):
        """Split a crop along k into blocks of at most `max_voxels` voxels."""
        k, j, i = crop
        per_slice = (j.stop - j.start) * (i.stop - i.start)
        step = max(1, max_voxels // max(per_slice, 1))
        for start in range(k.start, k.stop, step):
            yield (slice(start, min(start + step, k.stop)), j, i)


def ramp(f, gx, gy, gz, edge_mm) -> np.ndarray:
    """Fraction of a voxel inside F < 0: F over the footprint width along its gradient, clipped to [0, 1]."""
    width = np.sqrt((float(edge_mm[0]) * gx) ** 2 + (float(edge_mm[1]) * gy) ** 2 + (float(edge_mm[2]) * gz) ** 2)
    fraction = 0.5 - f / (width + 1e-6)
    return np.clip(fraction, 0.0, 1.0, out=fraction)


def blend(region: np.ndarray, fraction, hu) -> None:
    """Paint `hu` over `region` in place, each voxel by its fraction (partial-volume mixing)."""
    region += fraction * (hu - region)


def ellipse_fraction(x, y, center, half_axes, edge_mm) -> np.ndarray:
    """Fraction inside an axis-aligned ellipse, the same on every slice."""
    dx = (x - float(center[0])) / float(half_axes[0])
    dy = (y - float(center[1])) / float(half_axes[1])
    return ramp(dx * dx + dy * dy - 1.0, 2.0 * dx / half_axes[0], 2.0 * dy / half_axes[1], 0.0, edge_mm)


def slab_fraction(z, low: float, high: float, edge_z: float) -> np.ndarray:
    """Fraction of each slice between heights `low` and `high` (mm), ramped over the slice profile."""
    f = np.abs(z - 0.5 * (low + high)) - 0.5 * (high - low)
    return np.clip(0.5 - f / float(edge_z), 0.0, 1.0)


def periodic_slab_fraction(z, phase: float, period: float, height: float, edge_z: float) -> np.ndarray:
    """Fraction of each slice inside slabs of `height` repeating every `period` mm, one centred at `phase`."""
    offset = (z - phase) / period
    offset = (offset - np.round(offset)) * period
    return np.clip(0.5 - (np.abs(offset) - 0.5 * height) / float(edge_z), 0.0, 1.0)


@dataclass(frozen=True)
class Segment:
    """A tapered capsule from `start` to `end` (LPS mm), radii `radius_start` → `radius_end`."""

    start: np.ndarray
    end: np.ndarray
    radius_start: float
    radius_end: float

    def widened(self, by: float) -> Segment:
        return Segment(self.start, self.end, self.radius_start + by, self.radius_end + by)

    def bounds(self, margin: float) -> tuple[np.ndarray, np.ndarray]:
        reach = max(self.radius_start, self.radius_end) + margin
        return np.minimum(self.start, self.end) - reach, np.maximum(self.start, self.end) + reach

    def fraction(self, x, y, z, edge_mm) -> np.ndarray:
        """Fraction inside the capsule, ramped along the direction away from its axis."""
        ax, ay, az = (float(v) for v in self.end - self.start)
        length2 = max(ax * ax + ay * ay + az * az, 1e-6)
        rx, ry, rz = x - float(self.start[0]), y - float(self.start[1]), z - float(self.start[2])
        t = np.clip((rx * ax + ry * ay + rz * az) / length2, 0.0, 1.0)
        dx, dy, dz = rx - t * ax, ry - t * ay, rz - t * az
        distance = np.sqrt(dx * dx + dy * dy + dz * dz) + 1e-6
        radius = self.radius_start + t * (self.radius_end - self.radius_start)
        return ramp(distance - radius, dx / distance, dy / distance, dz / distance, edge_mm)


def polyline_segments(points: np.ndarray, radii: np.ndarray, grow: float = 0.0) -> list[Segment]:
    """Consecutive capsules along a sampled curve, radii grown by `grow` mm."""
    return [Segment(points[n], points[n + 1], radii[n] + grow, radii[n + 1] + grow) for n in range(len(points) - 1)]


def segments_fraction(grid: Grid, segments: list[Segment]):
    """Union (max) of capsule fractions on the crop covering them: (crop, fraction), or None off the grid."""
    margin = float(grid.edge_mm.max())
    boxes = [segment.bounds(margin) for segment in segments]
    crop = grid.crop(np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0))
    if crop is None:
        return None
    fraction = np.zeros(tuple(s.stop - s.start for s in crop), dtype=np.float32)
    for segment, (low, high) in zip(segments, boxes):
        sub = grid.crop(low, high)
        if sub is None:
            continue
        local = tuple(slice(s.start - c.start, s.stop - c.start) for s, c in zip(sub, crop))
        np.maximum(fraction[local], segment.fraction(*grid.axes(sub), grid.edge_mm), out=fraction[local])
    return crop, fraction


def paint_segments(volume, grid: Grid, segments: list[Segment], hu: float, below_hu: float | None = None):
    """Paint capsules with `hu` (only over voxels darker than `below_hu` when given); return (crop, fraction)."""
    covered = segments_fraction(grid, segments) if segments else None
    if covered is None:
        return None
    crop, fraction = covered
    region = volume[crop]
    if below_hu is not None:
        fraction = fraction * (region < below_hu)
    blend(region, fraction, hu)
    return crop, fraction


@dataclass(frozen=True)
class VerticalTube:
    """A tube of circular axial section whose centre moves linearly with z, between two heights."""

    center: tuple[float, float, float]  # a point on the axis
    slope: tuple[float, float]  # dx/dz, dy/dz of the axis
    radius: float
    z_low: float
    z_high: float

    def center_at(self, z):
        return (
            self.center[0] + self.slope[0] * (z - self.center[2]),
            self.center[1] + self.slope[1] * (z - self.center[2]),
        )

    def crop(self, grid: Grid, grow: float = 0.0):
        ends = np.array([[*self.center_at(h), h] for h in (self.z_low, self.z_high)])
        reach = np.array([self.radius + grow + 2 * grid.edge_mm[0]] * 2 + [grid.edge_mm[2]])
        return grid.crop(ends.min(axis=0) - reach, ends.max(axis=0) + reach)

    def fraction(self, x, y, z, edge_mm, grow: float = 0.0) -> np.ndarray:
        cx, cy = self.center_at(z)
        radius2 = (self.radius + grow) ** 2
        dx, dy = x - cx, y - cy
        f = (dx * dx + dy * dy) / radius2 - 1.0
        gz = -2.0 * (dx * self.slope[0] + dy * self.slope[1]) / radius2
        inside = ramp(f, 2.0 * dx / radius2, 2.0 * dy / radius2, gz, edge_mm)
        return inside * slab_fraction(z, self.z_low, self.z_high, edge_mm[2])


def intersect(crop, other):
    """The overlap of two crops, or None."""
    if crop is None:
        return None
    overlap = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(crop, other))
    return None if any(s.stop <= s.start for s in overlap) else overlap


def tube_fraction(grid: Grid, tube: VerticalTube, grow: float = 0.0):
    """(crop, fraction) of a vertical tube widened by `grow` mm, or None off the grid."""
    crop = tube.crop(grid, grow)
    return None if crop is None else (crop, tube.fraction(*grid.axes(crop), grid.edge_mm, grow))


def paint_tube(volume, grid: Grid, tube: VerticalTube, hu: float) -> None:
    covered = tube_fraction(grid, tube)
    if covered is not None:
        blend(volume[covered[0]], covered[1], hu)


@dataclass
class Tracker:
    """Paints labelled objects, keeping for each voxel the object that raised it the most."""

    shape: tuple[int, int, int]
    codes: list[int] = field(default_factory=lambda: [0])
    lesion_ids: list[int] = field(default_factory=lambda: [0])
    regions: list[tuple] = field(default_factory=list)

    def __post_init__(self):
        self.best = np.zeros(self.shape, dtype=np.float32)  # zero pages: only touched where objects are
        self.owner = np.zeros(self.shape, dtype=np.uint16)

    def new_owner(self, code: int, lesion_id: int = 0) -> int:
        self.codes.append(code)
        self.lesion_ids.append(lesion_id)
        return len(self.codes) - 1

    def paint(self, volume: np.ndarray, region, new_values: np.ndarray, owner: int) -> None:
        """Write `new_values` into `volume[region]`, recording `owner` where it adds the most so far."""
        contribution = new_values - volume[region]
        best = self.best[region]
        better = contribution > best
        self.best[region] = np.where(better, contribution, best)
        self.owner[region] = np.where(better, np.uint16(owner), self.owner[region])
        volume[region] = new_values
        self.regions.append(region)

    def label_maps(self, image: np.ndarray, threshold_hu: float, min_contribution_hu: float):
        """(labels uint8, instances uint16): the owner's code and lesion id where image ≥ threshold and owned."""
        labels = np.zeros(self.shape, dtype=np.uint8)
        instances = np.zeros(self.shape, dtype=np.uint16)
        code_of = np.asarray(self.codes, dtype=np.uint8)
        id_of = np.asarray(self.lesion_ids, dtype=np.uint16)
        for region in self.regions:
            owned = (image[region] >= threshold_hu) & (self.best[region] >= min_contribution_hu)
            owner = np.where(owned, self.owner[region], 0)
            labels[region] = np.where(owned, code_of[owner], labels[region])
            instances[region] = np.where(owned, id_of[owner], instances[region])
        return labels, instances


def upsample_in_plane(coarse: np.ndarray, out: np.ndarray) -> None:
    """Linear ×2 upsampling along j and i into `out`; coarse samples sit on the even fine voxels."""
    for start in range(0, coarse.shape[0], 8):
        block = coarse[start : start + 8].astype(np.float32)
        rows = np.empty((block.shape[0], out.shape[1], block.shape[2]), dtype=np.float32)
        rows[:, ::2] = block
        rows[:, 1:-1:2] = 0.5 * (block[:, :-1] + block[:, 1:])
        rows[:, -1] = block[:, -1]
        target = out[start : start + 8]
        target[:, :, ::2] = rows
        target[:, :, 1:-1:2] = 0.5 * (rows[:, :, :-1] + rows[:, :, 1:])
        target[:, :, -1] = rows[:, :, -1]


def line_blur(array: np.ndarray, direction_ji, length_px: float) -> np.ndarray:
    """Uniform in-plane motion blur of a (k, j, i) array over `length_px` pixels along the unit (j, i) direction.

    Taps about one pixel apart, each an integer shift (no interpolation); outside the array counts as zero, so
    callers keep a margin of half the length around what they blur.
    """
    taps = max(2, int(np.ceil(length_px)) + 1)
    offsets = np.rint(np.linspace(-0.5, 0.5, taps)[:, None] * length_px * np.asarray(direction_ji, float))
    shifts, counts = np.unique(offsets.astype(int), axis=0, return_counts=True)
    out = np.zeros_like(array)
    _, rows, columns = array.shape
    for (dj, di), count in zip(shifts, counts):
        if abs(dj) >= rows or abs(di) >= columns:
            continue
        target = out[:, max(dj, 0) : rows + min(dj, 0), max(di, 0) : columns + min(di, 0)]
        source = array[:, max(-dj, 0) : rows + min(-dj, 0), max(-di, 0) : columns + min(-di, 0)]
        target += np.float32(count / taps) * source
    return out


def sharpen_in_plane(array: np.ndarray, sigma_px: float, amount: float) -> None:
    """Edge enhancement of a sharp reconstruction kernel, in place: a += amount · (a − in-plane Gaussian of a)."""
    for start in range(0, array.shape[0], 8):
        block = array[start : start + 8]
        smooth = ndimage.gaussian_filter1d(block, sigma_px, axis=1, mode="nearest")
        ndimage.gaussian_filter1d(smooth, sigma_px, axis=2, mode="nearest", output=smooth)
        smooth -= block
        smooth *= np.float32(-amount)
        block += smooth


def unit(vector) -> np.ndarray:
    vector = np.asarray(vector, dtype=float)
    return vector / np.linalg.norm(vector, axis=-1, keepdims=True)


def rotation_about(axis, angle: float) -> np.ndarray:
    """Rotation matrix by `angle` (rad) about `axis` (Rodrigues)."""
    x, y, z = unit(axis)
    skew = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + np.sin(angle) * skew + (1 - np.cos(angle)) * skew @ skew


def random_perpendicular(rng, direction) -> np.ndarray:
    """A random unit vector perpendicular to `direction`."""
    vector = rng.normal(size=3)
    vector -= (vector @ direction) * direction
    return unit(vector)

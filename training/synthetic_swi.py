"""Synthetic susceptibility-weighted MRI (SWI magnitude) of the brain with exact cerebral-microbleed ground truth.

    python training/synthetic_swi.py --seed 3 --out runs/swi3     # writes swi.nrrd, label NRRDs and case.json

For a microbleed detector on axial slices (METHODS.md C). A head drawn in millimetres: bright scalp fat, a skull of
dark tables round an intermediate diploë, a skull base with air in the sphenoid and frontal sinuses and mastoid
cells, subarachnoid CSF, cortex with sulci and the interhemispheric fissure, white matter, lateral, third and fourth
ventricles, caudate, putamen with an iron-dark pallidum, thalami, brainstem and a foliated cerebellum under the
tentorium. What looks like a microbleed but is not one: veins, hypointense tubes round in section but continuous
across slices (medullary, cortical, thalamostriate, internal cerebral, straight sinus and one along the superior
sagittal sinus); calcifications (pineal, choroid plexus, pallidum); air/bone susceptibility signal loss above the
frontal sinuses and the petrous bone. Microbleeds are dark ellipsoids with a soft blooming halo that widens with
their size, lobar (cortex / grey-white junction, subcortical white matter) or deep (basal ganglia, thalamus,
brainstem, cerebellum); sizes, shapes, the lobar/deep mix and the count per scan follow real labels
(`microbleed_label_statistics.py` recomputes the constants below from them).

Randomised per seed, uniform unless said (the constants below):
- scan: in-plane pixel 0.4–1.0 mm, slice thickness 1–3 mm (contiguous slices), field of view 210–250 mm (matrix =
  FOV / pixel rounded to even, 210–624), coverage 110–150 mm from 2–10 mm above the vertex down, in-plane Gaussian
  PSF σ 0.3–0.6 pixel, white-matter signal 200–1000 a.u., white-matter SNR 12–40 with Rician noise, a multiplicative
  bias exp(s·g) with g a random quadratic in scan coordinates of unit SD over the field of view, s 0.05–0.35;
- head: scalp semi-axes 68–80 (left-right) × 86–100 (front-back) × 80–94 mm (up), brain anatomy scaled with the
  width; scalp 3–7 mm, skull 5–8 mm, CSF over the brain 1–3 mm, cortex 2.5–3.5 mm, sulci 10–18 mm deep; pose
  pitch ±10°, roll ±5°, yaw ±6°, centre ±8 mm in-plane;
- contrast, signal relative to white matter: grey 1.05–1.3, CSF 1.3–1.9, caudate/putamen 0.95–1.2, pallidum
  0.55–0.8, thalamus 0.95–1.1, brainstem 0.9–1.05, cerebellar cortex 1.0–1.3, scalp 1.2–1.8, diploë 0.4–0.9,
  bone 0.02–0.08, face and neck 0.6–1.0, air 0;
- veins, darkening 50–90 % of a covered voxel: 6–19 medullary (diameter 0.5–1.2 mm), 3–9 cortical (1–2.5 mm), two
  thalamostriate (1–2 mm), two internal cerebral (1.5–2.5 mm), the straight sinus and a superior sagittal vein
  (2.5–3 mm), all wiggling by 0.3–1 mm;
- mimics: pineal (p 0.5, 3–8 mm), choroid plexus (p 0.4, both sides, 3–7 mm), pallidum (p 0.15, both sides,
  2–5 mm) calcifications, darkening 50–85 %; susceptibility loss at the frontal base (p 0.8) and over each petrous
  bone (p 0.6), semi-axes 3–14 mm, darkening 50–95 %;
- microbleeds: none in 30 % of scans, else 1 + NegBin(0.431, 0.0914) redrawn above 15; equivalent diameter
  2–10 mm from the real quantiles (median 2.95 mm), axis ratios from the real elongation and flatness, random
  orientation; lobar with a per-scan probability ~ Beta(0.97, 0.54), regions in the real proportions; core
  darkening 60–92 %, halo σ 12–30 % of the radius.

Labels: a microbleed's mask is where at least half of a voxel (pixel × slice thickness, supersampled) lies inside
its surface, the half-darkening contour of the blooming profile, which is what the real labels and their diameters
describe; a voxel it only darkens through its halo is not labelled. Veins are labelled where a vein half covers a
voxel or its centre line passes, mimics like microbleeds. What it is: simple shapes arranged like a head, with exact
labels. What it is not: real anatomy, real noise texture (no parallel-imaging noise pattern, ringing or motion) or
real phase; the anatomy is drawn at the slice centres and only small objects carry partial volume across a slice.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage, special
from scipy.spatial.transform import Rotation
from synthetic_anatomy import resample
from synthetic_shapes import Grid, polyline_segments, rotation_about, segments_fraction, unit, upsample_in_plane

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "LesionDetect"))

from LesionDetectLib.io.volume import Volume  # noqa: E402

GENERATOR_VERSION = "1.0.0"

# The scan
PIXEL_MM = (0.4, 1.0)
SLICE_MM = (1.0, 3.0)
FOV_MM = (210.0, 250.0)
COVERAGE_MM = (110.0, 150.0)
TOP_MARGIN_MM = (2.0, 10.0)  # the first slice lies this far above the vertex
PSF_PIXELS = (0.3, 0.6)
WHITE_SIGNAL = (200.0, 1000.0)  # arbitrary units
SNR = (12.0, 40.0)  # white-matter signal / noise SD of each channel
BIAS_STRENGTH = (0.05, 0.35)  # SD of the log bias over the field of view

# The head (head frame: x left, y posterior, z superior, mm, origin at the centre of the scalp ellipsoid)
HEAD_AXES_MM = ((68.0, 80.0), (86.0, 100.0), (80.0, 94.0))
AVERAGE_WIDTH_MM = 74.0  # brain anatomy is drawn for this head width and scaled with it
SCALP_MM = (3.0, 7.0)
SKULL_MM = (5.0, 8.0)
CSF_MM = (1.0, 3.0)
CORTEX_MM = (2.5, 3.5)
SULCUS_DEPTH_MM = (10.0, 18.0)
BASE_HEIGHT = (0.35, 0.5)  # the skull base lies this fraction of the head's height below its centre
BASE_MM = (3.0, 6.0)
BASE_SLOPE = 0.3  # the skull base rises this many mm per mm towards the front ...
BASE_BOWL = 0.005  # ... and falls by this many mm per mm² to the sides (the middle fossae)
POSE_DEG = {"pitch": 10.0, "roll": 5.0, "yaw": 6.0}  # ± about x, y, z
CENTRE_OFFSET_MM = 8.0
SULCUS_SIGMA_MM = 2.0  # correlation length of the random field whose zero level the sulci follow
SULCUS_HALF_WIDTH = 0.15  # |field| under this is sulcal CSF ...
GREY_HALF_WIDTH = 0.8  # ... and under this the grey matter lining it
FISSURE_HALF_MM = 1.0
FOLIUM_MM = 3.0  # spacing of the cerebellar folia
CONTRAST = {  # signal relative to white matter
    "grey": (1.05, 1.3),
    "csf": (1.3, 1.9),
    "basal ganglia": (0.95, 1.2),
    "pallidum": (0.55, 0.8),
    "thalamus": (0.95, 1.1),
    "brainstem": (0.9, 1.05),
    "cerebellum": (1.0, 1.3),
    "scalp": (1.2, 1.8),
    "diploe": (0.4, 0.9),
    "bone": (0.02, 0.08),
    "soft tissue": (0.6, 1.0),
}
TISSUES = (
    "background",
    "scalp",
    "bone",
    "air",
    "csf",
    "grey",
    "white",
    "basal ganglia",
    "thalamus",
    "brainstem",
    "cerebellum",
)
CODE = {name: code for code, name in enumerate(TISSUES)}

# Veins and mimics
MEDULLARY_VEINS = (6, 20)  # integers drawn in [low, high)
CORTICAL_VEINS = (3, 10)
VEIN_DARKENING = (0.5, 0.9)
VEIN_WIGGLE_MM = (0.3, 1.0)
MIN_VEIN_RISE_MM = 10.0  # every vein climbs at least this far, so it runs across slices
VEIN_STEP_MM = 1.5
MIMIC_CODES = {"calcification": 1, "susceptibility artefact": 2}
CALCIFICATIONS = {  # probability, diameter range (mm)
    "pineal": (0.5, (3.0, 8.0)),
    "choroid plexus": (0.4, (3.0, 7.0)),
    "pallidum": (0.15, (2.0, 5.0)),
}
CALCIFICATION_DARKENING = (0.5, 0.85)
ARTEFACT_PROBABILITY = {"frontal base": 0.8, "petrous": 0.6}  # petrous: each side
ARTEFACT_DARKENING = (0.5, 0.95)

# Microbleeds. Calibrated on the 201 labelled microbleeds of jorgedelpozolerida/MicrobleedNet,
# data-misc/csv/CMB_metadata_all_enriched_filt.csv (labels only, not in this project), with
# training/microbleed_label_statistics.py: sizes and shapes from its 132 SWI rows, equivalent diameter
# = 2 × radius (voxels) × 0.5 mm; the 0 and 1 levels are widened to the 2–10 mm definition of a microbleed
# (real: 1.56 and 6.64 mm). Locations from its 126 located rows (lobar 92, 73 %); the per-scan lobar probability
# is a beta-binomial fit over its 18 located scans, the count a negative-binomial fit of (count − 1) over its 38.
NEGATIVE_PROBABILITY = 0.3  # scans without microbleeds (design choice: the table holds positive scans only)
MAX_MICROBLEEDS = 15
COUNT_NEGATIVE_BINOMIAL = (0.431, 0.0914)  # (n, p) of count − 1 in a positive scan
DIAMETER_QUANTILES_MM = ((0.0, 2.0), (0.05, 2.09), (0.25, 2.63), (0.5, 2.95), (0.75, 3.19), (0.95, 4.21), (1.0, 10.0))
ELONGATION_QUANTILES = ((0.0, 0.31), (0.05, 0.52), (0.25, 0.79), (0.5, 0.88), (0.75, 0.94), (0.95, 0.99), (1.0, 1.0))
FLATNESS_QUANTILES = ((0.0, 0.30), (0.05, 0.48), (0.25, 0.63), (0.5, 0.75), (0.75, 0.83), (0.95, 0.92), (1.0, 0.99))
LOBAR_BETA = (0.97, 0.54)
REGION_COUNTS = {
    "cortex / grey-white junction": 71,
    "subcortical white matter": 21,
    "basal ganglia": 13,
    "thalamus": 6,
    "brainstem": 10,
    "cerebellum": 5,
}
LOBAR_REGIONS = ("cortex / grey-white junction", "subcortical white matter")
REGION_TISSUE = {
    "cortex / grey-white junction": "grey",
    "subcortical white matter": "white",
    "basal ganglia": "basal ganglia",
    "thalamus": "thalamus",
    "brainstem": "brainstem",
    "cerebellum": "cerebellum",
}
JUNCTION_MM = 2.0  # a cortical microbleed has white matter this close; a subcortical one has cortex within ...
SUBCORTICAL_MM = 4.0  # ... this distance
MICROBLEED_DARKENING = (0.6, 0.92)
BLOOM_FRACTION = (0.12, 0.3)  # σ of the halo / radius
PLACEMENT_TRIES = 60
CLEARANCE_MM = 1.0  # between a microbleed and any vein, mimic or other microbleed


@dataclass
class SwiCase:
    """One synthetic scan: SWI magnitude, label maps, microbleed records and slice boxes, what was drawn, settings."""

    volume: Volume  # float32 magnitude, arbitrary units
    masks: dict[str, np.ndarray]  # "microbleeds" uint16 ids, "veins" bool, "mimics" uint8 (MIMIC_CODES), (k, j, i)
    tissue: np.ndarray  # uint8 (k, j, i), codes of TISSUES
    microbleeds: list[dict] = field(default_factory=list)
    boxes: list[dict] = field(default_factory=list)  # per slice of each microbleed: id, slice k, [x0, y0, x1, y1] px
    objects: list[dict] = field(default_factory=list)  # veins and mimics
    settings: dict = field(default_factory=dict)


@dataclass
class Head:
    """The drawn head: outer semi-axes and layers (mm), skull base, pose in the scan and tissue contrast."""

    axes: np.ndarray  # semi-axes of the scalp surface along x, y, z
    scalp_mm: float
    skull_mm: float
    csf_mm: float
    cortex_mm: float
    sulcus_depth_mm: float
    base_z: float  # skull base height under the head's centre
    base_mm: float
    pose_deg: dict[str, float]  # pitch, roll, yaw about x, y, z
    rotation: np.ndarray  # head frame → scan frame (LPS)
    center_lps: np.ndarray
    contrast: dict[str, float]

    @property
    def size(self) -> float:
        return float(self.axes[0] / AVERAGE_WIDTH_MM)

    def to_scan(self, points) -> np.ndarray:
        return np.asarray(points, dtype=float) @ self.rotation.T + self.center_lps

    def depth(self, x, y, z):
        """Depth below the scalp surface along the ray from the centre (mm; negative outside)."""
        rho = np.sqrt((x / self.axes[0]) ** 2 + (y / self.axes[1]) ** 2 + (z / self.axes[2]) ** 2)
        return np.sqrt(x * x + y * y + z * z) * (1.0 / np.maximum(rho, 1e-6) - 1.0)

    def brain_depth(self, x, y, z):
        """Depth below the inner table (mm)."""
        return self.depth(x, y, z) - self.scalp_mm - self.skull_mm

    def base_height(self, x, y):
        """Height of the skull base: the anterior fossa higher than the posterior (+y posterior), the middle
        fossae lower than the midline."""
        return self.base_z - BASE_SLOPE * y - BASE_BOWL * x * x

    def cortical_depth(self, x, y, z):
        """Depth below the brain's surface, over the convexity and over the skull base (mm)."""
        return np.minimum(self.brain_depth(x, y, z), z - self.base_height(x, y)) - self.csf_mm

    def inner_table_point(self, direction, below_mm: float) -> np.ndarray:
        """The point `below_mm` under the inner table along a unit direction from the centre."""
        to_scalp = 1.0 / np.sqrt(((direction / self.axes) ** 2).sum())
        return direction * (to_scalp - self.scalp_mm - self.skull_mm - below_mm)

    @property
    def cerebellum_center(self) -> np.ndarray:
        s = self.size
        return np.array([0.0, 50.0 * s, self.base_height(0.0, 50.0 * s) + 21.0 * s])

    @property
    def cerebellum_axes(self) -> np.ndarray:
        return np.array([46.0, 26.0, 20.0]) * self.size

    def tentorium_height(self, y):
        """The tentorium: a tent over the cerebellum, higher towards the incisura at the front."""
        s = self.size
        return self.cerebellum_center[2] + 21.0 * s + 0.3 * (50.0 * s - y)


def draw_head(rng) -> Head:
    axes = np.array([rng.uniform(*limits) for limits in HEAD_AXES_MM])
    angles = {name: float(rng.uniform(-limit, limit)) for name, limit in POSE_DEG.items()}
    rotation = (
        rotation_about([1, 0, 0], np.deg2rad(angles["pitch"]))
        @ rotation_about([0, 1, 0], np.deg2rad(angles["roll"]))
        @ rotation_about([0, 0, 1], np.deg2rad(angles["yaw"]))
    )
    center = np.array([*rng.uniform(-CENTRE_OFFSET_MM, CENTRE_OFFSET_MM, size=2), 0.0])
    contrast = {name: float(rng.uniform(*limits)) for name, limits in CONTRAST.items()}
    return Head(
        axes=axes,
        scalp_mm=float(rng.uniform(*SCALP_MM)),
        skull_mm=float(rng.uniform(*SKULL_MM)),
        csf_mm=float(rng.uniform(*CSF_MM)),
        cortex_mm=float(rng.uniform(*CORTEX_MM)),
        sulcus_depth_mm=float(rng.uniform(*SULCUS_DEPTH_MM)),
        base_z=float(-rng.uniform(*BASE_HEIGHT) * axes[2]),
        base_mm=float(rng.uniform(*BASE_MM)),
        pose_deg=angles,
        rotation=rotation,
        center_lps=center,
        contrast={"white": 1.0, **contrast, "air": 0.0},
    )


def draw_scan(rng, head: Head, matrix=None, n_slices=None, pixel_mm=None, slice_mm=None) -> dict:
    """The acquisition; `matrix`, `n_slices`, `pixel_mm` and `slice_mm` replace the drawn values when given."""
    drawn_pixel, drawn_slice, fov = (float(rng.uniform(*limits)) for limits in (PIXEL_MM, SLICE_MM, FOV_MM))
    coverage, margin = float(rng.uniform(*COVERAGE_MM)), float(rng.uniform(*TOP_MARGIN_MM))
    scan = {
        "psf_pixels": float(rng.uniform(*PSF_PIXELS)),
        "white_signal": float(rng.uniform(*WHITE_SIGNAL)),
        "snr": float(rng.uniform(*SNR)),
        "bias_strength": float(rng.uniform(*BIAS_STRENGTH)),
        "bias_coefficients": rng.standard_normal(9).tolist(),
        "top_margin_mm": margin,
    }
    if matrix is not None and pixel_mm is not None:
        fov = matrix * pixel_mm
    elif matrix is not None:
        pixel_mm = fov / matrix
    pixel = float(pixel_mm or drawn_pixel)
    matrix = int(matrix or 2 * round(fov / pixel / 2))
    thickness = float(slice_mm or drawn_slice)
    n_slices = int(n_slices or round(coverage / thickness))
    vertex = np.sqrt(((head.rotation[2] * head.axes) ** 2).sum())  # highest point of the rotated scalp ellipsoid
    return {
        "pixel_mm": pixel,
        "slice_mm": thickness,
        "matrix": matrix,
        "n_slices": n_slices,
        "fov_mm": matrix * pixel,
        "coverage_mm": n_slices * thickness,
        "top_z_mm": float(head.center_lps[2] + vertex + margin),
        "noise_sd": scan["white_signal"] / scan["snr"],
        **scan,
    }


def scan_grid(scan: dict) -> Grid:
    """Voxel centres (LPS mm) of the scan: centred in-plane, k = 0 the lowest slice."""
    centres = (np.arange(scan["matrix"]) - (scan["matrix"] - 1) / 2) * scan["pixel_mm"]
    z = scan["top_z_mm"] - scan["slice_mm"] * np.arange(scan["n_slices"])[::-1]
    psf_mm = scan["psf_pixels"] * scan["pixel_mm"]
    return Grid.for_scan(centres, centres.copy(), z, scan["slice_mm"], psf_mm, 0.0)


def ijk_to_ras(grid: Grid) -> np.ndarray:
    """i runs to the patient's left, j to posterior, k up: LPS axes, written as IJK→RAS."""
    pixel, thickness = grid.pixel_mm, grid.spacing_mm
    return np.array(
        [
            [-pixel, 0.0, 0.0, -grid.x[0]],
            [0.0, -pixel, 0.0, -grid.y[0]],
            [0.0, 0.0, thickness, grid.z[0]],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def smooth_field(rng, grid: Grid, sigma_mm: float) -> np.ndarray:
    """A zero-mean, unit-SD Gaussian random field on the scan grid with correlation `sigma_mm` (float32 (k, j, i))."""
    halve = sigma_mm / grid.pixel_mm >= 3.0  # smooth enough to draw at half resolution in-plane
    shape = grid.shape
    coarse_shape = (shape[0], (shape[1] + 1) // 2, (shape[2] + 1) // 2) if halve else shape
    pixel = grid.pixel_mm * (2 if halve else 1)
    values = rng.standard_normal(coarse_shape, dtype=np.float32)
    values = ndimage.gaussian_filter(values, (sigma_mm / grid.spacing_mm, sigma_mm / pixel, sigma_mm / pixel))
    if halve:
        fine = np.empty(shape, dtype=np.float32)
        upsample_in_plane(values, fine)
        values = fine
    values /= values.std()
    return values


def _ellipsoid(x, y, z, center, axes):
    """Normalised radius of an axis-aligned ellipsoid (≤ 1 inside)."""
    return np.sqrt(
        ((x - center[0]) / axes[0]) ** 2 + ((y - center[1]) / axes[1]) ** 2 + ((z - center[2]) / axes[2]) ** 2
    )


def _brainstem(head: Head, x, y, z):
    """(distance to the brainstem's axis, its radius there): midbrain under the thalami down to the medulla."""
    s = head.size
    top, bottom = np.array([0.0, 14.0, -1.0]) * s, np.array([0.0, 24.0, -60.0]) * s
    axis = bottom - top
    t = np.clip(((x - top[0]) * axis[0] + (y - top[1]) * axis[1] + (z - top[2]) * axis[2]) / (axis @ axis), 0.0, 1.0)
    distance = np.sqrt(
        (x - top[0] - t * axis[0]) ** 2 + (y - top[1] - t * axis[1]) ** 2 + (z - top[2] - t * axis[2]) ** 2
    )
    return distance, (10.0 - 2.5 * t) * s


def _ventricles(head: Head, x, y, z):
    """Lateral ventricles (curved ellipsoids either side), the slit-like third and the fourth."""
    s = head.size
    inside = np.zeros(np.broadcast(x, y, z).shape, dtype=bool)
    for side in (-1.0, 1.0):
        centre_x = side * (11.0 * s + 0.06 * np.abs(y - 5.0 * s))
        bend = 0.004 * (y - 5.0 * s) ** 2 / s  # the horns curve down at both ends
        inside |= ((x - centre_x) / (6.0 * s)) ** 2 + ((y - 5.0 * s) / (30.0 * s)) ** 2 + (
            (z - 18.0 * s + bend) / (8.0 * s)
        ) ** 2 <= 1.0
    inside |= _ellipsoid(x, y, z, np.array([0.0, 5.0, 2.0]) * s, np.array([1.5, 14.0, 7.0]) * s) <= 1.0
    fourth = head.cerebellum_center + np.array([0.0, -18.0, 2.0]) * s
    inside |= _ellipsoid(x, y, z, fourth, np.array([5.0, 3.0, 7.0]) * s) <= 1.0
    return inside


def render_tissue(head: Head, x, y, z, sulci) -> tuple[np.ndarray, np.ndarray]:
    """Tissue codes and signal relative to white matter at head-frame points (mm); `sulci` the field there."""
    s, c = head.size, head.contrast
    tissue = np.zeros(x.shape, dtype=np.uint8)
    signal = np.zeros(x.shape, dtype=np.float32)

    def put(where, name, signal_name=None):
        tissue[where] = CODE[name]
        signal[where] = c[signal_name or name]

    depth = head.depth(x, y, z)
    brain_depth = depth - head.scalp_mm - head.skull_mm
    above_base = z - head.base_height(x, y)
    put(depth >= 0, "scalp")
    put((depth >= head.scalp_mm) & (brain_depth < 0), "bone")
    table = 0.3 * head.skull_mm
    signal[(depth >= head.scalp_mm + table) & (brain_depth < -table)] = c["diploe"]
    below_base = (brain_depth >= 0) & (above_base < 0)
    put(below_base, "scalp", "soft tissue")  # face and neck under the skull base
    put(below_base & (above_base >= -head.base_mm), "bone")
    intracranial = (brain_depth >= 0) & (above_base >= 0)
    put(intracranial, "csf")
    brain = intracranial & (brain_depth >= head.csf_mm) & (above_base >= head.csf_mm)
    cortical_depth = np.minimum(brain_depth, above_base) - head.csf_mm
    stem_distance, stem_radius = _brainstem(head, x, y, z)
    cerebellum_radius = _ellipsoid(x, y, z, head.cerebellum_center, head.cerebellum_axes)
    fossa = _ellipsoid(x, y, z, head.cerebellum_center, head.cerebellum_axes + 3.0 * s) <= 1.0
    fossa = (fossa | (stem_distance <= stem_radius + 2.0 * s)) & (z < head.tentorium_height(y))
    cerebrum = brain & ~fossa
    fissure_region = cerebrum & ((z > 30.0 * s) | (y < -38.0 * s) | (y > 40.0 * s))
    sulcal = np.abs(sulci)
    grey = (cortical_depth < head.cortex_mm) | (
        (cortical_depth < head.sulcus_depth_mm + head.cortex_mm) & (sulcal < GREY_HALF_WIDTH)
    )
    put(cerebrum, "white")
    put((cerebrum & grey) | (fissure_region & (np.abs(x) < FISSURE_HALF_MM + head.cortex_mm)), "grey")
    sulcus = cerebrum & (cortical_depth < head.sulcus_depth_mm) & (sulcal < SULCUS_HALF_WIDTH)
    put(sulcus | (fissure_region & (np.abs(x) < FISSURE_HALF_MM)), "csf")
    for side in (-1.0, 1.0):
        caudate = _ellipsoid(x, y, z, np.array([17.0 * side, -10.0, 14.0]) * s, np.array([5.0, 10.0, 7.0]) * s)
        putamen = _ellipsoid(x, y, z, np.array([25.0 * side, -2.0, 3.0]) * s, np.array([6.0, 14.0, 9.0]) * s)
        pallidum = _ellipsoid(x, y, z, np.array([19.5 * side, 0.0, 2.0]) * s, np.array([3.0, 8.0, 5.5]) * s)
        thalamus = _ellipsoid(x, y, z, np.array([9.0 * side, 14.0, 6.0]) * s, np.array([7.5, 13.0, 8.0]) * s)
        put(cerebrum & ((caudate <= 1.0) | (putamen <= 1.0)), "basal ganglia")
        put(cerebrum & (pallidum <= 1.0), "basal ganglia", "pallidum")
        put(cerebrum & (thalamus <= 1.0), "thalamus")
    posterior_fossa = brain & fossa
    put(posterior_fossa, "csf")
    cerebellum = posterior_fossa & (cerebellum_radius <= 1.0)
    put(cerebellum, "cerebellum")
    signal[cerebellum & (cerebellum_radius < 0.45 * (1.0 + 0.15 * sulci))] = c["white"]  # the white core
    mean_radius = float(np.cbrt(np.prod(head.cerebellum_axes)))
    folia = np.cos(2.0 * np.pi * cerebellum_radius * mean_radius / FOLIUM_MM + 2.0 * sulci) > 0.85
    signal[cerebellum & (cerebellum_radius > 0.55) & folia] = 0.5 * (c["cerebellum"] + c["csf"])  # thin CSF clefts
    put(brain & (stem_distance <= stem_radius), "brainstem")
    put(brain & _ventricles(head, x, y, z), "csf")
    for side in (-1.0, 1.0):
        ridge = _ellipsoid(x, y, above_base, np.array([28.0 * side, 8.0, 0.0]) * s, np.array([20.0, 6.0, 12.0]) * s)
        put((depth >= 0) & (ridge <= 1.0), "bone")
        mastoid_center = [44.0 * side * s, 22.0 * s, head.base_height(44.0 * s, 22.0 * s) - 3.0 * s]
        mastoid = _ellipsoid(x, y, z, mastoid_center, np.array([8.0, 9.0, 8.0]) * s) <= 1.0
        put(mastoid & (depth >= head.scalp_mm) & ~intracranial, "air")
        eye_y = -(head.axes[1] - 22.0 * s)
        eye_center = [32.0 * side * s, eye_y, head.base_height(32.0 * s, eye_y) - 14.0 * s]
        put(below_base & (_ellipsoid(x, y, z, eye_center, np.full(3, 11.0 * s)) <= 1.0), "scalp", "csf")  # vitreous
    sphenoid_center = [0.0, -12.0 * s, head.base_height(0.0, -12.0 * s) - 11.0 * s]
    put(below_base & (_ellipsoid(x, y, z, sphenoid_center, np.array([11.0, 9.0, 8.0]) * s) <= 1.0), "air")
    frontal_z = head.base_height(0.0, -head.axes[1]) + 12.0 * s
    front = head.axes[1] * np.sqrt(max(1.0 - (frontal_z / head.axes[2]) ** 2, 0.1))
    frontal_center = [0.0, -(front - head.scalp_mm - 0.5 * head.skull_mm), frontal_z]
    frontal_sinus = _ellipsoid(x, y, z, frontal_center, np.array([14.0, 5.0, 9.0]) * s) <= 1.0
    put(frontal_sinus & (tissue == CODE["bone"]), "air")
    return tissue, signal


def render_anatomy(head: Head, grid: Grid, sulci: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tissue codes (uint8) and relative signal (float32) on the scan grid, slab by slab."""
    tissue = np.zeros(grid.shape, dtype=np.uint8)
    signal = np.zeros(grid.shape, dtype=np.float32)
    whole = tuple(slice(0, n) for n in grid.shape)
    to_head = head.rotation.T
    for slab in grid.slabs(whole):
        x, y, z = grid.axes(slab)
        offsets = (x - head.center_lps[0], y - head.center_lps[1], z - head.center_lps[2])
        head_x, head_y, head_z = (sum(float(to_head[a, b]) * offsets[b] for b in range(3)) for a in range(3))
        tissue[slab], signal[slab] = render_tissue(head, head_x, head_y, head_z, sulci[slab])
    return tissue, signal


# ---------------------------------------------------------------------------------------------------------------
# Veins: hypointense tubes along tortuous paths


@dataclass
class Vein:
    """A vein: its kind, centre line (LPS mm), diameter and the fraction of a covered voxel's signal it removes."""

    kind: str
    points_lps: np.ndarray
    diameter_mm: float
    darkening: float


def _tortuous_path(rng, start, course, length_mm: float, stop) -> np.ndarray:
    """A smooth random walk from `start` that keeps to its course, until `stop(point)` or `length_mm`."""
    course = unit(course)
    points, heading, bend = [np.asarray(start, dtype=float)], course, np.zeros(3)
    for _ in range(int(length_mm / VEIN_STEP_MM)):
        bend = 0.7 * bend + 0.12 * rng.standard_normal(3)
        heading = unit(heading + bend + 0.15 * (course - heading))
        point = points[-1] + VEIN_STEP_MM * heading
        if stop(point):
            break
        points.append(point)
    return np.array(points)


def _wiggled(rng, points: np.ndarray, amplitude_mm: float) -> np.ndarray:
    """Points about 1 mm apart along a polyline, displaced by a smooth random offset of `amplitude_mm`."""
    dense = resample(points, 1.0)
    offset = ndimage.gaussian_filter1d(rng.standard_normal(dense.shape), 4.0, axis=0, mode="nearest")
    offset *= amplitude_mm / max(float(offset.std()), 1e-6)
    offset[0] = offset[-1] = 0.0  # keep the ends where veins join
    return dense + offset


def _medullary_vein(rng, head: Head) -> np.ndarray | None:
    """From the roof of a lateral ventricle up and out through the white matter to the cortex."""
    s, side = head.size, float(rng.choice([-1.0, 1.0]))
    y = rng.uniform(-20.0, 30.0) * s
    start = [side * rng.uniform(9.0, 20.0) * s, y, 26.0 * s - 0.004 * (y - 5.0 * s) ** 2 / s + 1.5]
    course = [side * rng.uniform(0.2, 0.7), rng.uniform(-0.3, 0.3), 1.0]
    path = _tortuous_path(rng, start, course, 70.0, lambda p: head.cortical_depth(*p) < head.cortex_mm + 0.5)
    return path if np.ptp(path[:, 2]) >= MIN_VEIN_RISE_MM else None


def _cortical_vein(rng, head: Head) -> np.ndarray | None:
    """Over the convexity in the subarachnoid space, up towards the midline at the vertex."""
    side, azimuth, elevation = float(rng.choice([-1.0, 1.0])), rng.uniform(-1.0, 1.0), rng.uniform(-0.05, 0.6)
    direction = unit(
        [side * np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)]
    )
    points, bend = [], np.zeros(3)
    for _ in range(int(160.0 / VEIN_STEP_MM)):
        points.append(head.inner_table_point(direction, 0.5 * head.csf_mm))
        if abs(direction[0]) < 0.08:
            break
        towards = unit([0.0, direction[1], 1.0]) - direction
        bend = 0.7 * bend + 0.3 * rng.standard_normal(3)
        direction = unit(direction + VEIN_STEP_MM / np.linalg.norm(points[-1]) * (unit(towards) + bend))
    path = np.array(points)
    return path if len(path) > 2 and np.ptp(path[:, 2]) >= MIN_VEIN_RISE_MM else None


def draw_veins(rng, head: Head) -> list[Vein]:
    """Medullary and cortical veins, the deep venous system and a superior sagittal vein (head frame → scan)."""
    s = head.size
    drawn: list[tuple[str, np.ndarray, float]] = []
    for kind, count, draw, diameters in (
        ("medullary", rng.integers(*MEDULLARY_VEINS), _medullary_vein, (0.5, 1.2)),
        ("cortical", rng.integers(*CORTICAL_VEINS), _cortical_vein, (1.0, 2.5)),
    ):
        for _ in range(count):
            path = next((p for p in (draw(rng, head) for _ in range(5)) if p is not None), None)
            if path is not None:
                drawn.append((kind, path, rng.uniform(*diameters)))
    galen = np.array([0.0, 38.0, 15.0]) * s
    for side in (-1.0, 1.0):
        internal = np.array(
            [[2.5 * side, -4.0, 14.0], [2.5 * side, 8.0, 13.5], [2.0 * side, 20.0, 13.0], [side, 30.0, 12.5]]
        )
        drawn.append(("internal cerebral", np.vstack([internal * s, galen]), rng.uniform(1.5, 2.5)))
        thalamostriate = np.array([[14.0 * side, 26.0, 21.0], [12.0 * side, 12.0, 19.0], [8.0 * side, 2.0, 16.0]]) * s
        drawn.append(("thalamostriate", np.vstack([thalamostriate, internal[0] * s]), rng.uniform(1.0, 2.0)))
    straight_radius = rng.uniform(2.5, 3.0) / 2.0
    torcula = head.inner_table_point(unit([0.0, 1.0, -0.3]), straight_radius)
    drawn.append(("straight sinus", np.array([galen, [0.0, 46.0 * s, 16.0 * s], torcula]), 2.0 * straight_radius))
    sagittal_radius = rng.uniform(2.5, 3.0) / 2.0
    angles = np.deg2rad(np.arange(rng.uniform(25.0, 40.0), rng.uniform(175.0, 190.0), 3.0))
    sagittal = [head.inner_table_point(np.array([0.0, -np.cos(a), np.sin(a)]), sagittal_radius + 0.2) for a in angles]
    drawn.append(("superior sagittal", np.array(sagittal), 2.0 * sagittal_radius))
    veins = []
    for kind, path, diameter in drawn:
        points = _wiggled(rng, path, rng.uniform(*VEIN_WIGGLE_MM) * min(1.0, diameter))
        veins.append(Vein(kind, head.to_scan(points), float(diameter), float(rng.uniform(*VEIN_DARKENING))))
    return veins


def paint_vein(signal: np.ndarray, vein_mask: np.ndarray, grid: Grid, vein: Vein) -> None:
    """Darken the voxels a vein covers (analytic partial volume) and label those it half covers or runs through."""
    radii = np.full(len(vein.points_lps), vein.diameter_mm / 2.0)
    covered = segments_fraction(grid, polyline_segments(vein.points_lps, radii))
    if covered is None:
        return
    crop, fraction = covered
    signal[crop] *= 1.0 - vein.darkening * fraction
    vein_mask[crop] |= fraction >= 0.5
    centre_line = resample(vein.points_lps, 0.25 * min(grid.pixel_mm, grid.spacing_mm))
    ijk = np.rint(_lps_to_ijk(grid, centre_line)).astype(int)
    inside = np.all((ijk >= 0) & (ijk < grid.shape[::-1]), axis=1)
    vein_mask[ijk[inside, 2], ijk[inside, 1], ijk[inside, 0]] = True


def _lps_to_ijk(grid: Grid, points_lps: np.ndarray) -> np.ndarray:
    origin = np.array([grid.x[0], grid.y[0], grid.z[0]])
    return (np.asarray(points_lps) - origin) / np.array([grid.pixel_mm, grid.pixel_mm, grid.spacing_mm])


# ---------------------------------------------------------------------------------------------------------------
# Blobs: microbleeds, calcifications and susceptibility artefacts


@dataclass(frozen=True)
class Blob:
    """A dark ellipsoid with an irregular, soft edge: signal × (1 − darkening · ½ erfc((ρ − 1)·r / (√2·halo)))."""

    center_lps: np.ndarray
    frame: np.ndarray  # columns: the ellipsoid's axes (LPS)
    semi_axes_mm: np.ndarray
    halo_mm: float
    darkening: float
    waves: np.ndarray = field(default_factory=lambda: np.zeros((0, 5)))  # rows: wave vector (rad/mm), phase, amplitude

    @property
    def radius_mm(self) -> float:
        """Radius of the sphere of the same volume."""
        return float(np.cbrt(np.prod(self.semi_axes_mm)))

    @property
    def reach_mm(self) -> float:
        return float(self.semi_axes_mm.max() * (1.0 + np.abs(self.waves[:, 4]).sum()) + 3.0 * self.halo_mm)

    def normalised_radius(self, x, y, z):
        """ρ: 1 on the surface, below 1 inside."""
        dx, dy, dz = x - self.center_lps[0], y - self.center_lps[1], z - self.center_lps[2]
        rho2 = 0.0
        for axis in range(3):
            along = self.frame[0, axis] * dx + self.frame[1, axis] * dy + self.frame[2, axis] * dz
            rho2 = rho2 + (along / self.semi_axes_mm[axis]) ** 2
        bulge = 1.0
        for kx, ky, kz, phase, amplitude in self.waves:
            bulge = bulge + amplitude * np.cos(kx * dx + ky * dy + kz * dz + phase)
        return np.sqrt(rho2) / bulge

    def profile(self, rho):
        """Darkening fraction at ρ: ≈1 in the core, ½ on the surface, a soft tail outside (the blooming)."""
        return 0.5 * special.erfc((rho - 1.0) * self.radius_mm / (np.sqrt(2.0) * max(self.halo_mm, 0.05)))


def blob_fractions(grid: Grid, blob: Blob):
    """(crop, inside, darkening): per voxel (pixel × slice, supersampled) the fraction inside the surface and the
    mean darkening; None when the blob misses the grid."""
    reach = blob.reach_mm + grid.pixel_mm
    crop = grid.crop(blob.center_lps - reach, blob.center_lps + reach)
    if crop is None:
        return None
    pitch = float(np.clip(blob.semi_axes_mm.min() / 3.0, 0.2, 1.0))
    in_plane, across = _sub_offsets(grid.pixel_mm, pitch), _sub_offsets(grid.spacing_mm, pitch)
    dz, dy, dx = (offsets.ravel() for offsets in np.meshgrid(across, in_plane, in_plane, indexing="ij"))
    x, y, z = (axis[..., None] for axis in grid.axes(crop))
    rho = blob.normalised_radius(x + dx, y + dy, z + dz)
    return crop, (rho <= 1.0).mean(axis=-1), blob.profile(rho).mean(axis=-1)


def _sub_offsets(width_mm: float, pitch_mm: float) -> np.ndarray:
    """Centres of equal parts, about `pitch_mm` wide, of a voxel `width_mm` wide, relative to its centre."""
    count = int(np.ceil(width_mm / pitch_mm))
    return ((np.arange(count) + 0.5) / count - 0.5) * width_mm


def _random_frame(rng) -> np.ndarray:
    return Rotation.from_quat(unit(rng.standard_normal(4))).as_matrix()


def _waves(rng, count: int, wavelength_mm: tuple[float, float], amplitude: tuple[float, float]) -> np.ndarray:
    directions = unit(rng.standard_normal((count, 3)))
    numbers = 2.0 * np.pi / rng.uniform(*wavelength_mm, size=(count, 1))
    return np.column_stack(
        [directions * numbers, rng.uniform(0, 2 * np.pi, count), rng.uniform(*amplitude, count) / max(count, 1)]
    )


def draw_mimics(rng, head: Head) -> list[tuple[str, str, Blob]]:
    """(kind, site, blob): calcifications and air/bone susceptibility signal loss low in the head."""
    s = head.size
    sites = {"pineal": [np.array([0.0, 27.0, 7.0]) * s]}
    sites["choroid plexus"] = [np.array([side * 13.5, 28.0, 17.5]) * s for side in (-1.0, 1.0)]
    sites["pallidum"] = [np.array([side * 19.5, 0.0, 2.0]) * s for side in (-1.0, 1.0)]
    mimics = []
    for site, (probability, diameters) in CALCIFICATIONS.items():
        if rng.random() >= probability:
            continue
        for center in sites[site]:
            radius = rng.uniform(*diameters) / 2.0
            blob = Blob(
                head.to_scan(center),
                _random_frame(rng),
                radius * rng.uniform(0.7, 1.0, 3),
                0.1 * radius,
                float(rng.uniform(*CALCIFICATION_DARKENING)),
                _waves(rng, 3, (1.5, 4.0), (0.15, 0.35)),
            )
            mimics.append(("calcification", site, blob))
    artefacts = []  # site, x, y, height above the skull base (head frame, mm), semi-axes (mm)
    if rng.random() < ARTEFACT_PROBABILITY["frontal base"]:
        x, y = rng.uniform(-14.0, 14.0) * s, -rng.uniform(0.55, 0.75) * head.axes[1]
        artefacts.append(("frontal base", x, y, rng.uniform(3.0, 9.0), rng.uniform([6, 5, 3], [14, 10, 7])))
    for side in (-1.0, 1.0):
        if rng.random() < ARTEFACT_PROBABILITY["petrous"]:
            x, y = side * rng.uniform(36.0, 48.0) * s, rng.uniform(-5.0, 15.0) * s
            artefacts.append(("petrous", x, y, rng.uniform(2.0, 8.0), rng.uniform([5, 5, 3], [12, 10, 6])))
    for site, x, y, height, semi_axes in artefacts:
        center = [x, y, head.base_height(x, y) + head.csf_mm + height]
        frame = head.rotation @ rotation_about(rng.standard_normal(3), np.deg2rad(rng.uniform(0, 20)))
        blob = Blob(
            head.to_scan(center),
            frame,
            semi_axes,
            float(rng.uniform(1.0, 3.0)),
            float(rng.uniform(*ARTEFACT_DARKENING)),
            _waves(rng, 5, (5.0, 15.0), (0.35, 0.6)),
        )
        mimics.append(("susceptibility artefact", site, blob))
    return mimics


def draw_microbleed_count(rng) -> tuple[int, float]:
    """(count, lobar probability) of one scan."""
    lobar_probability = float(rng.beta(*LOBAR_BETA))
    if rng.random() < NEGATIVE_PROBABILITY:
        return 0, lobar_probability
    while (count := 1 + int(rng.negative_binomial(*COUNT_NEGATIVE_BINOMIAL))) > MAX_MICROBLEEDS:
        pass
    return count, lobar_probability


def draw_microbleed_shape(rng) -> tuple[float, np.ndarray]:
    """(equivalent diameter mm, semi-axes mm) from the real quantiles."""
    diameter = float(np.interp(rng.random(), *zip(*DIAMETER_QUANTILES_MM)))
    elongation = float(np.interp(rng.random(), *zip(*ELONGATION_QUANTILES)))
    flatness = min(float(np.interp(rng.random(), *zip(*FLATNESS_QUANTILES))), elongation)
    major = diameter / 2.0 / np.cbrt(elongation * flatness)
    return diameter, major * np.array([1.0, elongation, flatness])


def _near(tissue: np.ndarray, kji, code: int, distance_mm: float, spacing_kji) -> bool:
    """Whether tissue `code` lies `distance_mm` from voxel `kji` along one of the six axis directions."""
    for axis in range(3):
        step = max(1, round(distance_mm / spacing_kji[axis]))
        for sign in (-1, 1):
            index = list(kji)
            index[axis] += sign * step
            if 0 <= index[axis] < tissue.shape[axis] and tissue[tuple(index)] == code:
                return True
    return False


def _fits(grid: Grid, center, reach: float) -> bool:
    """Whether a ball round `center` (LPS) lies inside the grid."""
    low = np.array([grid.x[0], grid.y[0], grid.z[0]])
    high = np.array([grid.x[-1], grid.y[-1], grid.z[-1]])
    return bool(np.all(center - reach >= low) and np.all(center + reach <= high))


def _free_position(rng, grid: Grid, tissue, occupied, candidates: np.ndarray, region: str, reach: float):
    """A centre (LPS) in one of the candidate voxels, fitting the region's rule, inside the grid and `reach` mm
    clear of anything occupied; None when PLACEMENT_TRIES fail."""
    spacing = (grid.spacing_mm, grid.pixel_mm, grid.pixel_mm)
    for _ in range(PLACEMENT_TRIES if len(candidates) else 0):
        kji = np.unravel_index(int(rng.choice(candidates)), tissue.shape)
        if region == "cortex / grey-white junction" and not _near(tissue, kji, CODE["white"], JUNCTION_MM, spacing):
            continue
        if region == "subcortical white matter" and not _near(tissue, kji, CODE["grey"], SUBCORTICAL_MM, spacing):
            continue
        jitter = rng.uniform(-0.5, 0.5, 3) * np.array([grid.pixel_mm, grid.pixel_mm, grid.spacing_mm])
        center = np.array([grid.x[kji[2]], grid.y[kji[1]], grid.z[kji[0]]]) + jitter
        if (
            _fits(grid, center, reach + grid.spacing_mm)
            and not occupied[grid.crop(center - reach, center + reach)].any()
        ):
            return center
    return None


def place_microbleeds(rng, grid: Grid, tissue, occupied, count: int, lobar_probability: float) -> list[tuple]:
    """(region, "lobar" or "deep", blob) of up to `count` microbleeds clear of veins, mimics and each
    other; `occupied` grows by each one placed."""
    candidates: dict[str, np.ndarray] = {}
    placed = []
    for _ in range(count):
        lobar = bool(rng.random() < lobar_probability)
        regions = [region for region in REGION_COUNTS if (region in LOBAR_REGIONS) == lobar]
        weights = np.array([REGION_COUNTS[region] for region in regions], dtype=float)
        region = str(rng.choice(regions, p=weights / weights.sum()))
        if region not in candidates:
            candidates[region] = np.flatnonzero(tissue == CODE[REGION_TISSUE[region]])
        diameter, semi_axes = draw_microbleed_shape(rng)
        reach = float(semi_axes.max()) + CLEARANCE_MM
        center = _free_position(rng, grid, tissue, occupied, candidates[region], region, reach)
        if center is None:
            continue
        halo = rng.uniform(*BLOOM_FRACTION) * diameter / 2.0
        blob = Blob(center, _random_frame(rng), semi_axes, float(halo), float(rng.uniform(*MICROBLEED_DARKENING)))
        occupied[grid.crop(center - reach, center + reach)] = True
        placed.append((region, "lobar" if lobar else "deep", blob))
    return placed


def slice_boxes(labels_crop: np.ndarray, crop, label: int) -> list[dict]:
    """Per slice: [x0, y0, x1, y1] pixel edges (x along i, y along j; x1, y1 one past the last pixel)."""
    boxes = []
    for k in range(labels_crop.shape[0]):
        rows, columns = np.nonzero(labels_crop[k] == label)
        if rows.size:
            j0, i0 = crop[1].start, crop[2].start
            box = [i0 + int(columns.min()), j0 + int(rows.min()), i0 + int(columns.max()) + 1, j0 + int(rows.max()) + 1]
            boxes.append({"microbleed": label, "slice": crop[0].start + k, "box_xyxy": box})
    return boxes


def _lps_to_ras(points) -> list[float]:
    return (np.asarray(points, dtype=float) * [-1.0, -1.0, 1.0]).tolist()


def bias_field(grid: Grid, coefficients, strength: float) -> np.ndarray:
    """exp(strength · g): g a quadratic in scan coordinates (per 100 mm), zero mean and unit SD over the grid."""
    x, y, z = (axis / 100.0 for axis in grid.axes(tuple(slice(0, n) for n in grid.shape)))
    terms = (x, y, z, x * x, y * y, z * z, x * y, x * z, y * z)
    sample = sum(c * term[::4, ::8, ::8] for c, term in zip(coefficients, terms))
    log_bias = sum(np.float32(c) * t for c, t in zip(coefficients, terms))
    return np.exp(np.float32(strength) * (log_bias - np.float32(sample.mean())) / np.float32(sample.std()))


def make_swi_case(seed: int, matrix=None, n_slices=None, pixel_mm=None, slice_mm=None) -> SwiCase:
    """One seeded scan. `matrix`, `n_slices`, `pixel_mm`, `slice_mm` replace the drawn grid; the head stays."""
    anatomy_rng, scan_rng, field_rng, vessel_rng, lesion_rng, noise_rng = (
        np.random.default_rng([seed, n]) for n in range(6)
    )
    head = draw_head(anatomy_rng)
    scan = draw_scan(scan_rng, head, matrix, n_slices, pixel_mm, slice_mm)
    grid = scan_grid(scan)
    tissue, signal = render_anatomy(head, grid, smooth_field(field_rng, grid, SULCUS_SIGMA_MM))
    vein_mask = np.zeros(grid.shape, dtype=bool)
    objects = []
    for vein in draw_veins(vessel_rng, head):
        paint_vein(signal, vein_mask, grid, vein)
        length = float(np.linalg.norm(np.diff(vein.points_lps, axis=0), axis=1).sum())
        objects.append(
            {
                "kind": "vein",
                "site": vein.kind,
                "diameter_mm": vein.diameter_mm,
                "length_mm": length,
                "darkening": vein.darkening,
            }
        )
    mimic_mask = np.zeros(grid.shape, dtype=np.uint8)
    for kind, site, blob in draw_mimics(vessel_rng, head):
        covered = blob_fractions(grid, blob)
        if covered is None:
            continue
        crop, inside, darkening = covered
        signal[crop] *= 1.0 - blob.darkening * darkening
        mimic_mask[crop][inside >= 0.5] = MIMIC_CODES[kind]
        objects.append(_blob_record(blob) | {"kind": kind, "site": site})
    count, lobar_probability = draw_microbleed_count(lesion_rng)
    labels = np.zeros(grid.shape, dtype=np.uint16)
    microbleeds, boxes = [], []
    occupied = vein_mask | (mimic_mask > 0)
    for label, (region, location, blob) in enumerate(
        place_microbleeds(lesion_rng, grid, tissue, occupied, count, lobar_probability), start=1
    ):
        crop, inside, darkening = blob_fractions(grid, blob)
        signal[crop] *= 1.0 - blob.darkening * darkening
        region_labels = labels[crop]
        labelled = inside >= 0.5 if (inside >= 0.5).any() else inside == inside.max()
        region_labels[labelled & (region_labels == 0)] = label
        slices = np.flatnonzero((region_labels == label).any(axis=(1, 2))) + crop[0].start
        microbleeds.append(
            _blob_record(blob)
            | {
                "id": label,
                "location": location,
                "region": region,
                "center_ijk": _lps_to_ijk(grid, blob.center_lps).tolist(),
                "slices": [int(slices.min()), int(slices.max())],
                "voxels": int((region_labels == label).sum()),
            }
        )
        boxes += slice_boxes(region_labels, crop, label)
    signal *= bias_field(grid, scan["bias_coefficients"], scan["bias_strength"])
    for axis in (1, 2):
        ndimage.gaussian_filter1d(signal, scan["psf_pixels"], axis=axis, mode="nearest", output=signal)
    signal *= np.float32(scan["white_signal"])
    sd = np.float32(scan["noise_sd"])
    real = signal + sd * noise_rng.standard_normal(grid.shape, dtype=np.float32)
    imaginary = sd * noise_rng.standard_normal(grid.shape, dtype=np.float32)
    magnitude = np.hypot(real, imaginary)
    volume = Volume(magnitude, ijk_to_ras(grid), name=f"synthetic SWI {seed}", modality="MR")
    return SwiCase(
        volume=volume,
        masks={"microbleeds": labels, "veins": vein_mask, "mimics": mimic_mask},
        tissue=tissue,
        microbleeds=microbleeds,
        boxes=boxes,
        objects=objects,
        settings={
            "seed": int(seed),
            "generator_version": GENERATOR_VERSION,
            **scan,
            "head": {
                "axes_mm": head.axes.tolist(),
                "scalp_mm": head.scalp_mm,
                "skull_mm": head.skull_mm,
                "csf_mm": head.csf_mm,
                "cortex_mm": head.cortex_mm,
                "sulcus_depth_mm": head.sulcus_depth_mm,
                "base_z_mm": head.base_z,
                "base_mm": head.base_mm,
                "pose_deg": head.pose_deg,
                "rotation": head.rotation.tolist(),
                "center_lps_mm": head.center_lps.tolist(),
            },
            "contrast": head.contrast,
            "microbleeds_drawn": count,
            "microbleeds_placed": len(microbleeds),
            "lobar_probability": lobar_probability,
        },
    )


def _blob_record(blob: Blob) -> dict:
    return {
        "center_ras_mm": _lps_to_ras(blob.center_lps),
        "diameter_mm": 2.0 * blob.radius_mm,  # of the sphere of the same volume
        "semi_axes_mm": blob.semi_axes_mm.tolist(),
        "axes_ras": (blob.frame * [[-1.0], [-1.0], [1.0]]).T.tolist(),
        "halo_mm": blob.halo_mm,
        "darkening": blob.darkening,
    }


def write_case(case: SwiCase, out: Path) -> None:
    """swi.nrrd, microbleeds.nrrd (ids), veins.nrrd, mimics.nrrd, tissue.nrrd and case.json (settings, records)."""
    from LesionDetectLib.io.volume_io import write_nrrd

    out.mkdir(parents=True, exist_ok=True)
    write_nrrd(case.volume, out / "swi.nrrd", overwrite=True)
    for name, labels in {**case.masks, "tissue": case.tissue}.items():
        labels = labels.astype(np.uint8) if labels.dtype == bool else labels
        write_nrrd(
            Volume(labels, case.volume.ijk_to_ras, name=name), out / f"{name}.nrrd", overwrite=True, compress=True
        )
    record = {
        "settings": case.settings,
        "tissues": list(TISSUES),
        "mimic_codes": MIMIC_CODES,
        "microbleeds": case.microbleeds,
        "boxes": case.boxes,
        "objects": case.objects,
    }
    (out / "case.json").write_text(json.dumps(record, indent=1) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--matrix", type=int, help="in-plane matrix (default: field of view / drawn pixel)")
    parser.add_argument("--slices", type=int, help="number of slices (default: drawn coverage / thickness)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    case = make_swi_case(args.seed, matrix=args.matrix, n_slices=args.slices)
    write_case(case, args.out)
    k, j, i = case.volume.array.shape
    regions = [m["region"] for m in case.microbleeds]
    print(f"{i}×{j}×{k} voxels of {case.volume.spacing.round(2).tolist()} mm; {len(regions)} microbleeds: {regions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Synthetic X-ray coronary angiography cine runs with exact stenosis ground truth (METHODS.md E).

    python training/synthetic_angiography.py --seed 3 --out runs/angio3   # frames/frame_000.png …, clip.json

One coronary system per run, as a real left or right injection shows it: the left (left main → LAD with
diagonals and septals, LCX with obtuse marginals) or the right (RCA with conus, right-ventricular, posterior
descending and posterolateral branches), built as 3D centrelines with tapering lumen radii on the surface of a
half-ellipsoid heart, in patient LPS millimetres from the C-arm's isocentre. A projection through a randomised
standard view (LAO/RAO, cranial/caudal) with a point source, a source–detector distance and magnification gives
the frames. Contrast enters at the ostium and travels down the tree (arrival, filled phase, wash-out); the heart
contracts, twists and swings with the cardiac cycle and shifts with respiration; a catheter runs from the ostium
up the aorta and down along the spine; body, lungs (their lower edge is the diaphragm), heart shadow, vertebrae and
ribs attenuate smoothly behind it all. Detector counts get scatter, blur, Poisson and electronic noise, are
log-transformed and windowed to uint8 or uint16 (vessels dark on a brighter background), and burned-in text sits in
the corners.

Ground truth per run: the label ("stenosis" when some stenosis shows in some frame, else "normal"), every
stenosis (vessel, segment, arc length, length, severity, reference and minimal diameter, centre in pixels per
frame), a box per frame where it shows (contrast at its centre ≥ VISIBLE_CONCENTRATION, centre inside the frame),
the filled fraction of the tree per frame (length-weighted contrast, 1 = all filled) and the filled-phase frames
(fraction ≥ FILLED_FRACTION), the text boxes per frame, and `settings` with every randomised value. Boxes are
[x0, y0, x1, y1] in pixel-edge coordinates as `ImageSequence.box_px_to_ras` reads them: the narrowed core of the
projected lumen, grown to a size drawn from the real annotations' distribution (REAL_BOX_SIZE, from the Danilov
set), shifted a little as annotators do, never off the stenosis centre.

Randomised per run (uniform unless given; every drawn value is in `settings`, the exposure, display and lung
texture once frames are rendered; the constants below hold most ranges):
- system: left 65 %, right 35 % (`LEFT_SYSTEM_PROBABILITY`).
- view (`STANDARD_VIEWS`, each angle ±8°): left RAO 30/CAU 25, RAO 30/CRA 30, AP/CRA 35, LAO 45/CRA 25,
  LAO 45/CAU 30, AP/CAU 30, LAO 60; right LAO 30, LAO 45, RAO 30, AP/CRA 25, LAO 30/CRA 20.
- geometry: source–isocentre 700–800 mm, source–detector 950–1200 mm (magnification 1.19–1.71 at the isocentre),
  detector field 102–205 mm (`FIELD_MM`: imager pixel spacing 0.2–0.4 mm at 512²; other matrices keep the field);
  table pan putting the first 60 mm of the tree 22–48 % across and 12–34 % down (`PAN_TARGET`).
- heart: base radius 42–52 mm, base → apex 80–98 mm, long axis 30–55° from left towards anterior and 15–35° down,
  centre ±15 mm about the isocentre; aortic root 8–16 mm above the base.
- lumen diameters, proximal → distal (exponential taper): LM 3.6–4.5 → 3.4–4.2 mm, 6–14 mm long; LAD 3.0–4.0 →
  1.0–1.5; LCX 2.8–3.8 → 1.2–1.8, to 120–190° round the groove; 1 / 2 / 3 diagonals (30 / 45 / 25 %) 1.7–2.6
  (× 0.85 each further one) → 0.8–1.1; 1–3 obtuse marginals 1.6–2.5 (× 0.9) → 0.8–1.1; 2–4 septals 0.8–1.3 → 0.6,
  15–35 mm; RCA 3.2–4.5 → 2.0–2.8 at the crux; conus 1.0–1.4 → 0.6; 1–2 RV branches 1.2–1.8 → 0.7; PDA 1.6–2.3 →
  0.8–1.0; PLB 1.5–2.2 → 0.8–1.0. Tortuosity 0.5–2.5 mm at a 15–40 mm wavelength.
- stenoses: none in 50 % of runs (`NORMAL_PROBABILITY`), else 1 / 2 / 3 at 60 / 30 / 10 %; 25–90 % diameter
  reduction; focal (raised cosine, 4–12 mm) 75 %, diffuse (irregular plateau, 15–35 mm) 25 %; where the reference
  lumen is ≥ 1.5 mm and the view shows it (5–95 % of the frame), placed preferably where real boxes are.
- boxes: a size drawn from the real sizes (`REAL_BOX_SIZE`), per-frame jitter 8 %, off centre by up to 12 % of the
  size; never smaller than the narrowed core (length / 4, 0.5–2 mm either side of the centre).
- contrast, as shares of the run: arrival −3–12 %, rise 4–8 %, travel to the tree's end 8–18 %, plateau at the ostium
  32–45 %, wash-out time constant 5–12 %; iodinated blood 0.10–0.22 /mm.
- run: 7.5 / 10 / 12.5 / 15 / 25 / 30 fps at 10 / 10 / 15 / 35 / 15 / 15 %, 2.5–6 s, 10–60 frames.
- cardiac motion: 55–100 bpm, systole 30–40 % and relaxation 15–25 % of the cycle, radial shortening 10–22 %,
  longitudinal 8–16 %, twist 4–12°, swing 2–6 mm; respiration 3–6 s period, 0–6 mm, mostly head–foot.
- catheter: radius 0.8–1.1 mm, wall 0.05–0.12 /mm plus half the vessels' iodine while injecting; ascending aorta
  50–70 mm, descending 15–25 mm left of the spine.
- background: body 300–380 × 200–260 mm, soft tissue 0.018–0.022 /mm; lungs 70–85 % less, their lower poles the
  diaphragm (right dome 20–45 mm below the base, left 5–20 mm lower); heart shadow 50–90 % of the lung deficit;
  vertebrae every 28–33 mm and ribs every 24–30 mm (radius 4–6 mm, 40–60 mm lower in front), bone 0.010–0.020 /mm
  over soft tissue; lung texture 0.01–0.04 at 2–6 mm; edges softened by 2–6 mm.
- exposure: 150–1500 quanta per 512² pixel behind the patient (scaled with the pixel's area), scatter-to-primary
  0.2–0.8, electronic noise 2–8 quanta, focal spot and detector blur 0.12–0.35 mm, noise filter 0–0.7 pixels at 512².
- display: dynamic range compression 60–90 % at 12–30 mm, edge enhancement 0–0.5 at 0.5–1.5 mm, window from the
  run's 0.02–0.3 % to 90–99.5 % log-intensity percentiles, gamma 0.8–1.3; 8 bits (uint8) 70 %, 10 or 12 bits
  (uint16) 15 % each.
- text: patient, study, acquisition (view, 65–95 kV, 300–900 mA, fps) and frame-counter blocks, present at 90 / 60 /
  80 / 85 %, in distinct random corners; font 9–16 px at 512² (at least 4 px, each block within 45 % of the width),
  margin 3–14 px at 512², grey 80–100 % of white, a dark outline in 50 %.

What it is: simple smooth shapes arranged like a chest and a coronary tree, with exact ground truth. What it is not:
real anatomy, a vendor's image processing (here only a range compression and an edge enhancement), collimator
shutters, an image intensifier's circular field, stents, wires or overlapping veins. A model trained here must be
checked on real runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.fft
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage
from scipy.interpolate import CubicSpline

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "LesionDetect"))

from LesionDetectLib.io.image_sequence import ImageSequence  # noqa: E402

GENERATOR_VERSION = "1.0.0"
NATIVE_MATRIX = 512  # the matrix the pixel-spacing, font and dose ranges are given for
FILLED_FRACTION = 0.85  # a frame is in the filled phase when the tree holds at least this share of full contrast
VISIBLE_CONCENTRATION = 0.5  # a stenosis shows (and is boxed) where its centre holds at least this share
LEFT_SYSTEM_PROBABILITY = 0.65
NORMAL_PROBABILITY = 0.5
STENOSIS_COUNT_PROBABILITIES = {1: 0.6, 2: 0.3, 3: 0.1}
SEVERITY_RANGE = (0.25, 0.9)  # diameter reduction
FOCAL_LENGTH_MM = (4.0, 12.0)
DIFFUSE_LENGTH_MM = (15.0, 35.0)
DIFFUSE_PROBABILITY = 0.25
MIN_STENOSIS_DIAMETER_MM = 1.5  # stenoses sit where the reference lumen is at least this wide
VIEW_JITTER_DEG = 8.0
STANDARD_VIEWS = {  # (LAO + / RAO −, cranial + / caudal −) in degrees
    "left": ((-30, -25), (-30, 30), (0, 35), (45, 25), (45, -30), (0, -30), (60, 0)),
    "right": ((30, 0), (45, 0), (-30, 0), (0, 25), (30, 20)),
}
FRAME_RATES = (7.5, 10.0, 12.5, 15.0, 25.0, 30.0)
FRAME_RATE_PROBABILITIES = (0.1, 0.1, 0.15, 0.35, 0.15, 0.15)
RUN_SECONDS = (2.5, 6.0)
FRAME_COUNT_RANGE = (10, 60)
FIELD_MM = (0.2 * NATIVE_MATRIX, 0.4 * NATIVE_MATRIX)  # detector field: 0.2–0.4 mm imager pixels at 512²
PAN_TARGET = ((0.22, 0.48), (0.12, 0.34))  # where the proximal tree lands: fraction across, fraction down
MIN_FONT_PX = 4
MAX_TEXT_WIDTH = 0.45  # share of the frame's width one text block may take
BITS = (8, 10, 12)
BITS_PROBABILITIES = (0.7, 0.15, 0.15)
SAMPLE_PX = 0.4  # centreline samples at most this far apart in the image
RADIUS_BAND_START_PX = 0.25  # tube discs are drawn in radius bands growing by RADIUS_BAND_RATIO
RADIUS_BAND_RATIO = 1.15
BACKGROUND_FACTOR = 4  # the smooth background is computed on a grid this many times coarser
TEXTURE_LATTICE = 96  # the lung texture's lattice over the detector field, whatever the matrix
QUANTILE_LEVELS = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
# Real stenosis boxes, as fractions of the (square) image side, at QUANTILE_LEVELS: atabekis/stenosis,
# data/DANILOV/labels.csv (the Danilov angiography set, 8,326 boxes; the 54 of files 14_002_* left out,
# they are reserved for evaluation): 8,272 boxes in 212 runs, one box per frame. training/stenosis_box_statistics.py
# recomputes them from the CSV.
REAL_BOX_WIDTH = (0.0176, 0.025, 0.03, 0.04, 0.055, 0.0775, 0.1038, 0.1175, 0.1425)
REAL_BOX_HEIGHT = (0.019, 0.026, 0.03, 0.0371, 0.0475, 0.06, 0.08, 0.0957, 0.165)
REAL_BOX_SIZE = (0.0207, 0.0265, 0.0312, 0.0429, 0.0534, 0.0642, 0.0757, 0.0839, 0.1322)  # √(width × height)
REAL_BOX_CENTRE_X = (0.1238, 0.1888, 0.2281, 0.2881, 0.3888, 0.5188, 0.6062, 0.6652, 0.771)
REAL_BOX_CENTRE_Y = (0.093, 0.1394, 0.1662, 0.2212, 0.2931, 0.4094, 0.54, 0.6281, 0.7388)
REAL_CENTRE_SPREAD_IN_RUN = 0.0355  # median over runs (≥ 5 boxes) of √(sd x² + sd y²) of a box centre over frames
STENOSIS_DRAWS = ("vessel", "arc_mm", "length_mm", "severity", "kind", "box_size", "box_shift", "box_jitter_seed",
                  "irregularity_phase")  # fmt: skip
BOX_SIZE_JITTER = 0.08  # per-frame log-normal jitter of an annotator's box size
BOX_CORE_HALF_MM = (0.5, 2.0)  # an annotator boxes the tightest few mm, of a diffuse stenosis too
BOX_SHIFT = 0.12  # an annotator's box is off the stenosis centre by up to this share of its size


@dataclass
class Heart:
    """A half-ellipsoid ventricular mass: base plane at s = 0, apex at s = 1; θ = 0 anterior, 90° lateral (left)."""

    base_mm: np.ndarray  # centre of the base (atrioventricular) plane, LPS mm from the isocentre
    axis: np.ndarray  # unit vector base → apex
    anterior: np.ndarray  # unit, θ = 0
    lateral: np.ndarray  # unit, θ = 90° (the obtuse margin); −90° is the acute margin
    radius_mm: float
    length_mm: float

    def surface(self, theta: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Points (…, 3) on the epicardium; s past 1 continues over the apex onto the far side."""
        theta, s = np.asarray(theta, float), np.asarray(s, float)
        over = s > 1.0
        theta = np.where(over, theta + np.pi, theta)
        s = np.where(over, 2.0 - s, s)
        ring = self.radius_mm * np.sqrt(np.clip(1.0 - s**2, 0.0, 1.0))
        around = np.cos(theta)[..., None] * self.anterior + np.sin(theta)[..., None] * self.lateral
        return self.base_mm + (self.length_mm * s)[..., None] * self.axis + ring[..., None] * around

    def coordinates(self, point: np.ndarray) -> tuple[float, float]:
        """(θ, s) of a point on or near the surface."""
        relative = point - self.base_mm
        return float(np.arctan2(relative @ self.lateral, relative @ self.anterior)), float(
            relative @ self.axis / self.length_mm
        )

    def inward(self, point: np.ndarray) -> np.ndarray:
        """Unit vector into the myocardium (minus the ellipsoid's normal) at a surface point."""
        relative = point - self.base_mm
        along = relative @ self.axis
        radial = relative - along * self.axis
        normal = along / self.length_mm**2 * self.axis + radial / self.radius_mm**2
        return -normal / np.linalg.norm(normal)


@dataclass
class Vessel:
    """One coronary branch: centreline samples at end-diastole with their lumen and contrast travel."""

    name: str
    points_mm: np.ndarray  # (n, 3) LPS mm from the isocentre
    reference_radius_mm: np.ndarray  # (n,) healthy lumen radius
    radius_mm: np.ndarray  # (n,) lumen radius with the stenoses
    arc_mm: np.ndarray  # (n,) from the vessel's start
    ostium_distance_mm: np.ndarray  # (n,) along the tree from the ostium
    hidden_mm: float  # the first mm lie inside the parent's lumen and are not drawn
    parent: str | None

    @property
    def length_mm(self) -> float:
        return float(self.arc_mm[-1])

    @property
    def drawn(self) -> np.ndarray:
        return self.arc_mm >= self.hidden_mm

    def step_mm(self) -> np.ndarray:
        """Arc length each sample stands for."""
        return np.gradient(self.arc_mm)


@dataclass
class CArm:
    """Point source, flat detector and table pan; image x runs with `columns`, y with `rows` (edge coordinates)."""

    lao_deg: float
    cranial_deg: float
    source_isocentre_mm: float
    source_detector_mm: float
    field_mm: float
    matrix: int
    pan_mm: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def __post_init__(self) -> None:
        lao, cranial = np.deg2rad(self.lao_deg), np.deg2rad(-self.cranial_deg)
        about_z = np.array([[np.cos(lao), -np.sin(lao), 0], [np.sin(lao), np.cos(lao), 0], [0, 0, 1]])
        about_x = np.array([[1, 0, 0], [0, np.cos(cranial), -np.sin(cranial)], [0, np.sin(cranial), np.cos(cranial)]])
        rotation = about_z @ about_x  # the AP view (detector anterior, patient's left on the right) turned
        self.beam = rotation @ np.array([0.0, -1.0, 0.0])  # source → detector
        self.columns = rotation @ np.array([1.0, 0.0, 0.0])
        self.rows = rotation @ np.array([0.0, 0.0, -1.0])

    @property
    def pixel_mm(self) -> float:
        """Imager pixel spacing at the detector."""
        return self.field_mm / self.matrix

    @property
    def source_mm(self) -> np.ndarray:
        return -self.source_isocentre_mm * self.beam

    def project(self, points_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) pixel-edge coordinates (n, 2) and magnification (n,) of points (n, 3)."""
        magnification = self.source_detector_mm / (self.source_isocentre_mm + points_mm @ self.beam)
        detector = np.stack([points_mm @ self.columns, points_mm @ self.rows], axis=-1) * magnification[:, None]
        return (detector + self.pan_mm) / self.pixel_mm + self.matrix / 2, magnification

    def rays(self, shape: tuple[int, int]) -> np.ndarray:
        """Unit directions (rows·columns, 3) from the source through the centres of a grid covering the detector."""
        rows, columns = ((np.arange(n) + 0.5) / n * self.field_mm - self.field_mm / 2 for n in shape)
        row_mm, column_mm = np.meshgrid(rows - self.pan_mm[1], columns - self.pan_mm[0], indexing="ij")
        target = (
            (self.source_detector_mm - self.source_isocentre_mm) * self.beam
            + column_mm.reshape(-1, 1) * self.columns
            + row_mm.reshape(-1, 1) * self.rows
        )
        directions = target - self.source_mm
        return directions / np.linalg.norm(directions, axis=1, keepdims=True)


@dataclass
class Motion:
    """Cardiac contraction, twist and swing about the heart, and a respiratory shift of everything in the chest."""

    period_s: float
    systole: float  # share of the cycle from end-diastole to end-systole
    relaxation: float  # share of the cycle back to diastole
    start_phase: float  # cycle position of the first frame
    radial_shortening: float
    longitudinal_shortening: float
    twist_rad: float  # apex relative to base at end-systole
    swing_mm: np.ndarray  # heart translation at end-systole
    breath_period_s: float
    breath_mm: np.ndarray  # respiratory displacement amplitude (3,)
    breath_phase: float

    def contraction(self, time_s: float) -> float:
        """0 at end-diastole, 1 at end-systole."""
        cycle = (time_s / self.period_s + self.start_phase) % 1.0
        if cycle < self.systole:
            return 0.5 - 0.5 * np.cos(np.pi * cycle / self.systole)
        if cycle < self.systole + self.relaxation:
            return 0.5 + 0.5 * np.cos(np.pi * (cycle - self.systole) / self.relaxation)
        return 0.0

    def breathing(self, time_s: float) -> np.ndarray:
        return self.breath_mm * np.sin(2 * np.pi * time_s / self.breath_period_s + self.breath_phase)

    def move(self, points_mm: np.ndarray, heart: Heart, time_s: float) -> np.ndarray:
        """Heart points at `time_s`: the base descends towards the apex, the wall moves in and twists."""
        contraction = self.contraction(time_s)
        relative = points_mm - heart.base_mm
        along = relative @ heart.axis
        radial = relative - along[:, None] * heart.axis
        along_moved = heart.length_mm - (heart.length_mm - along) * (1 - self.longitudinal_shortening * contraction)
        angle = self.twist_rad * contraction * np.clip(along / heart.length_mm, 0.0, 1.0)
        twisted = (
            radial * np.cos(angle)[:, None]
            + np.cross(heart.axis, radial) * np.sin(angle)[:, None]
            + heart.axis * (radial @ heart.axis)[:, None] * (1 - np.cos(angle))[:, None]
        )
        moved = heart.base_mm + along_moved[:, None] * heart.axis + twisted * (1 - self.radial_shortening * contraction)
        return moved + contraction * self.swing_mm + self.breathing(time_s)


@dataclass
class Bolus:
    """The contrast concentration (1 = full filling) at the ostium over time, carried down the tree at `velocity`."""

    arrival_s: float
    rise_s: float
    plateau_s: float
    washout_s: float
    velocity_mm_s: float

    def concentration(self, time_s: float, ostium_distance_mm: np.ndarray) -> np.ndarray:
        since = time_s - self.arrival_s - np.asarray(ostium_distance_mm) / self.velocity_mm_s
        rising = np.clip(since / self.rise_s, 0.0, 1.0)
        filled = rising**2 * (3 - 2 * rising)
        return np.where(
            since > self.rise_s + self.plateau_s,
            np.exp(-(since - self.rise_s - self.plateau_s) / self.washout_s),
            filled,
        )


@dataclass
class Ellipsoid:
    """A uniform ellipsoid adding `attenuation_per_mm` (over soft tissue) along every ray through it."""

    centre_mm: np.ndarray
    semi_axes_mm: np.ndarray
    rotation: np.ndarray  # columns: the directions of the semi-axes
    attenuation_per_mm: float

    def line_integrals(self, source_mm: np.ndarray, rays: np.ndarray, shift_mm=0.0, scale=1.0) -> np.ndarray:
        """Attenuation along unit `rays` from the source, with the ellipsoid shifted and scaled."""
        axes = self.semi_axes_mm * scale
        origin = (source_mm - self.centre_mm - shift_mm) @ self.rotation / axes
        direction = rays @ self.rotation / axes
        a = np.einsum("ij,ij->i", direction, direction)
        b = direction @ origin
        discriminant = np.clip(b**2 - a * (origin @ origin - 1.0), 0.0, None)
        return self.attenuation_per_mm * 2 * np.sqrt(discriminant) / a


@dataclass
class Scene:
    """What moves and what the projection needs: heart, motion, contrast, C-arm, catheter, background."""

    heart: Heart
    motion: Motion
    bolus: Bolus
    carm: CArm
    catheter_mm: np.ndarray  # (n, 3) at end-diastole, tip (the ostium) first
    catheter_arc_mm: np.ndarray
    catheter_radius_mm: float
    catheter_wall_per_mm: float
    iodine_per_mm: float
    body: list[Ellipsoid]  # static: body, vertebrae
    lungs: list[Ellipsoid]  # move with respiration; their lower poles are the diaphragm
    heart_shadow: Ellipsoid
    ribs_mm: list[np.ndarray]
    rib_radius_mm: float
    bone_per_mm: float

    def catheter_at(self, time_s: float) -> np.ndarray:
        """The catheter's tip rides on the ostium; the pull fades over its first few centimetres."""
        moved = self.motion.move(self.catheter_mm, self.heart, time_s)
        pull = np.exp(-self.catheter_arc_mm / 30.0)[:, None]
        return self.catheter_mm + pull * (moved - self.catheter_mm)


@dataclass
class AngiographyClip:
    """One synthetic cine run: frames, their times and spacing, and the exact ground truth."""

    frames: np.ndarray | None  # (frame, row, column) uint8 or uint16; None when only the ground truth was drawn
    frame_times_s: np.ndarray
    pixel_spacing_mm: tuple[float, float]  # (row, column) imager pixel spacing
    label: str  # "stenosis" when some stenosis shows in some frame, else "normal"
    stenoses: list[
        dict
    ]  # vessel, segment, arc_mm, length_mm, severity, kind, diameters, centre_px and visible per frame
    boxes_px: list[list[dict]]  # per frame: {"stenosis": index, "box_px": [x0, y0, x1, y1]}
    filled_fraction: np.ndarray  # (frames,) length-weighted contrast in the tree, 1 = all filled
    filled_phase: np.ndarray  # (frames,) bool
    text_boxes_px: list[list[dict]]  # per frame: {"corner", "lines", "box_px"}
    vessels: dict[str, Vessel]
    scene: Scene
    settings: dict

    def image_sequence(self) -> ImageSequence:
        return ImageSequence(
            self.frames,
            name=f"synthetic angiography {self.settings['seed']}",
            modality="XA",
            frame_times_s=self.frame_times_s,
            pixel_spacing_mm=self.pixel_spacing_mm,
        )

    def vessel_points_px(self, name: str, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of a vessel's centreline samples in a frame and their magnification."""
        scene = self.scene
        moved = scene.motion.move(self.vessels[name].points_mm, scene.heart, float(self.frame_times_s[frame]))
        return scene.carm.project(moved)


def _arc_length(points: np.ndarray) -> np.ndarray:
    """Cumulative length along a polyline (n, 3)."""
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])


def _resampled(points: np.ndarray, step_mm: float) -> np.ndarray:
    """The polyline sampled every `step_mm` of its length from its start."""
    arc = _arc_length(points)
    samples = np.arange(0.0, arc[-1], step_mm)
    return np.stack([np.interp(samples, arc, points[:, k]) for k in range(3)], axis=1)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def draw_heart(rng, settings: dict) -> tuple[Heart, np.ndarray]:
    """The heart and its aortic root centre (LPS mm from the isocentre)."""
    azimuth, elevation = np.deg2rad(rng.uniform(30, 55)), np.deg2rad(rng.uniform(15, 35))
    axis = np.array([np.cos(elevation) * np.cos(azimuth), -np.cos(elevation) * np.sin(azimuth), -np.sin(elevation)])
    forward = np.array([0.0, -1.0, 0.0])  # LPS anterior
    anterior = _unit(forward - (forward @ axis) * axis)
    lateral = np.cross(axis, anterior)
    lateral = lateral if lateral @ np.array([1.0, 0.0, 1.0]) > 0 else -lateral
    radius, length = rng.uniform(42, 52), rng.uniform(80, 98)
    centre = rng.uniform(-15, 15, size=3)
    heart = Heart(centre - length / 2 * axis, axis, anterior, lateral, radius, length)
    root_angle = np.deg2rad(rng.uniform(-30, -10))
    aorta = (
        heart.base_mm
        - rng.uniform(8, 16) * axis
        + 0.45 * radius * (np.cos(root_angle) * anterior + np.sin(root_angle) * lateral)
    )
    settings["heart"] = {
        "axis_azimuth_deg": float(np.rad2deg(azimuth)),
        "axis_elevation_deg": float(np.rad2deg(elevation)),
        "base_radius_mm": float(radius),
        "length_mm": float(length),
        "centre_mm": centre.tolist(),
        "aortic_root_mm": aorta.tolist(),
    }
    return heart, aorta


class TreeBuilder:
    """Vessels on the heart surface, sampled every `step_mm`, each branching off its parent."""

    def __init__(self, rng, heart: Heart, step_mm: float) -> None:
        self.rng, self.heart, self.step_mm = rng, heart, step_mm
        self.vessels: dict[str, Vessel] = {}
        self.parameters: dict[str, dict] = {}

    def surface_path(self, theta_deg, s) -> np.ndarray:
        """Dense points along a (θ in degrees, s) path on the surface."""
        return self.heart.surface(np.deg2rad(theta_deg), s)

    def add(self, name, points, diameters_mm, parent=None, branch_arc_mm=0.0, **drawn) -> Vessel:
        """Smooth, add tortuosity, resample and taper exponentially from the proximal to the distal diameter."""
        points = _resampled(ndimage.gaussian_filter1d(points, 3.0, axis=0, mode="nearest"), self.step_mm)
        samples = np.arange(len(points)) * self.step_mm
        wiggle_mm, wavelength_mm = self.rng.uniform(0.5, 2.5), self.rng.uniform(15, 40)
        tangent = np.gradient(points, axis=0)
        tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-9
        across_drawn = self.rng.standard_normal(3)
        across = _unit(np.cross(tangent.mean(axis=0), across_drawn))
        across = across - (tangent @ across)[:, None] * tangent
        ramp = np.clip(samples / 10.0, 0.0, 1.0)  # branches leave their parent smoothly
        phase = self.rng.uniform(0, 2 * np.pi)
        wiggle = (wiggle_mm * ramp * np.sin(2 * np.pi * samples / wavelength_mm + phase))[:, None] * across
        points = _resampled(points + wiggle, self.step_mm)
        samples = np.arange(len(points)) * self.step_mm
        proximal, distal = (d / 2 for d in diameters_mm)
        radius = proximal * (distal / proximal) ** (samples / samples[-1])
        if parent is None:
            start_distance, hidden = 0.0, 0.0
        else:
            mother = self.vessels[parent]
            index = min(int(np.searchsorted(mother.arc_mm, branch_arc_mm)), len(mother.arc_mm) - 1)
            start_distance, hidden = mother.ostium_distance_mm[index], float(mother.reference_radius_mm[index])
        vessel = Vessel(name, points, radius, radius.copy(), samples, start_distance + samples, hidden, parent)
        self.vessels[name] = vessel
        self.parameters[name] = {
            "parent": parent,
            "branch_arc_mm": float(branch_arc_mm),
            "diameter_mm": [float(d) for d in diameters_mm],
            "length_mm": vessel.length_mm,
            "tortuosity_mm": float(wiggle_mm),
            "tortuosity_wavelength_mm": float(wavelength_mm),
            "tortuosity_phase": float(phase),
            "tortuosity_direction": across_drawn.tolist(),
            **{key: float(value) for key, value in drawn.items()},
        }
        return vessel

    def branch_point(self, parent: str, fraction: float) -> tuple[float, float, float, np.ndarray]:
        """(arc mm, θ deg, s, point) at `fraction` of a parent's length."""
        mother = self.vessels[parent]
        index = int(fraction * (len(mother.arc_mm) - 1))
        theta, s = self.heart.coordinates(mother.points_mm[index])
        return float(mother.arc_mm[index]), float(np.rad2deg(theta)), s, mother.points_mm[index]

    def surface_branch(self, name, parent, fraction, theta_turn_deg, s_end, diameters_mm) -> Vessel:
        arc, theta, s, _ = self.branch_point(parent, fraction)
        t = np.linspace(0.0, 1.0, 300)
        path = self.surface_path(theta + theta_turn_deg * t, s + (s_end - s) * t)
        return self.add(
            name, path, diameters_mm, parent, arc, at_fraction=fraction, turn_deg=theta_turn_deg, end_s=s_end
        )

    def diameters(self, proximal, distal) -> tuple[float, float]:
        return float(self.rng.uniform(*proximal)), float(self.rng.uniform(*distal))


def _fractions(rng, count: int, low: float, high: float, gap: float) -> list[float]:
    """`count` sorted fractions in [low, high] at least `gap` apart (fewer if they do not fit)."""
    chosen: list[float] = []
    for _ in range(50 * count):
        candidate = float(rng.uniform(low, high))
        if all(abs(candidate - other) >= gap for other in chosen):
            chosen.append(candidate)
        if len(chosen) == count:
            break
    return sorted(chosen)


def build_left_tree(builder: TreeBuilder, aorta: np.ndarray) -> np.ndarray:
    """LM → LAD (diagonals, septals) and LCX (obtuse marginals); returns the ostium."""
    rng, heart = builder.rng, builder.heart
    theta_split = rng.uniform(20, 45)
    split = heart.surface(np.deg2rad(theta_split), 0.03)
    left_main_mm = rng.uniform(6, 14)
    ostium = split - left_main_mm * _unit(split - aorta)
    builder.add(
        "LM", np.linspace(ostium, split, 40), builder.diameters((3.6, 4.5), (3.4, 4.2)), split_theta_deg=theta_split
    )
    t = np.linspace(0.0, 1.0, 600)
    theta_groove, lad_end = rng.uniform(-5, 15), rng.uniform(0.95, 1.12)
    theta = theta_groove + (theta_split - theta_groove) * np.clip(1 - t / 0.12, 0, 1) ** 2
    lad = builder.surface_path(theta, 0.03 + (lad_end - 0.03) * t)
    lad_diameters = builder.diameters((3.0, 4.0), (1.0, 1.5))
    builder.add(
        "LAD", np.vstack([split, lad]), lad_diameters, "LM", left_main_mm, groove_theta_deg=theta_groove, end_s=lad_end
    )
    lcx_end, lcx_dip = rng.uniform(120, 190), rng.uniform(0.0, 0.15)
    lcx = builder.surface_path(theta_split + (lcx_end - theta_split) * t, 0.03 + lcx_dip * t**2)
    lcx_diameters = builder.diameters((2.8, 3.8), (1.2, 1.8))
    builder.add("LCX", np.vstack([split, lcx]), lcx_diameters, "LM", left_main_mm, end_theta_deg=lcx_end, dip_s=lcx_dip)
    for n, fraction in enumerate(_fractions(rng, int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25])), 0.12, 0.55, 0.1)):
        s_end = min(builder.branch_point("LAD", fraction)[2] + rng.uniform(0.25, 0.45), 0.95)
        shrink = 0.85**n
        builder.surface_branch(
            f"D{n + 1}",
            "LAD",
            fraction,
            rng.uniform(35, 70),
            s_end,
            (rng.uniform(1.7, 2.6) * shrink, rng.uniform(0.8, 1.1)),
        )
    for n, fraction in enumerate(_fractions(rng, int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25])), 0.25, 0.8, 0.12)):
        builder.surface_branch(
            f"OM{n + 1}", "LCX", fraction, rng.uniform(-10, 15), rng.uniform(0.45, 0.8),
            (rng.uniform(1.6, 2.5) * 0.9**n, rng.uniform(0.8, 1.1)),
        )  # fmt: skip
    for n, fraction in enumerate(_fractions(rng, int(rng.integers(2, 5)), 0.1, 0.5, 0.06)):
        arc, _, _, start = builder.branch_point("LAD", fraction)
        direction = _unit(0.8 * heart.inward(start) + 0.6 * heart.axis)
        length = rng.uniform(15, 35)
        path = start + np.linspace(0.0, length, 100)[:, None] * direction
        builder.add(f"S{n + 1}", path, (rng.uniform(0.8, 1.3), 0.6), "LAD", arc, at_fraction=fraction)
    return ostium


def build_right_tree(builder: TreeBuilder, aorta: np.ndarray) -> np.ndarray:
    """RCA in the right atrioventricular groove to the crux, conus, RV branches, PDA and PLB; returns the ostium."""
    rng, heart = builder.rng, builder.heart
    theta_start, theta_crux = rng.uniform(-45, -25), -rng.uniform(170, 195)
    start = heart.surface(np.deg2rad(theta_start), 0.0)
    proximal_mm = rng.uniform(10, 20)
    ostium = start - proximal_mm * _unit(start - aorta)
    t = np.linspace(0.0, 1.0, 800)
    groove = builder.surface_path(theta_start + (theta_crux - theta_start) * t, 0.02 + 0.03 * np.sin(np.pi * t))
    path = np.vstack([np.linspace(ostium, start, 30), groove])
    drawn = {"start_theta_deg": theta_start, "crux_theta_deg": theta_crux, "proximal_mm": proximal_mm}
    builder.add("RCA", path, builder.diameters((3.2, 4.5), (2.0, 2.8)), **drawn)
    builder.surface_branch(
        "conus",
        "RCA",
        rng.uniform(0.06, 0.1),
        rng.uniform(20, 40),
        rng.uniform(0.1, 0.25),
        (rng.uniform(1.0, 1.4), 0.6),
    )
    for n, fraction in enumerate(_fractions(rng, int(rng.integers(1, 3)), 0.3, 0.6, 0.1)):
        builder.surface_branch(
            f"RV{n + 1}", "RCA", fraction, rng.uniform(15, 35), rng.uniform(0.4, 0.7), (rng.uniform(1.2, 1.8), 0.7)
        )
    builder.surface_branch(
        "PDA", "RCA", 0.99, rng.uniform(-10, 10), rng.uniform(0.55, 0.8), builder.diameters((1.6, 2.3), (0.8, 1.0))
    )
    builder.surface_branch(
        "PLB", "RCA", 0.99, -rng.uniform(25, 50), rng.uniform(0.1, 0.3), builder.diameters((1.5, 2.2), (0.8, 1.0))
    )
    return ostium


def draw_carm(rng, system: str, matrix: int) -> CArm:
    lao, cranial = STANDARD_VIEWS[system][int(rng.integers(len(STANDARD_VIEWS[system])))]
    return CArm(
        lao_deg=float(lao + rng.uniform(-VIEW_JITTER_DEG, VIEW_JITTER_DEG)),
        cranial_deg=float(cranial + rng.uniform(-VIEW_JITTER_DEG, VIEW_JITTER_DEG)),
        source_isocentre_mm=float(rng.uniform(700, 800)),
        source_detector_mm=float(rng.uniform(950, 1200)),
        field_mm=float(rng.uniform(*FIELD_MM)),
        matrix=int(matrix),
    )


def pan_to_tree(rng, carm: CArm, vessels: dict[str, Vessel]) -> np.ndarray:
    """Move the table so the first 60 mm of the tree land where an operator would centre them; returns where
    (fractions across and down)."""
    proximal = np.vstack([v.points_mm[v.ostium_distance_mm < 60.0] for v in vessels.values()])
    centre_px = carm.project(proximal)[0].mean(axis=0)
    target = np.array([rng.uniform(*PAN_TARGET[0]), rng.uniform(*PAN_TARGET[1])])
    carm.pan_mm = (target * carm.matrix - centre_px) * carm.pixel_mm
    return target


def draw_motion(rng) -> Motion:
    breath_direction = _unit(np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.4, 0.4), 1.0]))
    return Motion(
        period_s=60.0 / rng.uniform(55, 100),
        systole=rng.uniform(0.3, 0.4),
        relaxation=rng.uniform(0.15, 0.25),
        start_phase=rng.uniform(0, 1),
        radial_shortening=rng.uniform(0.10, 0.22),
        longitudinal_shortening=rng.uniform(0.08, 0.16),
        twist_rad=np.deg2rad(rng.uniform(4, 12)),
        swing_mm=_unit(rng.standard_normal(3)) * rng.uniform(2, 6),
        breath_period_s=rng.uniform(3, 6),
        breath_mm=breath_direction * rng.uniform(0, 6),
        breath_phase=rng.uniform(0, 2 * np.pi),
    )


def draw_run(rng, frame_count: int | None) -> tuple[float, int]:
    fps = float(rng.choice(FRAME_RATES, p=FRAME_RATE_PROBABILITIES))
    drawn = int(np.clip(round(rng.uniform(*RUN_SECONDS) * fps), *FRAME_COUNT_RANGE))
    return fps, int(frame_count or drawn)


def draw_bolus(rng, duration_s: float, tree_mm: float) -> Bolus:
    """Phases as shares of the run, so that every run shows arrival, filling and wash-out."""
    travel = rng.uniform(0.08, 0.18) * duration_s
    return Bolus(
        arrival_s=rng.uniform(-0.03, 0.12) * duration_s,
        rise_s=rng.uniform(0.04, 0.08) * duration_s,
        plateau_s=rng.uniform(0.32, 0.45) * duration_s,
        washout_s=rng.uniform(0.05, 0.12) * duration_s,
        velocity_mm_s=tree_mm / travel,
    )


def draw_stenoses(rng, vessels: dict[str, Vessel], carm: CArm) -> list[dict]:
    """Where the stenoses are and how tight (none for a normal run); narrows the vessels' `radius_mm`."""
    if rng.random() < NORMAL_PROBABILITY:
        return []
    counts = list(STENOSIS_COUNT_PROBABILITIES)
    count = int(rng.choice(counts, p=list(STENOSIS_COUNT_PROBABILITIES.values())))
    stenoses: list[dict] = []
    for _ in range(20 * count):
        if len(stenoses) == count:
            break
        diffuse = rng.random() < DIFFUSE_PROBABILITY
        length = float(rng.uniform(*(DIFFUSE_LENGTH_MM if diffuse else FOCAL_LENGTH_MM)))
        candidates, positions = [], []
        for vessel in vessels.values():
            points_px = carm.project(vessel.points_mm)[0]
            inside = np.all((points_px > 0.05 * carm.matrix) & (points_px < 0.95 * carm.matrix), axis=1)
            room = (vessel.arc_mm > vessel.hidden_mm + length / 2 + 2) & (
                vessel.arc_mm < vessel.length_mm - length / 2 - 5
            )
            wide = vessel.reference_radius_mm >= MIN_STENOSIS_DIAMETER_MM / 2
            clear = np.ones(len(vessel.arc_mm), dtype=bool)
            for other in stenoses:
                if other["vessel"] == vessel.name:
                    clear &= np.abs(vessel.arc_mm - other["arc_mm"]) > (length + other["length_mm"]) / 2 + 3
            chosen = np.flatnonzero(inside & room & wide & clear)[::10]
            candidates += [(vessel.name, int(i)) for i in chosen]
            positions.append(points_px[chosen] / carm.matrix)
        if not candidates:
            break
        name, index = candidates[int(rng.choice(len(candidates), p=_where_annotated(np.vstack(positions))))]
        vessel = vessels[name]
        stenoses.append(
            {
                "vessel": name,
                "arc_mm": float(vessel.arc_mm[index]),
                "length_mm": length,
                "severity": float(rng.uniform(*SEVERITY_RANGE)),
                "kind": "diffuse" if diffuse else "focal",
                "reference_diameter_mm": float(2 * vessel.reference_radius_mm[index]),
                "box_size": float(np.interp(rng.uniform(0.01, 0.99), QUANTILE_LEVELS, REAL_BOX_SIZE)),
                "box_shift": rng.uniform(-BOX_SHIFT, BOX_SHIFT, size=2).tolist(),
                "box_jitter_seed": int(rng.integers(2**31)),
                "irregularity_phase": float(rng.uniform(0, 2 * np.pi)),
            }
        )
    for stenosis in stenoses:
        vessel = vessels[stenosis["vessel"]]
        vessel.radius_mm *= 1.0 - stenosis["severity"] * _narrowing(vessel.arc_mm, stenosis)
        stenosis["minimal_diameter_mm"] = stenosis["reference_diameter_mm"] * (1.0 - stenosis["severity"])
        third = ("proximal", "mid", "distal")[min(int(3 * stenosis["arc_mm"] / vessel.length_mm), 2)]
        stenosis["segment"] = "LM" if vessel.name == "LM" else f"{third} {vessel.name}"
    return stenoses


def _where_annotated(positions: np.ndarray) -> np.ndarray:
    """Probabilities over candidate image positions (fractions of the side): a normal at the real box centres'
    median whose SD is their interquartile range (REAL_BOX_CENTRE_X / _Y), wider than theirs because the candidate
    vessel parts already crowd the middle; the product matches the real spread (stenosis_box_statistics.py)."""
    log_density = np.zeros(len(positions))
    for axis, quantiles in enumerate((REAL_BOX_CENTRE_X, REAL_BOX_CENTRE_Y)):
        median, low, high = np.interp((0.5, 0.25, 0.75), QUANTILE_LEVELS, quantiles)
        log_density -= 0.5 * ((positions[:, axis] - median) / (high - low)) ** 2
    density = np.exp(log_density)
    return density / density.sum()


def _narrowing(arc_mm: np.ndarray, stenosis: dict) -> np.ndarray:
    """Share of the full narrowing along the vessel: a raised cosine (focal) or an irregular plateau (diffuse)."""
    offset = np.abs(arc_mm - stenosis["arc_mm"]) / (stenosis["length_mm"] / 2)
    if stenosis["kind"] == "focal":
        return np.where(offset < 1, 0.5 + 0.5 * np.cos(np.pi * offset), 0.0)
    taper = np.clip((1.0 - offset) / 0.4, 0.0, 1.0)
    ripple = 1.0 - 0.15 * (1 + np.sin(2 * np.pi * arc_mm / 4.0 + stenosis["irregularity_phase"])) / 2
    shape = taper**2 * (3 - 2 * taper) * np.where(offset < 0.15, 1.0, ripple)
    return shape


def build_catheter(rng, ostium, aorta, spine_mm, step_mm: float, settings: dict) -> np.ndarray:
    """From the ostium back across the aortic root, up the ascending aorta, over the arch and down the descending."""
    ascending = _unit(np.array([-0.25, -0.2, 1.0]))
    top = aorta + ascending * rng.uniform(50, 70)
    arch = top + np.array([25.0, 30.0, 15.0])
    descending_x = spine_mm[0] + rng.uniform(15, 25)
    descending_y = spine_mm[1] - 25.0
    control = np.array(
        [
            ostium,
            aorta + ascending * 10.0,
            top,
            arch,
            [descending_x, descending_y, arch[2] - 25.0],
            [descending_x, descending_y, arch[2] - 120.0],
            [descending_x, descending_y, arch[2] - 350.0],
        ]
    )
    settings["catheter"] = {"control_points_mm": control.tolist()}
    chord = _arc_length(control)
    spline = CubicSpline(chord, control, axis=0)
    return _resampled(spline(np.linspace(0.0, chord[-1], 3000)), step_mm)


def draw_background(rng, heart: Heart, settings: dict) -> dict:
    """Body, spine, lungs, heart shadow and ribs as attenuation shapes; `settings["background"]` gets the draws."""
    soft = rng.uniform(0.018, 0.022)
    air = rng.uniform(0.70, 0.85) * soft
    bone = rng.uniform(0.010, 0.020)
    half_width, half_depth = rng.uniform(150, 190), rng.uniform(100, 130)
    heart_centre = heart.base_mm + heart.length_mm / 2 * heart.axis
    body_centre = heart_centre - np.array([rng.uniform(15, 35), -rng.uniform(20, 40), 0.0])
    identity = np.eye(3)
    body = [Ellipsoid(body_centre, np.array([half_width, half_depth, 1e5]), identity, soft)]
    spine = body_centre + np.array([0.0, half_depth - rng.uniform(40, 50), 0.0])
    vertebra_mm, vertebra_offset_mm = rng.uniform(28, 33), rng.uniform(0, 28)
    vertebra_half_widths = []
    for z in np.arange(-6, 7) * vertebra_mm + vertebra_offset_mm:
        centre = spine + [0.0, 0.0, z]
        vertebra_half_widths.append(float(rng.uniform(20, 25)))
        body.append(Ellipsoid(centre, np.array([vertebra_half_widths[-1], 16.0, 0.4 * vertebra_mm]), identity, bone))
        for side in (-1.0, 1.0):
            body.append(Ellipsoid(centre + [side * 16.0, 20.0, 0.0], np.array([6.0, 10.0, 7.0]), identity, bone))
    base_z = heart.base_mm[2]
    domes = {"right": base_z - rng.uniform(20, 45), "left": 0.0}
    domes["left"] = domes["right"] - rng.uniform(5, 20)
    lungs = []
    for side, sign in (("right", -1.0), ("left", 1.0)):
        axes = np.array([rng.uniform(55, 70), rng.uniform(80, 95), rng.uniform(130, 160)])
        centre = body_centre + np.array([sign * rng.uniform(70, 85), rng.uniform(-15, 5), 0.0])
        centre[2] = domes[side] + axes[2]
        lungs.append(Ellipsoid(centre, axes, identity, -air))
    shadow_axes = np.array([heart.radius_mm + 8, heart.radius_mm + 8, heart.length_mm * 0.6 + 8])
    shadow_rotation = np.stack([heart.anterior, heart.lateral, heart.axis], axis=1)
    shadow = Ellipsoid(heart_centre, shadow_axes, shadow_rotation, rng.uniform(0.5, 0.9) * air)
    rib_half_width, rib_half_depth = half_width - 15.0, half_depth - 12.0
    rib_spacing, rib_drop, top = rng.uniform(24, 30), rng.uniform(40, 60), base_z + rng.uniform(60, 120)
    angle = np.linspace(0.15 * np.pi, 0.8 * np.pi, 1500)  # ≈ 0.3 mm apart
    ribs = []
    for k in range(10):
        for sign in (-1.0, 1.0):
            z = top - k * rib_spacing - rib_drop * (1 - np.cos(angle)) / 2
            x = body_centre[0] + sign * rib_half_width * np.sin(angle)
            y = body_centre[1] + rib_half_depth * np.cos(angle)
            ribs.append(np.stack([x, y, z], axis=1))
    settings["background"] = {
        "soft_tissue_per_mm": float(soft),
        "lung_air_deficit_per_mm": float(air),
        "bone_excess_per_mm": float(bone),
        "body_half_width_mm": float(half_width),
        "body_half_depth_mm": float(half_depth),
        "body_centre_mm": body_centre.tolist(),
        "spine_mm": spine.tolist(),
        "vertebra_mm": float(vertebra_mm),
        "vertebra_offset_mm": float(vertebra_offset_mm),
        "vertebra_half_widths_mm": vertebra_half_widths,
        "lungs": [{"centre_mm": lung.centre_mm.tolist(), "semi_axes_mm": lung.semi_axes_mm.tolist()} for lung in lungs],
        "diaphragm_dome_z_mm": {side: float(z) for side, z in domes.items()},
        "heart_shadow_per_mm": float(shadow.attenuation_per_mm),
        "rib_spacing_mm": float(rib_spacing),
        "rib_drop_mm": float(rib_drop),
        "top_rib_z_mm": float(top),
    }
    return {"body": body, "lungs": lungs, "heart_shadow": shadow, "ribs_mm": ribs, "bone": bone, "spine": spine}


def _stenosis_frames(clip_vessels, scene: Scene, stenosis: dict, times: np.ndarray) -> tuple[list, list, list]:
    """Per frame: centre (x, y) px, whether it shows, and its box (None where it does not show)."""
    vessel = clip_vessels[stenosis["vessel"]]
    centre_index = int(np.searchsorted(vessel.arc_mm, stenosis["arc_mm"]))
    core_half_mm = float(np.clip(stenosis["length_mm"] / 4, *BOX_CORE_HALF_MM))  # where it is narrowed most
    core = np.flatnonzero(np.abs(vessel.arc_mm - stenosis["arc_mm"]) <= core_half_mm)
    concentration = scene.bolus.concentration
    matrix = scene.carm.matrix
    shift = np.asarray(stenosis["box_shift"])
    jitter = np.random.default_rng(stenosis["box_jitter_seed"])
    centres, visible, boxes = [], [], []
    for time_s in times:
        moved = scene.motion.move(vessel.points_mm[np.r_[centre_index, core]], scene.heart, float(time_s))
        points_px, magnification = scene.carm.project(moved)
        centre = points_px[0]
        shows = bool(np.all((centre >= 0) & (centre < matrix)))
        shows &= bool(concentration(float(time_s), vessel.ostium_distance_mm[centre_index]) >= VISIBLE_CONCENTRATION)
        centres.append(centre.tolist())
        visible.append(shows)
        if not shows:
            boxes.append(None)
            continue
        reach = vessel.radius_mm[core] * magnification[1:] / scene.carm.pixel_mm  # the narrowed lumen's edge
        low = (points_px[1:] - reach[:, None]).min(axis=0)
        high = (points_px[1:] + reach[:, None]).max(axis=0)
        width, height = high - low
        target = stenosis["box_size"] * matrix * np.exp(BOX_SIZE_JITTER * jitter.standard_normal())
        margin = max(0.0, (-(width + height) + np.sqrt((width + height) ** 2 - 4 * (width * height - target**2))) / 4)
        low, high = low - margin, high + margin
        offset = shift * (high - low)
        offset = np.clip(offset, low - centre + 1.0, high - centre - 1.0)  # the centre stays inside
        low, high = np.clip(np.floor(low + offset), 0, matrix), np.clip(np.ceil(high + offset), 0, matrix)
        boxes.append([float(v) for v in (*low, *high)])
    return centres, visible, boxes


def _names(rng) -> dict:
    """Patient- and study-like strings for the burned-in text (invented, not real people)."""
    syllables = ("KA", "RO", "MI", "LEN", "SOV", "TA", "BER", "NI", "DU", "VA", "GOR", "EL", "PET", "AN", "ZU")
    surname = "".join(rng.choice(syllables, size=int(rng.integers(2, 4))))
    birth = f"{int(rng.integers(1935, 1990))}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"
    study = f"{int(rng.integers(2010, 2025))}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"
    clock = f"{int(rng.integers(7, 19)):02d}:{int(rng.integers(0, 60)):02d}:{int(rng.integers(0, 60)):02d}"
    return {
        "patient": f"{surname}^{''.join(rng.choice(list('ABDEGIJKLMNOPRSTV'), size=1))}",
        "id": f"ID {int(rng.integers(1_000_000, 9_999_999))}",
        "birth": f"{birth} {rng.choice(['M', 'F'])}",
        "study": f"{study} {clock}",
        "site": f"CATH LAB {int(rng.integers(1, 5))}",
    }


def draw_text(rng, carm: CArm, fps: float, frame_count: int, settings: dict) -> list[dict]:
    """Text blocks in distinct corners; the frame counter's line holds "{frame}"."""
    scale = carm.matrix / NATIVE_MATRIX
    names = _names(rng)
    view = f"{'LAO' if carm.lao_deg >= 0 else 'RAO'} {abs(carm.lao_deg):.0f} {'CRA' if carm.cranial_deg >= 0 else 'CAU'} {abs(carm.cranial_deg):.0f}"  # noqa: E501
    exposure = f"{int(rng.integers(65, 96))} kV  {int(rng.integers(300, 901))} mA"
    blocks = {
        "patient": ([names["patient"], names["id"], names["birth"]], 0.9),
        "study": ([names["study"], names["site"]], 0.6),
        "acquisition": ([view, exposure, f"{fps:g} fps"], 0.8),
        "counter": ([f"{{frame}}/{frame_count}"], 0.85),
    }
    corners = list(rng.permutation(["top-left", "top-right", "bottom-left", "bottom-right"]))
    layout = []
    for (name, (lines, probability)), corner in zip(blocks.items(), corners):
        present = rng.random() < probability
        font_px = max(MIN_FONT_PX, int(round(rng.uniform(9, 16) * scale)))
        margin_px = rng.uniform(3, 14) * scale
        if present:
            layout.append(
                {
                    "block": name,
                    "corner": str(corner),
                    "lines": lines,
                    "font_px": font_px,
                    "margin_px": float(margin_px),
                    "grey": float(rng.uniform(0.8, 1.0)),
                    "outline": bool(rng.random() < 0.5),
                }
            )
    for block in layout:  # small matrices: a block stays within 45 % of the width
        while block["font_px"] > MIN_FONT_PX and np.diff(_text_lines(block, frame_count - 1, carm.matrix)[1][::2]) > (
            MAX_TEXT_WIDTH * carm.matrix
        ):
            block["font_px"] -= 1
    settings["text"] = layout
    return layout


def _text_lines(block: dict, frame: int, matrix: int):
    """(x, y, anchor, text, font) of each line of a block in a frame, and the block's box."""
    font = ImageFont.load_default(size=block["font_px"])
    texts = [line.format(frame=frame + 1) for line in block["lines"]]
    line_px = 1.25 * block["font_px"]
    right, bottom = block["corner"].endswith("right"), block["corner"].startswith("bottom")
    x = matrix - block["margin_px"] if right else block["margin_px"]
    first_y = matrix - block["margin_px"] - len(texts) * line_px if bottom else block["margin_px"]
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    stroke = 1 if block["outline"] else 0
    lines, boxes = [], []
    for n, text in enumerate(texts):
        anchor = "ra" if right else "la"
        position = (x, first_y + n * line_px)
        lines.append((position, anchor, text, font))
        boxes.append(draw.textbbox(position, text, font=font, anchor=anchor, stroke_width=stroke))
    boxes = np.array(boxes, dtype=float)
    box = [*np.clip(boxes[:, :2].min(axis=0), 0, matrix), *np.clip(boxes[:, 2:].max(axis=0), 0, matrix)]
    return lines, [float(v) for v in box], texts


def _burn_in_text(frame: np.ndarray, layout: list[dict], index: int, white: int) -> None:
    """Draw the text blocks into one output frame (crisp, as burned-in overlays are)."""
    matrix = frame.shape[0]
    text = Image.new("L", (matrix, matrix), 0)
    outline = Image.new("L", (matrix, matrix), 0)
    text_draw, outline_draw = ImageDraw.Draw(text), ImageDraw.Draw(outline)
    text_draw.fontmode = outline_draw.fontmode = "1"
    grey = np.zeros(frame.shape)
    for block in layout:
        lines, box, _ = _text_lines(block, index, matrix)
        for position, anchor, line, font in lines:
            text_draw.text(position, line, fill=255, font=font, anchor=anchor)
            if block["outline"]:
                outline_draw.text(position, line, fill=255, font=font, anchor=anchor, stroke_width=1)
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        grey[y0:y1, x0:x1] = block["grey"]
    frame[np.asarray(outline) > 0] = 0
    lit = np.asarray(text) > 0
    frame[lit] = np.round(grey[lit] * white).astype(frame.dtype)


class TubeRenderer:
    """Line integrals of tubes: every centreline sample spreads its weight (attenuation × mm of length) over a disc
    of its radius, since a disc integrated along a line is the chord of a circular cross-section. Discs are applied
    by FFT per radius band, a sample shared between the two bands around its radius."""

    def __init__(self, shape: tuple[int, int], max_radius_px: float) -> None:
        self.shape = shape
        self.pad = int(np.ceil(max_radius_px)) + 2
        self.fft_shape = tuple(scipy.fft.next_fast_len(n + 2 * self.pad, real=True) for n in shape)
        self.spectra: dict[int, np.ndarray] = {}

    def _disc_spectrum(self, band: int) -> np.ndarray:
        if band not in self.spectra:
            radius = RADIUS_BAND_START_PX * RADIUS_BAND_RATIO**band
            reach = int(np.ceil(radius)) + 1
            offsets = np.arange(-reach, reach + 1)
            distance = np.hypot(*np.meshgrid(offsets, offsets, indexing="ij"))
            disc = np.clip(radius + 0.5 - distance, 0.0, 1.0)
            disc *= np.pi * radius**2 / disc.sum()  # area-true also below a pixel
            kernel = np.zeros(self.fft_shape, np.float32)
            kernel[np.ix_(offsets % self.fft_shape[0], offsets % self.fft_shape[1])] = disc
            self.spectra[band] = scipy.fft.rfft2(kernel)
        return self.spectra[band]

    def render(self, points_px: np.ndarray, radius_px: np.ndarray, weights: np.ndarray) -> np.ndarray:
        rows_padded, columns_padded = self.fft_shape
        position = np.log(np.maximum(radius_px, RADIUS_BAND_START_PX) / RADIUS_BAND_START_PX) / np.log(
            RADIUS_BAND_RATIO
        )
        lower = np.floor(position).astype(int)
        upper_share = position - lower
        column = points_px[:, 0] - 0.5 + self.pad
        row = points_px[:, 1] - 0.5 + self.pad
        keep = (column >= 0) & (column < columns_padded - 1) & (row >= 0) & (row < rows_padded - 1)
        keep &= weights > 0
        column, row, lower, upper_share, weights = (a[keep] for a in (column, row, lower, upper_share, weights))
        column0, row0 = np.floor(column).astype(int), np.floor(row).astype(int)
        column_share, row_share = column - column0, row - row0
        spectrum = None
        for band in np.unique(np.concatenate([lower, lower + 1])):
            share = np.where(lower == band, 1 - upper_share, 0.0) + np.where(lower + 1 == band, upper_share, 0.0)
            inband = share > 0
            if not inband.any():
                continue
            density = np.zeros(rows_padded * columns_padded)
            for d_row, d_column in ((0, 0), (0, 1), (1, 0), (1, 1)):
                corner = (
                    np.where(d_row, row_share, 1 - row_share) * np.where(d_column, column_share, 1 - column_share)
                )[inband]
                flat = (row0[inband] + d_row) * columns_padded + column0[inband] + d_column
                density += np.bincount(flat, weights=weights[inband] * share[inband] * corner, minlength=density.size)
            band_spectrum = scipy.fft.rfft2(density.reshape(self.fft_shape).astype(np.float32)) * self._disc_spectrum(
                int(band)
            )
            spectrum = band_spectrum if spectrum is None else spectrum + band_spectrum
        if spectrum is None:
            return np.zeros(self.shape, np.float32)
        image = scipy.fft.irfft2(spectrum, s=self.fft_shape)
        return image[self.pad : self.pad + self.shape[0], self.pad : self.pad + self.shape[1]]


def make_angiography_clip(
    seed: int, matrix: int = NATIVE_MATRIX, frame_count: int | None = None, render: bool = True
) -> AngiographyClip:
    """One seeded run; `matrix` and `frame_count` change the grid and the sampling in time, never the anatomy.
    With `render=False` only the ground truth is drawn (no pixels), which is fast."""
    anatomy_rng, view_rng, stenosis_rng, image_rng, noise_rng = (np.random.default_rng([seed, n]) for n in range(5))
    settings: dict = {"seed": int(seed), "generator_version": GENERATOR_VERSION, "matrix": int(matrix)}
    system = "left" if anatomy_rng.random() < LEFT_SYSTEM_PROBABILITY else "right"
    heart, aorta = draw_heart(anatomy_rng, settings)
    carm = draw_carm(view_rng, system, matrix)
    magnification = carm.source_detector_mm / carm.source_isocentre_mm
    step_mm = SAMPLE_PX * carm.pixel_mm / (1.15 * magnification)
    builder = TreeBuilder(anatomy_rng, heart, step_mm)
    ostium = (build_left_tree if system == "left" else build_right_tree)(builder, aorta)
    vessels = builder.vessels
    pan_target = pan_to_tree(view_rng, carm, vessels)
    fps, frames = draw_run(view_rng, frame_count)
    times = np.arange(frames) / fps
    tree_mm = max(float(v.ostium_distance_mm[-1]) for v in vessels.values())
    bolus = draw_bolus(view_rng, frames / fps, tree_mm)
    motion = draw_motion(view_rng)
    background = draw_background(anatomy_rng, heart, settings)
    catheter = build_catheter(anatomy_rng, ostium, aorta, background["spine"], step_mm, settings)
    scene = Scene(
        heart=heart,
        motion=motion,
        bolus=bolus,
        carm=carm,
        catheter_mm=catheter,
        catheter_arc_mm=np.arange(len(catheter)) * step_mm,
        catheter_radius_mm=float(anatomy_rng.uniform(0.8, 1.1)),
        catheter_wall_per_mm=float(anatomy_rng.uniform(0.05, 0.12)),
        iodine_per_mm=float(image_rng.uniform(0.10, 0.22)),
        body=background["body"],
        lungs=background["lungs"],
        heart_shadow=background["heart_shadow"],
        ribs_mm=background["ribs_mm"],
        rib_radius_mm=float(anatomy_rng.uniform(4, 6)),
        bone_per_mm=background["bone"],
    )
    stenoses = draw_stenoses(stenosis_rng, vessels, carm)
    settings["catheter"].update({"radius_mm": scene.catheter_radius_mm, "wall_per_mm": scene.catheter_wall_per_mm})
    boxes_px: list[list[dict]] = [[] for _ in times]
    for index, stenosis in enumerate(stenoses):
        stenosis["centre_px"], stenosis["visible"], boxes = _stenosis_frames(vessels, scene, stenosis, times)
        for frame, box in enumerate(boxes):
            if box is not None:
                boxes_px[frame].append({"stenosis": index, "box_px": box})
    weights = [v.step_mm() * v.drawn for v in vessels.values()]
    filled = np.array(
        [
            sum(
                float(np.sum(w * bolus.concentration(t, v.ostium_distance_mm)))
                for w, v in zip(weights, vessels.values())
            )
            / sum(float(w.sum()) for w in weights)
            for t in times
        ]
    )
    text = draw_text(image_rng, carm, fps, frames, settings)
    text_boxes = []
    for k in range(frames):
        placed = [(block["corner"], _text_lines(block, k, matrix)) for block in text]
        text_boxes.append([{"corner": corner, "lines": texts, "box_px": box} for corner, (_, box, texts) in placed])
    settings.update(
        {
            "system": system,
            "view": {"lao_deg": carm.lao_deg, "cranial_deg": carm.cranial_deg},
            "geometry": {
                "source_isocentre_mm": carm.source_isocentre_mm,
                "source_detector_mm": carm.source_detector_mm,
                "magnification_at_isocentre": float(magnification),
                "field_mm": carm.field_mm,
                "pixel_spacing_mm": carm.pixel_mm,
                "pan_mm": carm.pan_mm.tolist(),
                "pan_target": pan_target.tolist(),
            },
            "tree": builder.parameters,
            "frame_count": int(frames),
            "frames_per_second": fps,
            "contrast": {
                "arrival_s": bolus.arrival_s,
                "rise_s": bolus.rise_s,
                "plateau_s": bolus.plateau_s,
                "washout_s": bolus.washout_s,
                "velocity_mm_s": bolus.velocity_mm_s,
                "iodine_per_mm": scene.iodine_per_mm,
            },
            "motion": {
                "heart_rate_bpm": 60.0 / motion.period_s,
                "systole": motion.systole,
                "relaxation": motion.relaxation,
                "start_phase": motion.start_phase,
                "radial_shortening": motion.radial_shortening,
                "longitudinal_shortening": motion.longitudinal_shortening,
                "twist_deg": float(np.rad2deg(motion.twist_rad)),
                "swing_mm": motion.swing_mm.tolist(),
                "breath_period_s": motion.breath_period_s,
                "breath_mm": motion.breath_mm.tolist(),
                "breath_phase": motion.breath_phase,
            },
            "stenoses": [{key: s[key] for key in STENOSIS_DRAWS} for s in stenoses],
            "rib_radius_mm": scene.rib_radius_mm,
        }
    )
    clip = AngiographyClip(
        frames=None,
        frame_times_s=times,
        pixel_spacing_mm=(carm.pixel_mm, carm.pixel_mm),
        label="stenosis" if any(boxes_px) else "normal",
        stenoses=stenoses,
        boxes_px=boxes_px,
        filled_fraction=filled,
        filled_phase=filled >= FILLED_FRACTION,
        text_boxes_px=text_boxes,
        vessels=vessels,
        scene=scene,
        settings=settings,
    )
    if render:
        clip.frames = render_frames(clip, image_rng, noise_rng)
    return clip


def _background_attenuation(scene: Scene, rays: np.ndarray, static: np.ndarray, time_s: float) -> np.ndarray:
    """Body, bone and ribs (static) plus lungs and heart shadow where breathing and the cardiac cycle put them."""
    breath = scene.motion.breathing(time_s)
    contraction = scene.motion.contraction(time_s)
    source = scene.carm.source_mm
    total = static.copy()
    for lung in scene.lungs:
        total += lung.line_integrals(source, rays, shift_mm=breath).reshape(static.shape)
    shadow = scene.heart_shadow.line_integrals(
        source, rays, shift_mm=breath + contraction * scene.motion.swing_mm, scale=1 - 0.06 * contraction
    )
    return total + shadow.reshape(static.shape)


def _static_background(scene: Scene, rays: np.ndarray, coarse: int, image_rng, settings: dict) -> np.ndarray:
    """Attenuation of what does not move, on the coarse grid: body, vertebrae, ribs and a faint lung texture."""
    carm = scene.carm
    static = sum(e.line_integrals(carm.source_mm, rays) for e in scene.body).reshape(coarse, coarse)
    coarse_scale = coarse / carm.matrix
    rib_px, rib_magnification = carm.project(np.vstack(scene.ribs_mm))
    rib_radius = scene.rib_radius_mm * rib_magnification / carm.pixel_mm * coarse_scale
    rib_weight = np.concatenate([np.gradient(_arc_length(rib)) * scene.bone_per_mm for rib in scene.ribs_mm])
    static += TubeRenderer((coarse, coarse), rib_radius.max()).render(rib_px * coarse_scale, rib_radius, rib_weight)
    texture_amplitude, texture_mm = float(image_rng.uniform(0.01, 0.04)), float(image_rng.uniform(2, 6))
    lattice = image_rng.standard_normal((TEXTURE_LATTICE, TEXTURE_LATTICE))
    texture = ndimage.gaussian_filter(lattice, texture_mm / (carm.field_mm / TEXTURE_LATTICE), mode="wrap")
    texture = ndimage.zoom(texture / texture.std(), coarse / TEXTURE_LATTICE, order=1, grid_mode=True, mode="nearest")
    settings["background"].update(
        {"texture": texture_amplitude, "texture_mm": texture_mm, "softness_mm": float(image_rng.uniform(2, 6))}
    )
    return static + texture_amplitude * texture


def render_frames(clip: AngiographyClip, image_rng, noise_rng) -> np.ndarray:
    """The detector's log-transformed, windowed frames with burned-in text."""
    scene, carm, settings = clip.scene, clip.scene.carm, clip.settings
    matrix = carm.matrix
    binning = (NATIVE_MATRIX / matrix) ** 2  # quanta per pixel grow with the pixel's area
    exposure = {
        "quanta_per_pixel_at_512": float(image_rng.uniform(150, 1500)),
        "scatter_to_primary": float(image_rng.uniform(0.2, 0.8)),
        "electronic_noise_quanta_at_512": float(image_rng.uniform(2, 8)),
        "blur_mm": float(image_rng.uniform(0.12, 0.35)),
        "noise_filter_px_at_512": float(image_rng.uniform(0.0, 0.7)),
    }
    display = {
        "low_percentile": float(image_rng.uniform(0.02, 0.3)),
        "high_percentile": float(image_rng.uniform(90.0, 99.5)),
        "gamma": float(image_rng.uniform(0.8, 1.3)),
        "range_compression": float(image_rng.uniform(0.6, 0.9)),
        "range_compression_mm": float(image_rng.uniform(12, 30)),
        "edge_enhancement": float(image_rng.uniform(0.0, 0.5)),
        "edge_enhancement_mm": float(image_rng.uniform(0.5, 1.5)),
        "bits": int(image_rng.choice(BITS, p=BITS_PROBABILITIES)),
    }
    settings["exposure"], settings["display"] = exposure, display
    coarse = max(matrix // BACKGROUND_FACTOR, 16)
    rays = carm.rays((coarse, coarse))
    static = _static_background(scene, rays, coarse, image_rng, settings)
    coarse_scale = coarse / matrix
    coarse_pixel_mm = carm.pixel_mm / coarse_scale
    vessels = list(clip.vessels.values())
    max_radius_px = max(float(v.reference_radius_mm.max()) for v in vessels) * 1.8 / carm.pixel_mm
    tubes = TubeRenderer((matrix, matrix), max(max_radius_px, scene.catheter_radius_mm * 1.8 / carm.pixel_mm))
    step_weights = [v.step_mm() * v.drawn for v in vessels]
    catheter_step = np.gradient(scene.catheter_arc_mm)
    zoom = matrix / coarse
    quanta_scale = compression_reference = None
    compression_px = display["range_compression_mm"] / coarse_pixel_mm
    enhance_px = display["edge_enhancement_mm"] / carm.pixel_mm
    softness_px = settings["background"]["softness_mm"] / coarse_pixel_mm
    log_frames = np.empty((len(clip.frame_times_s), matrix, matrix), np.float32)
    blur_px = exposure["blur_mm"] / carm.pixel_mm
    filter_px = exposure["noise_filter_px_at_512"] * matrix / NATIVE_MATRIX
    electronic = exposure["electronic_noise_quanta_at_512"] * np.sqrt(binning)
    for k, time_s in enumerate(clip.frame_times_s):
        points, radii, weights = [], [], []
        for vessel, step in zip(vessels, step_weights):
            moved = scene.motion.move(vessel.points_mm, scene.heart, float(time_s))
            points_px, magnification = carm.project(moved)
            contrast = scene.bolus.concentration(float(time_s), vessel.ostium_distance_mm)
            points.append(points_px)
            radii.append(vessel.radius_mm * magnification / carm.pixel_mm)
            weights.append(step * contrast * scene.iodine_per_mm)
        catheter_px, catheter_magnification = carm.project(scene.catheter_at(float(time_s)))
        injecting = float(scene.bolus.concentration(float(time_s), 0.0))
        catheter_per_mm = scene.catheter_wall_per_mm + 0.5 * scene.iodine_per_mm * injecting  # undiluted, thin lumen
        points.append(catheter_px)
        radii.append(scene.catheter_radius_mm * catheter_magnification / carm.pixel_mm)
        weights.append(catheter_step * catheter_per_mm)
        attenuation = tubes.render(np.vstack(points), np.concatenate(radii), np.concatenate(weights))
        background = ndimage.gaussian_filter(_background_attenuation(scene, rays, static, float(time_s)), softness_px)
        primary_coarse = np.exp(-background)
        if quanta_scale is None:  # automatic exposure control: the first frame's median sets the tube output
            quanta_scale = exposure["quanta_per_pixel_at_512"] * binning / float(np.median(primary_coarse))
        scatter = exposure["scatter_to_primary"] * ndimage.gaussian_filter(primary_coarse, 30.0 / coarse_pixel_mm)
        # the display's dynamic range compression: a share of the large-scale log signal taken away
        smooth_log = ndimage.gaussian_filter(np.log(primary_coarse + scatter), compression_px)
        if compression_reference is None:
            compression_reference = float(np.median(smooth_log))
        compression = display["range_compression"] * (smooth_log - compression_reference)
        background_fine, scatter_fine, compression_fine = (
            ndimage.zoom(a, zoom, order=1, grid_mode=True, mode="nearest") for a in (background, scatter, compression)
        )
        primary = np.exp(-(background_fine + attenuation))
        expected = quanta_scale * (ndimage.gaussian_filter(primary, blur_px) + scatter_fine)
        counts = noise_rng.poisson(expected).astype(np.float32) + noise_rng.normal(0.0, electronic, expected.shape)
        if filter_px > 0.05:
            counts = ndimage.gaussian_filter(counts, filter_px)
        log_counts = np.log(np.maximum(counts, 1.0))
        if display["edge_enhancement"] > 0:
            log_counts += display["edge_enhancement"] * (log_counts - ndimage.gaussian_filter(log_counts, enhance_px))
        log_frames[k] = log_counts - compression_fine
    sample = log_frames[:, ::4, ::4]
    low, high = np.percentile(sample, [display["low_percentile"], display["high_percentile"]])
    white = 2 ** display["bits"] - 1
    scaled = np.clip((log_frames - low) / (high - low), 0.0, 1.0) ** display["gamma"]
    frames = np.round(scaled * white).astype(np.uint8 if display["bits"] == 8 else np.uint16)
    for k, frame in enumerate(frames):
        _burn_in_text(frame, settings["text"], k, white)
    return frames


def ground_truth(clip: AngiographyClip) -> dict:
    """The JSON written beside the frames."""
    return {
        "label": clip.label,
        "frame_count": len(clip.frame_times_s),
        "pixel_spacing_mm": list(clip.pixel_spacing_mm),
        "filled_phase_frames": np.flatnonzero(clip.filled_phase).tolist(),
        "stenoses": clip.stenoses,
        "frames": [
            {
                "file": f"frames/frame_{k:03d}.png",
                "time_s": float(t),
                "filled_fraction": float(clip.filled_fraction[k]),
                "filled_phase": bool(clip.filled_phase[k]),
                "boxes": clip.boxes_px[k],
                "text": clip.text_boxes_px[k],
            }
            for k, t in enumerate(clip.frame_times_s)
        ],
        "vessels": {
            name: {
                "parent": v.parent,
                "length_mm": v.length_mm,
                "proximal_diameter_mm": float(2 * v.reference_radius_mm[0]),
                "distal_diameter_mm": float(2 * v.reference_radius_mm[-1]),
            }
            for name, v in clip.vessels.items()
        },
        "settings": clip.settings,
    }


def write_clip(clip: AngiographyClip, out: Path) -> None:
    """frames/frame_000.png … (name order = frame order) and clip.json."""
    import imageio.v3 as iio

    folder = out / "frames"
    folder.mkdir(parents=True, exist_ok=True)
    for k, frame in enumerate(clip.frames):
        iio.imwrite(folder / f"frame_{k:03d}.png", frame)
    (out / "clip.json").write_text(json.dumps(ground_truth(clip), indent=1) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--matrix", type=int, default=NATIVE_MATRIX)
    parser.add_argument("--frames", type=int, default=None, help="frame count (default: drawn, 10–60)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    clip = make_angiography_clip(args.seed, matrix=args.matrix, frame_count=args.frames)
    write_clip(clip, args.out)
    boxed = sum(bool(boxes) for boxes in clip.boxes_px)
    print(
        f"{clip.settings['system']} system, {len(clip.frame_times_s)} frames "
        f"at {clip.settings['frames_per_second']:g} fps, "
        f"{clip.label}: {len(clip.stenoses)} stenoses, boxes on {boxed} frames, "
        f"filled phase frames {np.flatnonzero(clip.filled_phase).tolist()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Synthetic non-contrast head CT with exact hemorrhage masks: five subtypes where and how they occur (METHODS.md D).

    python training/synthetic_head_ct.py --seed 3 --out runs/head3     # writes head.nrrd, masks, slices.csv

Anatomy in millimetres, so a case has the same head at any pixel size: scalp, a skull of varying thickness
(partial-volume bone where the vertex runs tangent to the slices), grey and white matter, sulci and basal
cisterns, lateral and third ventricles, a skull base with petrous ridges and the beam-hardening streaks
between them. Hemorrhages (40–90 HU, several at once): the epidural lens against the inner table, the
subdural crescent along the convexity, the intraparenchymal blob with an oedema rim, intraventricular blood
layering in the dependent ventricles, subarachnoid blood in sulci and cisterns. Negatives also carry the
mimics: pineal, choroid plexus and falx calcification. Scans vary in head size and pose, field of view,
slice thickness, blur, noise and padding value outside the reconstruction circle.

Every slice is the mean of three sub-slices across its thickness; a slice holds a subtype where that
subtype's mask covers at least MIN_LABEL_AREA_MM2 of it (the slice labels), "any" where any subtype does.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "LesionDetect"))

from LesionDetectLib.detectors.hemorrhage.labels import LABELS, SUBTYPES  # noqa: E402
from LesionDetectLib.io.volume import Volume  # noqa: E402

GENERATOR_VERSION = "1.1.0"
MIN_LABEL_AREA_MM2 = 10.0
SUB_SLICES = 3
BLOOD_HU = (40.0, 90.0)
POSITIVE_PROBABILITY = 0.55
SUBTYPE_PROBABILITIES = dict(
    zip(SUBTYPES, (0.4, 0.45, 0.3, 0.5, 0.45))
)  # given a positive scan (1.1.0: epidural 0.25 → 0.4, subarachnoid 0.4 → 0.5)
FIELD_STEP_MM = 2.0  # smooth random fields live on this lattice, so anatomy does not depend on the grid
FIELD_EXTENT_MM = 130.0
BASE_SLOPE = 0.3  # the skull base rises this many mm per mm towards the front


@dataclass
class HeadCase:
    """One synthetic scan: the volume (HU), masks per subtype and anatomy, per-slice labels and the settings."""

    volume: Volume
    masks: dict[str, np.ndarray]  # subtype → bool (k, j, i)
    anatomy: dict[str, np.ndarray]  # "brain", "white" (matter), "bone", "ventricles", "csf" → bool (k, j, i)
    slice_labels: np.ndarray  # (k, 6) uint8 in LABELS order
    objects: list[dict] = field(default_factory=list)  # what was drawn: kind, centre (RAS mm), HU
    settings: dict = field(default_factory=dict)


class SmoothField:
    """A smooth random field in head coordinates (mm), zero mean, unit variance, correlation `sigma_mm`."""

    def __init__(self, rng, sigma_mm: float) -> None:
        size = int(2 * FIELD_EXTENT_MM / FIELD_STEP_MM) + 1
        values = ndimage.gaussian_filter(rng.standard_normal((size, size, size)), sigma_mm / FIELD_STEP_MM)
        self.values = values / values.std()

    def __call__(self, points: np.ndarray) -> np.ndarray:
        index = (points.reshape(-1, 3).T + FIELD_EXTENT_MM) / FIELD_STEP_MM
        sampled = ndimage.map_coordinates(self.values, index, order=1, mode="nearest")
        return sampled.reshape(points.shape[:-1])


@dataclass
class Head:
    """The drawn anatomy: outer semi-axes (mm), layer thicknesses, pose and its random fields."""

    axes: np.ndarray  # lateral, anterior-posterior, superior semi-axes of the scalp surface
    scalp_mm: float
    skull_mm: float
    rotation: np.ndarray  # head frame → scan frame
    base_z: float  # skull base height at the head's centre, in the head frame; it rises anteriorly
    base_mm: float  # thickness of the skull base plate
    fields: dict
    tissue: dict  # HU of grey, white, csf, scalp, bone

    def base_height(self, p: np.ndarray) -> np.ndarray:
        """Height of the skull base under a point: anterior fossa higher than the posterior (+y posterior)."""
        return self.base_z - BASE_SLOPE * p[..., 1]

    def to_head(self, points: np.ndarray) -> np.ndarray:
        return points @ self.rotation  # rows are points; rotation is orthonormal

    def depth(self, p: np.ndarray) -> np.ndarray:
        """Depth below the scalp surface along the ray from the centre (mm; negative outside)."""
        rho = np.sqrt(((p / self.axes) ** 2).sum(axis=-1))
        return np.linalg.norm(p, axis=-1) * (1.0 / np.maximum(rho, 1e-6) - 1.0)

    def brain_depth(self, p: np.ndarray) -> np.ndarray:
        """Depth below the inner table (mm); the skull thickens by up to 30 % where its field is high."""
        skull = self.skull_mm * (1.0 + 0.15 * np.tanh(self.fields["skull"](p)))
        return self.depth(p) - self.scalp_mm - skull


def draw_head(rng) -> Head:
    axes = np.array([rng.uniform(68, 80), rng.uniform(85, 100), rng.uniform(80, 95)])
    pitch, yaw = np.deg2rad(rng.uniform(-15, 15)), np.deg2rad(rng.uniform(-6, 6))
    rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
    rz = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    fields = {name: SmoothField(rng, sigma) for name, sigma in (("skull", 12.0), ("white", 8.0), ("sulci", 2.5))}
    tissue = {
        "grey": rng.uniform(35, 42),
        "white": rng.uniform(23, 30),
        "csf": rng.uniform(2, 10),
        "scalp": rng.uniform(20, 45),
        "bone": rng.uniform(1100, 1700),
    }
    base = -rng.uniform(0.35, 0.5) * axes[2]
    return Head(axes, rng.uniform(3, 6), rng.uniform(4.5, 8), rx @ rz, base, rng.uniform(3, 6), fields, tissue)


def _ventricles(head: Head, p: np.ndarray) -> np.ndarray:
    """Lateral ventricles (two curved ellipsoids either side of the midline) and the slit-like third."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    size = head.axes[0] / 74.0
    inside = np.zeros(p.shape[:-1], dtype=bool)
    for side in (-1.0, 1.0):
        centre_x = side * 11.0 * size + 0.06 * side * np.abs(y)
        bend = 0.004 * (y - 5.0) ** 2  # the horns curve down at both ends
        inside |= ((x - centre_x) / (6.0 * size)) ** 2 + ((y - 5.0) / (30.0 * size)) ** 2 + (
            (z - 18.0 * size + bend) / (8.0 * size)
        ) ** 2 <= 1.0
    inside |= (x / (1.5 * size)) ** 2 + ((y - 5.0) / (14.0 * size)) ** 2 + ((z - 2.0) / (7.0 * size)) ** 2 <= 1.0
    return inside


def _render_sub_slice(head: Head, points: np.ndarray, lesions: list[dict], mimics: list[dict]):
    """HU, subtype occupancy and anatomy masks at scan points (…, 3) in mm."""
    p = head.to_head(points)
    depth = head.depth(p)
    brain_depth = head.brain_depth(p)
    above_base = p[..., 2] - head.base_height(p)  # mm above the skull base plate's lower surface
    below_base = above_base < head.base_mm
    hu = np.full(p.shape[:-1], -1000.0)
    scalp = (depth >= 0) & (brain_depth < 0)
    hu[scalp] = head.tissue["scalp"]
    bone = (depth >= head.scalp_mm) & (brain_depth < 0)
    hu[bone] = head.tissue["bone"] * (0.75 + 0.25 * np.abs(np.tanh(head.fields["skull"](p[bone]) * 2)))
    brain = (brain_depth >= 0) & ~below_base
    hu[(brain_depth >= 0) & below_base] = head.tissue["scalp"]  # face and neck soft tissue under the skull base
    white = brain & (brain_depth > 10.0 + 3.0 * head.fields["white"](p))
    hu[brain] = head.tissue["grey"]
    hu[white] = head.tissue["white"]
    sulci = brain & (brain_depth < 10.0) & (np.abs(head.fields["sulci"](p)) < 0.15 + 0.08 * (brain_depth < 2))
    ventricles = brain & _ventricles(head, p)
    cisterns = brain & (above_base < head.base_mm + 14.0) & (np.hypot(p[..., 0], p[..., 1] - 12.0) < 22.0)
    cisterns &= np.hypot(p[..., 0], p[..., 1] - 12.0) > 13.0  # CSF ring around the brainstem
    csf = sulci | ventricles | cisterns
    hu[csf] = head.tissue["csf"]
    base = (depth >= 0) & (above_base >= 0) & below_base  # skull base plate and petrous ridges
    for side in (-1.0, 1.0):
        ridge = ((p[..., 0] - side * 28.0) / 20.0) ** 2 + ((p[..., 1] - 8.0) / 6.0) ** 2 + (above_base / 12.0) ** 2
        base |= (depth >= 0) & (ridge <= 1.0)
    hu[base] = 0.8 * head.tissue["bone"]
    bone |= base
    brain &= ~base
    csf &= ~base
    occupancy = {}
    for lesion in lesions:
        inside, rim = _lesion_mask(lesion, head, p, brain, brain_depth, ventricles, csf)
        hu[rim & ~inside] -= lesion.get("oedema_hu", 0.0)
        hu[inside] = lesion["hu"]
        occupancy[lesion["subtype"]] = occupancy.get(lesion["subtype"], False) | inside
    for mimic in mimics:
        hu[np.linalg.norm(p - mimic["center"], axis=-1) <= mimic["radius_mm"]] = mimic["hu"]
    anatomy = {"brain": brain, "white": white & ~csf, "bone": bone, "ventricles": ventricles, "csf": csf}
    return hu, occupancy, anatomy


def _angular_distance(p: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Distance along the surface (mm) from the point where `direction` leaves the centre."""
    radius = np.linalg.norm(p, axis=-1)
    cosine = (p @ direction) / np.maximum(radius, 1e-6)
    return radius * np.arccos(np.clip(cosine, -1.0, 1.0))


def _lesion_mask(lesion, head, p, brain, brain_depth, ventricles, csf):
    kind = lesion["subtype"]
    empty = np.zeros(p.shape[:-1], dtype=bool)
    if kind in ("epidural", "subdural"):
        s = _angular_distance(p, lesion["direction"]) / lesion["radius_mm"]
        power = 1.0 if kind == "epidural" else 0.25  # a lens bulges, a crescent stays thick and tapers at its ends
        profile = lesion["thickness_mm"] * np.clip(1.0 - s**2, 0.0, None) ** power
        return brain & (brain_depth < profile) & (s < 1.0), empty
    if kind == "intraparenchymal":
        distance = np.linalg.norm((p - lesion["center"]) / lesion["radii_mm"], axis=-1)
        wobble = 0.15 * head.fields["white"](p)
        inside = brain & ~ventricles & (distance + wobble <= 1.0)
        rim = brain & ~ventricles & (distance + wobble <= 1.0 + lesion["rim_mm"] / lesion["radii_mm"].min())
        return inside, rim
    if kind == "intraventricular":
        return ventricles & (p[..., 1] > lesion["level_mm"]), empty  # supine: blood settles posteriorly
    if kind == "subarachnoid":
        near = _angular_distance(p, lesion["direction"]) < lesion["radius_mm"]
        basal = p[..., 2] - head.base_height(p) < head.base_mm + 14.0 if lesion["basal"] else empty
        return csf & ~ventricles & (near | basal), empty
    raise ValueError(kind)


def _surface_direction(rng, min_z: float = -0.1) -> np.ndarray:
    while True:
        direction = rng.standard_normal(3)
        direction /= np.linalg.norm(direction)
        if direction[2] >= min_z:
            return direction


def draw_lesions(rng, head: Head) -> list[dict]:
    """Which subtypes this scan holds (none for a negative) and where."""
    if rng.random() >= POSITIVE_PROBABILITY:
        return []
    chosen = [s for s in SUBTYPES if rng.random() < SUBTYPE_PROBABILITIES[s]] or [str(rng.choice(SUBTYPES))]
    lesions = []
    for subtype in chosen:
        hu = float(rng.uniform(*BLOOD_HU))
        if subtype == "epidural":
            lesion = {"direction": _surface_direction(rng, 0.0), "radius_mm": rng.uniform(18, 35)}
            lesion["thickness_mm"] = rng.uniform(6, 20)
        elif subtype == "subdural":
            lesion = {"direction": _surface_direction(rng, 0.1), "radius_mm": rng.uniform(45, 85)}
            lesion["thickness_mm"] = rng.uniform(3, 12)
        elif subtype == "intraparenchymal":
            direction = _surface_direction(rng, 0.0)
            depth = rng.uniform(0.35, 0.65)
            lesion = {"center": direction * head.axes * depth, "radii_mm": rng.uniform(5, 22, size=3)}
            lesion["rim_mm"], lesion["oedema_hu"] = rng.uniform(2, 6), rng.uniform(6, 14)
        elif subtype == "intraventricular":
            lesion = {"level_mm": rng.uniform(-5, 25)}
            hu = float(rng.uniform(50, 85))
        else:
            lesion = {"direction": _surface_direction(rng, 0.0), "radius_mm": rng.uniform(20, 50)}
            lesion["basal"] = bool(rng.random() < 0.5)
            hu = float(rng.uniform(40, 70))
        lesions.append({"subtype": subtype, "hu": hu, **lesion})
    return lesions


def draw_mimics(rng, head: Head) -> list[dict]:
    """Physiological calcification: pineal, choroid plexus (both atria), falx."""
    mimics = []
    if rng.random() < 0.6:
        mimics.append({"kind": "pineal", "center": np.array([0.0, 22.0, 6.0]), "radius_mm": rng.uniform(1.5, 4)})
    if rng.random() < 0.5:
        for side in (-1.0, 1.0):
            center = np.array([side * 16.0, 28.0, 16.0])
            mimics.append({"kind": "choroid plexus", "center": center, "radius_mm": rng.uniform(1.5, 3.5)})
    if rng.random() < 0.25:
        top = head.axes[2] * rng.uniform(0.45, 0.7)
        for z in np.arange(top - 8.0, top, 2.0):
            mimics.append({"kind": "falx", "center": np.array([0.0, rng.uniform(-30, 30), z]), "radius_mm": 1.5})
    for mimic in mimics:
        mimic["hu"] = float(rng.uniform(150, 500))
    return mimics


def draw_scan(rng, matrix: int, slice_thickness_mm: float | None) -> dict:
    return {
        "matrix": int(matrix),
        "fov_mm": float(rng.uniform(200, 250)),
        "slice_mm": float(slice_thickness_mm or rng.choice([2.5, 3.0, 5.0], p=[0.2, 0.3, 0.5])),
        "blur_mm": float(rng.uniform(0.4, 0.9)),
        "noise_hu": float(rng.uniform(2.0, 6.0)),
        "padding_hu": float(rng.choice([-1024.0, -2000.0, -3024.0])),
        "beam_hardening_hu": float(rng.uniform(10, 35)),
    }


def make_head_case(
    seed: int, matrix: int = 256, slice_thickness_mm: float | None = None, fov_mm: float | None = None
) -> HeadCase:
    """One seeded scan; `matrix`, `slice_thickness_mm` and `fov_mm` change the grid, never the head."""
    anatomy_rng, scan_rng, noise_rng = (np.random.default_rng([seed, n]) for n in range(3))
    head = draw_head(anatomy_rng)
    lesions, mimics = draw_lesions(anatomy_rng, head), draw_mimics(anatomy_rng, head)
    scan = draw_scan(scan_rng, matrix, slice_thickness_mm)
    if fov_mm is not None:
        scan["fov_mm"] = float(fov_mm)
    pixel = scan["fov_mm"] / matrix
    extent_z = head.axes[2] + 5.0
    slices = np.arange(head.base_z - 20.0, extent_z, scan["slice_mm"])
    coords = (np.arange(matrix) - (matrix - 1) / 2) * pixel
    rows, cols = np.meshgrid(coords, coords, indexing="ij")
    shape = (len(slices), matrix, matrix)
    hu = np.zeros(shape, dtype=np.float32)
    occupancy = {s: np.zeros(shape, dtype=np.float32) for s in SUBTYPES}
    anatomy = {name: np.zeros(shape, dtype=np.float32) for name in ("brain", "white", "bone", "ventricles", "csf")}
    offsets = (np.arange(SUB_SLICES) + 0.5) / SUB_SLICES - 0.5
    for k, z in enumerate(slices):
        for offset in offsets:
            # i runs to the patient's left (−R), j to posterior (−A): RAS x = −column, y = −row
            points = np.stack([-cols, -rows, np.full_like(rows, z + offset * scan["slice_mm"])], axis=-1)
            points = points * [1, -1, 1]  # head frame: +y posterior
            sub_hu, sub_occupancy, sub_anatomy = _render_sub_slice(head, points, lesions, mimics)
            hu[k] += sub_hu / SUB_SLICES
            for name, mask in sub_occupancy.items():
                occupancy[name][k] += mask / SUB_SLICES
            for name, mask in sub_anatomy.items():
                anatomy[name][k] += mask / SUB_SLICES
    _beam_hardening(hu, anatomy["bone"], slices, head, pixel, scan["beam_hardening_hu"])
    hu = ndimage.gaussian_filter(hu, (0, scan["blur_mm"] / pixel, scan["blur_mm"] / pixel))
    hu += noise_rng.normal(0.0, scan["noise_hu"], size=hu.shape).astype(np.float32)
    outside = rows**2 + cols**2 > (scan["fov_mm"] / 2) ** 2
    hu[:, outside] = scan["padding_hu"]
    masks = {s: occupancy[s] >= 0.5 for s in SUBTYPES}
    ijk_to_ras = np.array(
        [[-pixel, 0, 0, coords[-1]], [0, -pixel, 0, coords[-1]], [0, 0, scan["slice_mm"], slices[0]], [0, 0, 0, 1]]
    )
    volume = Volume(np.rint(hu).astype(np.int16), ijk_to_ras, name=f"synthetic head CT {seed}", modality="CT")
    return HeadCase(
        volume=volume,
        masks=masks,
        anatomy={name: values >= 0.5 for name, values in anatomy.items()},
        slice_labels=slice_labels(masks, pixel),
        objects=[_described(o) for o in lesions + mimics],
        settings={
            "seed": int(seed),
            "generator_version": GENERATOR_VERSION,
            **scan,
            "pixel_mm": pixel,
            "tissue_hu": {name: float(value) for name, value in head.tissue.items()},
        },
    )


def _beam_hardening(hu, bone, slices, head: Head, pixel: float, strength: float) -> None:
    """Dark streaks between the petrous ridges on the skull-base slices (lower HU in soft tissue)."""
    for k, z in enumerate(slices):
        if not head.base_z - 6.0 < z < head.base_z + 16.0 or not bone[k].any():
            continue
        streak = ndimage.gaussian_filter((bone[k] > 0.5).astype(np.float32), 6.0 / pixel)
        soft = (hu[k] > -100) & (hu[k] < 150)
        hu[k][soft] -= strength * streak[soft] / max(float(streak.max()), 1e-6)


def slice_labels(masks: dict[str, np.ndarray], pixel_mm: float) -> np.ndarray:
    """(k, 6) uint8: a subtype where its mask covers ≥ MIN_LABEL_AREA_MM2 of a slice; "any" where one does."""
    min_pixels = MIN_LABEL_AREA_MM2 / pixel_mm**2
    some_mask = next(iter(masks.values()))
    labels = np.zeros((some_mask.shape[0], len(LABELS)), dtype=np.uint8)
    for n, subtype in enumerate(SUBTYPES, start=1):
        labels[:, n] = masks[subtype].sum(axis=(1, 2)) >= min_pixels
    labels[:, 0] = labels[:, 1:].any(axis=1)
    return labels


def _described(drawn: dict) -> dict:
    return {
        key: value.tolist() if isinstance(value, np.ndarray) else value
        for key, value in drawn.items()
        if key in ("subtype", "kind", "hu", "center", "direction", "radius_mm", "thickness_mm", "radii_mm", "basal")
    }


def write_case(case: HeadCase, out: Path) -> None:
    """head.nrrd, one mask NRRD per subtype present, slices.csv (slice, six labels) and settings.json."""
    from LesionDetectLib.io.volume_io import write_nrrd

    out.mkdir(parents=True, exist_ok=True)
    write_nrrd(case.volume, out / "head.nrrd", overwrite=True)
    for subtype, mask in case.masks.items():
        if mask.any():
            mask_volume = Volume(mask.astype(np.uint8), case.volume.ijk_to_ras, name=subtype)
            write_nrrd(mask_volume, out / f"mask_{subtype}.nrrd", overwrite=True)
    with open(out / "slices.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["slice", *LABELS])
        writer.writerows([k, *row] for k, row in enumerate(case.slice_labels.tolist()))
    (out / "settings.json").write_text(json.dumps({**case.settings, "objects": case.objects}, indent=1) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--matrix", type=int, default=256)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    case = make_head_case(args.seed, matrix=args.matrix)
    write_case(case, args.out)
    print(
        f"{case.volume.array.shape[0]} slices; positive slices per label: {dict(zip(LABELS, case.slice_labels.sum(0)))}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

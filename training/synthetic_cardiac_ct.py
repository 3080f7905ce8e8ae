"""Synthetic non-contrast gated cardiac CT with exact ground truth, for training and evaluating a calcium detector.

Each seed draws a calcium-scoring scan — heart-centred field of view of 160–240 mm, 0.5–3 mm slices over
100–150 mm from near the carina to below the apex — and a chest to put in it: body wall, lungs with vessels, a
tilted heart in epicardial fat with the coronary tree on its surface, aortic root and ascending/descending aorta,
pulmonary arteries, caval veins, airways, diaphragm domes, spine, sternum and ribs. Calcified plaques sit on the
coronaries; aortic wall and valve calcium, stents and pacemaker leads (with streaks) and bone are the confounders.
Partial volume and blooming come from supersampling and a Gaussian PSF; noise is correlated in-plane at standard
or low dose.

What it is: simple shapes arranged like a chest, with exact labels — every voxel ≥ 130 HU that an object raised
is labelled with that object's structure code and (for compact objects) instance — and a lesion list. What it is
not: real anatomy, real noise texture or real artefacts. Shapes, densities and textures are plausible, not
measured; a model trained here must still be checked on real scans.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from synthetic_anatomy import Layout, draw_layout, paint_bones, render_soft_tissue
from synthetic_calcium import add_streaks, draw_object, draw_objects
from synthetic_shapes import Grid, Tracker, upsample_in_plane

from LesionDetectLib.io.volume import LPS_TO_RAS, Volume

GENERATOR_VERSION = "1.0.0"
CALCIUM_THRESHOLD_HU = 130.0
MIN_CONTRIBUTION_HU = 30.0  # a voxel belongs to an object that raised it by at least this much
HU_RANGE = (-1024, 3071)
SLICE_THICKNESSES_MM = (3.0, 2.5, 2.0, 1.5, 1.0, 0.5)
SLICE_THICKNESS_PROBABILITIES = (0.5, 0.2, 0.1, 0.08, 0.07, 0.05)
FOV_RANGE_MM = (160.0, 240.0)
STANDARD_DOSE_NOISE_HU = (10.0, 20.0)
LOW_DOSE_NOISE_HU = (25.0, 45.0)
LOW_DOSE_PROBABILITY = 0.3


@dataclass
class SyntheticLesion:
    """One compact calcified or metal object, as drawn."""

    lesion_id: int  # 1..N, its value in `instances`
    code: int  # calcium_labels code: 1–4 coronary arteries, 6 aortic, 7 valve, 9 stent or metal
    center_lps: tuple[float, float, float]
    size_mm: tuple[float, float, float]  # axis-aligned LPS extent of its solid, before blur
    peak_hu: float  # noise-free peak of the object in the image


@dataclass
class SyntheticCase:
    volume: Volume  # int16 HU, ijk_to_ras = LPS_TO_RAS @ ijk_to_lps, axial, modality "CT"
    labels: np.ndarray  # uint8 (k, j, i): structure code of voxels ≥ 130 HU raised by a structure; 0 elsewhere
    instances: np.ndarray  # uint16 (k, j, i): lesion_id of those voxels of compact objects; 0 for bone/background
    lesions: list[SyntheticLesion]
    heart_mask: np.ndarray  # bool (k, j, i): heart, epicardial fat and aortic root
    seed: int
    settings: dict  # the drawn scan and anatomy settings, JSON-serialisable


def draw_scan(rng) -> dict:
    """Scanner settings of one case (before any override)."""
    low_dose = bool(rng.random() < LOW_DOSE_PROBABILITY)
    noise_range = LOW_DOSE_NOISE_HU if low_dose else STANDARD_DOSE_NOISE_HU
    return {
        "fov_mm": float(rng.uniform(*FOV_RANGE_MM)),
        "fov_offset_mm": [float(v) for v in rng.uniform(-8, 8, size=2)],
        "slice_thickness_mm": float(rng.choice(SLICE_THICKNESSES_MM, p=SLICE_THICKNESS_PROBABILITIES)),
        "psf_sigma_mm": float(rng.uniform(0.4, 0.8)),
        "psf_sigma_z_mm": float(rng.uniform(0.3, 0.6)),
        "dose": "low" if low_dose else "standard",
        "noise_hu": float(rng.uniform(*noise_range)),
        "noise_grain_mm": float(rng.uniform(0.35, 0.75)),
    }


def make_case(
    seed: int,
    *,
    matrix: int = 512,
    slice_thickness_mm: float | None = None,
    fov_mm: float | None = None,
    noise_hu: float | None = None,
) -> SyntheticCase:
    """One synthetic case; arguments left as None are drawn from the seed. Same seed and arguments → same case.

    The anatomy and objects depend on the seed only, so one seed at two matrices shows the same chest.
    """
    if matrix < 32 or (slice_thickness_mm is not None and slice_thickness_mm <= 0) or (noise_hu or 0) < 0:
        raise ValueError("make_case needs matrix ≥ 32, a positive slice thickness and a non-negative noise SD")
    anatomy_rng, scan_rng, object_rng, artefact_rng, noise_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )
    layout = draw_layout(anatomy_rng)
    scan = draw_scan(scan_rng)
    scan["fov_mm"] = float(fov_mm) if fov_mm is not None else _fov_fitting_heart(scan["fov_mm"], layout)
    if slice_thickness_mm is not None:
        scan["slice_thickness_mm"] = float(slice_thickness_mm)
    if noise_hu is not None:
        scan["noise_hu"] = float(noise_hu)
    burden_level, objects = draw_objects(object_rng, layout)
    grid = _scan_grid(scan, layout, matrix)

    volume, heart_mask = _anatomy(grid, layout)
    tracker = Tracker(grid.shape)
    paint_bones(volume, grid, layout, tracker)
    drawn = _draw_objects(volume, grid, tracker, objects, scan, artefact_rng)
    _add_noise(volume, grid, scan, noise_rng)
    image = _to_int16(volume)
    labels, instances = tracker.label_maps(image, CALCIUM_THRESHOLD_HU, MIN_CONTRIBUTION_HU)
    lesions, instances = _visible_lesions(drawn, instances, tracker.regions)
    return SyntheticCase(
        volume=Volume(image, LPS_TO_RAS @ _ijk_to_lps(grid), name=f"synthetic cardiac CT {seed}", modality="CT"),
        labels=labels,
        instances=instances,
        lesions=lesions,
        heart_mask=heart_mask,
        seed=int(seed),
        settings=_settings(scan, grid, matrix, burden_level, lesions, layout),
    )


def _to_int16(volume: np.ndarray) -> np.ndarray:
    """Rounded, clipped to the CT range, as int16 (rounding in place to spare memory)."""
    np.rint(volume, out=volume)
    np.clip(volume, *HU_RANGE, out=volume)
    return volume.astype(np.int16)


def _ijk_to_lps(grid: Grid) -> np.ndarray:
    ijk_to_lps = np.diag([grid.pixel_mm, grid.pixel_mm, grid.spacing_mm, 1.0])
    ijk_to_lps[:3, 3] = (grid.x[0], grid.y[0], grid.z[0])
    return ijk_to_lps


def _fov_fitting_heart(fov_mm: float, layout: Layout) -> float:
    """The drawn field of view, widened (up to its maximum) to hold the heart with 10 mm to spare."""
    low, high = layout.heart_bounds()
    return float(min(max(fov_mm, float(np.max(high[:2] - low[:2])) + 20.0), FOV_RANGE_MM[1]))


def _scan_grid(scan: dict, layout: Layout, matrix: int) -> Grid:
    """Heart-centred axial grid over the layout's z range."""
    low, high = layout.heart_bounds()
    center = 0.5 * (low[:2] + high[:2]) + np.asarray(scan["fov_offset_mm"])
    pixel = scan["fov_mm"] / matrix
    in_plane = (np.arange(matrix) + 0.5) * pixel - 0.5 * scan["fov_mm"]
    thickness = scan["slice_thickness_mm"]
    z_low, z_high = layout.z_range
    slices = max(2, int(round((z_high - z_low) / thickness)))
    z = z_low + (np.arange(slices) + 0.5) * thickness
    return Grid.for_scan(
        center[0] + in_plane, center[1] + in_plane, z, thickness, scan["psf_sigma_mm"], scan["psf_sigma_z_mm"]
    )


def _anatomy(grid: Grid, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Soft tissue (drawn at ≥ 0.5 mm pixels, then upsampled) and the heart mask, at the scan's resolution."""
    factor = 2 if grid.pixel_mm < 0.5 and len(grid.x) % 2 == 0 else 1
    soft, heart_region = render_soft_tissue(grid.coarse(factor), layout)
    heart_mask = heart_region >= 0.5
    if factor == 1:
        return soft, heart_mask
    volume = np.empty(grid.shape, dtype=np.float32)
    upsample_in_plane(soft, volume)
    return volume, heart_mask.repeat(2, axis=1).repeat(2, axis=2)


def _draw_objects(volume, grid: Grid, tracker: Tracker, objects, scan: dict, rng) -> list[SyntheticLesion]:
    """Paint every calcified and metal object, with streaks for metal; keep those that reach the grid."""
    lesions = []
    for obj in objects:
        lesion_id = len(lesions) + 1
        owner = tracker.new_owner(obj.code, lesion_id)
        result = draw_object(volume, grid, tracker, obj, owner, scan["psf_sigma_mm"], scan["psf_sigma_z_mm"])
        if result is None:
            continue
        crop, peak, solid, contribution = result
        low, high = solid.bounds()
        lesions.append(
            SyntheticLesion(
                lesion_id=lesion_id,
                code=obj.code,
                center_lps=tuple(round(float(v), 3) for v in obj.center),
                size_mm=tuple(round(float(v), 3) for v in high - low),
                peak_hu=round(min(peak, HU_RANGE[1]), 1),
            )
        )
        if obj.metal:
            add_streaks(volume, grid, crop, contribution, rng)
    return lesions


def _add_noise(volume: np.ndarray, grid: Grid, scan: dict, rng) -> None:
    """Add Gaussian noise smoothed in-plane to the scan's grain, scaled to the scan's noise SD (HU)."""
    sigma_px = scan["noise_grain_mm"] / grid.pixel_mm
    radius = int(4.0 * sigma_px + 0.5)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_px) ** 2)
    kernel /= kernel.sum()
    scale = np.float32(scan["noise_hu"] / float(np.sum(kernel**2)))  # two axes: SD shrinks by ‖kernel‖² overall
    for start in range(0, volume.shape[0], 8):
        block = rng.standard_normal((min(8, volume.shape[0] - start), *volume.shape[1:]), dtype=np.float32)
        ndimage.correlate1d(block, kernel, axis=1, output=block)
        ndimage.correlate1d(block, kernel, axis=2, output=block)
        block *= scale
        volume[start : start + 8] += block


def _visible_lesions(drawn: list[SyntheticLesion], instances: np.ndarray, regions):
    """Lesions with at least one labelled voxel renumbered 1..N, and the instance map renumbered to match."""
    present = np.zeros(len(drawn) + 1, dtype=bool)
    for region in regions:
        present[np.unique(instances[region])] = True
    renumber = np.zeros(len(drawn) + 1, dtype=np.uint16)
    lesions = []
    for lesion in drawn:
        if present[lesion.lesion_id]:
            renumber[lesion.lesion_id] = len(lesions) + 1
            lesions.append(replace(lesion, lesion_id=len(lesions) + 1))
    if len(lesions) < len(drawn):
        instances = renumber[instances]
    return lesions, instances


def _settings(scan: dict, grid: Grid, matrix: int, burden_level: int, lesions, layout: Layout) -> dict:
    counts = {
        name: sum(1 for lesion in lesions if lesion.code in codes)
        for name, codes in (("coronary", (1, 2, 3, 4)), ("aortic", (6,)), ("valve", (7,)), ("metal", (9,)))
    }
    return {
        **scan,
        "matrix": int(matrix),
        "pixel_mm": grid.pixel_mm,
        "slice_spacing_mm": grid.spacing_mm,
        "slices": len(grid.z),
        "z_coverage_mm": round(len(grid.z) * grid.spacing_mm, 3),
        "origin_lps": [float(grid.x[0]), float(grid.y[0]), float(grid.z[0])],
        "calcium_burden_level": burden_level,
        "lesion_counts": counts,
        "anatomy": layout.summary(),
    }


def write_case(case: SyntheticCase, folder: Path) -> None:
    """folder/image.nrrd (int16), labels.nrrd (uint8), instances.nrrd (uint16), case.json, with LPS geometry."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ijk_to_lps = LPS_TO_RAS @ case.volume.ijk_to_ras
    spacing = np.linalg.norm(ijk_to_lps[:3, :3], axis=0)
    for name, array, compress in (
        ("image", case.volume.array, False),
        ("labels", case.labels, True),
        ("instances", case.instances, True),
    ):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(spacing.tolist())
        image.SetOrigin(ijk_to_lps[:3, 3].tolist())
        image.SetDirection((ijk_to_lps[:3, :3] / spacing).ravel().tolist())
        sitk.WriteImage(image, str(folder / f"{name}.nrrd"), useCompression=compress)
    description = {
        "seed": case.seed,
        "generator_version": GENERATOR_VERSION,
        "settings": case.settings,
        "lesions": [asdict(lesion) for lesion in case.lesions],
    }
    (folder / "case.json").write_text(json.dumps(description, indent=2))


def write_dataset(first_seed: int, count: int, folder: Path, **kwargs) -> None:
    """Cases for seeds first_seed … first_seed + count − 1 in folder/case_<seed>/."""
    for seed in range(first_seed, first_seed + count):
        write_case(make_case(seed, **kwargs), Path(folder) / f"case_{seed}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for case_<seed>/ subfolders")
    parser.add_argument("--matrix", type=int, default=512)
    parser.add_argument("--slice-thickness", type=float, help="mm (default: drawn per case)")
    parser.add_argument("--fov", type=float, help="mm (default: drawn per case)")
    parser.add_argument("--noise", type=float, help="noise SD in HU (default: drawn per case)")
    args = parser.parse_args(argv)
    write_dataset(
        args.first_seed,
        args.count,
        args.output,
        matrix=args.matrix,
        slice_thickness_mm=args.slice_thickness,
        fov_mm=args.fov,
        noise_hu=args.noise,
    )


if __name__ == "__main__":
    main()

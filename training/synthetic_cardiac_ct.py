"""Synthetic non-contrast cardiac CT with exact ground truth, for training and evaluating a calcium detector.

Each seed draws a scan with domain randomisation over what real calcium-scoring and chest CTs vary in — field of
view 150–500 mm (0.3–1.0 mm pixels at 512²), 0.5–5 mm slices over 100–150 mm from near the carina to below the
apex, noise SD 10–60 HU, smooth, standard or sharp kernel, non-gated motion blur over the heart in some cases —
and a chest to put in it: body wall, lungs with vessels, a heart of varying size, orientation and coronary
dominance in epicardial fat with the coronary tree on its surface, aortic root and ascending/descending aorta,
pulmonary arteries, caval veins, airways, diaphragm domes, spine, sternum and ribs (costal cartilage sometimes
calcified). Calcified plaques, from specks to dense proximal plaques, sit on the coronaries; aortic root, aortic
valve and mitral annular calcium next to the ostia, stents, pacemaker leads, sternal wires and surgical clips
(with streaks) and bone are the confounders. Partial volume and blooming come from supersampling and a Gaussian
PSF; noise is correlated in-plane with the kernel's grain. The ranges are the constants below and in
`synthetic_anatomy` / `synthetic_calcium`, tabled in training/README.md.

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
from synthetic_shapes import Grid, Tracker, line_blur, sharpen_in_plane, upsample_in_plane

from LesionDetectLib.io.volume import LPS_TO_RAS, Volume

GENERATOR_VERSION = "2.0.0"
CALCIUM_THRESHOLD_HU = 130.0
MIN_CONTRIBUTION_HU = 30.0  # a voxel belongs to an object that raised it by at least this much
HU_RANGE = (-1024, 3071)
SLICE_THICKNESSES_MM = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0)
SLICE_THICKNESS_PROBABILITIES = (0.04, 0.1, 0.08, 0.08, 0.15, 0.35, 0.2)
FOV_RANGE_MM = (150.0, 500.0)  # all fields of view; widened where needed to hold the heart with 5 mm to spare
GATED_FOV_MM = (150.0, 320.0)  # uniform, for gated (calcium-scoring) scans
NON_GATED_FOV_MM = (250.0, 500.0)  # uniform, for non-gated (chest) scans
FOV_HEART_MARGIN_MM = 5.0
FOV_BODY_CENTRED_FROM_MM = 250.0  # wider fields of view move from heart-centred to body-centred
NOISE_RANGE_HU = (10.0, 60.0)  # SD of the noise, uniform
KERNELS = {  # in-plane PSF σ, noise grain σ (mm) and edge enhancement (amount, σ mm) of each kernel
    "smooth": {"psf_mm": (0.6, 0.9), "grain_mm": (0.6, 1.0), "enhance": (0.0, 0.0), "enhance_mm": (1.0, 1.0)},
    "standard": {"psf_mm": (0.4, 0.7), "grain_mm": (0.4, 0.7), "enhance": (0.0, 0.0), "enhance_mm": (1.0, 1.0)},
    "sharp": {"psf_mm": (0.3, 0.5), "grain_mm": (0.25, 0.45), "enhance": (0.4, 1.2), "enhance_mm": (0.6, 1.2)},
}
KERNEL_PROBABILITIES = (0.35, 0.4, 0.25)
PSF_Z_MM = (0.3, 0.6)
NON_GATED_PROBABILITY = 0.4
MOTION_PROBABILITY = 0.75  # of non-gated scans: blurred along one in-plane direction over the heart
MOTION_BLUR_MM = (1.5, 6.0)
MOTION_FEATHER_MM = 10.0  # the blur fades out over this margin round the heart's box
SMALL_METAL_STREAKS = 0.4  # wires and clips streak fainter and shorter than stents and leads


@dataclass
class SyntheticLesion:
    """One compact calcified or metal object, as drawn."""

    lesion_id: int  # 1..N, its value in `instances`
    code: int  # calcium_labels code: 1–4 coronary arteries, 6 aortic, 7 valve, 9 stent or metal
    center_lps: tuple[float, float, float]
    size_mm: tuple[float, float, float]  # axis-aligned LPS extent of its solid, before blur
    peak_hu: float  # noise-free peak of the object in the image
    kind: str = ""  # speck, spot, arc, dense; aortic, ostial aortic; valve, mitral; stent, lead, wire, clip


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
    gated = bool(rng.random() >= NON_GATED_PROBABILITY)
    kernel = str(rng.choice(list(KERNELS), p=KERNEL_PROBABILITIES))
    ranges = KERNELS[kernel]
    motion = (not gated) and bool(rng.random() < MOTION_PROBABILITY)
    angle = float(rng.uniform(0, np.pi))
    return {
        "fov_mm": float(rng.uniform(*(GATED_FOV_MM if gated else NON_GATED_FOV_MM))),
        "fov_offset_mm": [float(v) for v in rng.uniform(-8, 8, size=2)],
        "slice_thickness_mm": float(rng.choice(SLICE_THICKNESSES_MM, p=SLICE_THICKNESS_PROBABILITIES)),
        "kernel": kernel,
        "psf_sigma_mm": float(rng.uniform(*ranges["psf_mm"])),
        "psf_sigma_z_mm": float(rng.uniform(*PSF_Z_MM)),
        "edge_enhancement": float(rng.uniform(*ranges["enhance"])),
        "edge_enhancement_mm": float(rng.uniform(*ranges["enhance_mm"])),
        "noise_hu": float(rng.uniform(*NOISE_RANGE_HU)),
        "noise_grain_mm": float(rng.uniform(*ranges["grain_mm"])),
        "gated": gated,
        "motion_blur_mm": float(rng.uniform(*MOTION_BLUR_MM)) if motion else 0.0,
        "motion_direction_lps": [round(float(np.cos(angle)), 6), round(float(np.sin(angle)), 6)],
    }


def make_case(
    seed: int,
    *,
    matrix: int = 512,
    slice_thickness_mm: float | None = None,
    fov_mm: float | None = None,
    noise_hu: float | None = None,
    motion_blur_mm: float | None = None,
) -> SyntheticCase:
    """One synthetic case; arguments left as None are drawn from the seed. Same seed and arguments → same case.

    The anatomy and objects depend on the seed only, so one seed at two matrices shows the same chest.
    """
    if (
        matrix < 32
        or (slice_thickness_mm is not None and slice_thickness_mm <= 0)
        or (noise_hu or 0) < 0
        or (motion_blur_mm or 0) < 0
    ):
        raise ValueError("make_case needs matrix ≥ 32, a positive slice thickness and non-negative noise and blur")
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
    if motion_blur_mm is not None:
        scan["motion_blur_mm"] = float(motion_blur_mm)
    burden_level, objects = draw_objects(object_rng, layout)
    grid = _scan_grid(scan, layout, matrix)

    volume, heart_mask = _anatomy(grid, layout)
    if scan["motion_blur_mm"] > 0:
        _blur_heart_motion(volume, grid, layout, scan)
    tracker = Tracker(grid.shape)
    paint_bones(volume, grid, layout, tracker)
    if scan["edge_enhancement"] > 0:
        sharpen_in_plane(volume, scan["edge_enhancement_mm"] / grid.pixel_mm, scan["edge_enhancement"])
    drawn = _draw_objects(volume, grid, tracker, objects, scan, artefact_rng, _response(grid, layout, scan))
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
    """The drawn field of view, widened (up to its maximum) to hold the heart with a few mm to spare."""
    low, high = layout.heart_bounds()
    needed = float(np.max(high[:2] - low[:2])) + 2 * FOV_HEART_MARGIN_MM
    return float(min(max(fov_mm, needed), FOV_RANGE_MM[1]))


def _scan_grid(scan: dict, layout: Layout, matrix: int) -> Grid:
    """Axial grid over the layout's z range: heart-centred, moving to body-centred for wide fields of view."""
    low, high = layout.heart_bounds()
    heart_center = 0.5 * (low[:2] + high[:2])
    weight = float(np.clip((scan["fov_mm"] - FOV_BODY_CENTRED_FROM_MM) / 150.0, 0.0, 1.0))
    center = (
        (1.0 - weight) * heart_center
        + weight * np.asarray(layout.chest.body_center)
        + np.asarray(scan["fov_offset_mm"])
    )
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


def _motion_zone(layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """The LPS box that moves in a non-gated scan: the heart with its fat, and the aortic root."""
    low, high = layout.heart_bounds()
    return low - 5.0, high + 5.0


def _blur_heart_motion(volume, grid: Grid, layout: Layout, scan: dict) -> None:
    """Non-gated motion: blur the soft tissue along one in-plane direction over the heart's box, fading out
    over MOTION_FEATHER_MM round it."""
    low, high = _motion_zone(layout)
    reach = MOTION_FEATHER_MM + scan["motion_blur_mm"]
    crop = grid.crop(low - [reach, reach, 1e9], high + [reach, reach, 1e9])
    if crop is None:
        return
    dx, dy = scan["motion_direction_lps"]
    region = volume[crop]
    blurred = line_blur(region, (dy, dx), scan["motion_blur_mm"] / grid.pixel_mm)
    _, j, i = crop
    outside_x = np.maximum(np.maximum(low[0] - grid.x[i], grid.x[i] - high[0]), 0.0)
    outside_y = np.maximum(np.maximum(low[1] - grid.y[j], grid.y[j] - high[1]), 0.0)
    weight = np.clip(1.0 - np.hypot(outside_y[:, None], outside_x[None, :]) / MOTION_FEATHER_MM, 0.0, 1.0)
    blurred -= region
    blurred *= weight.astype(np.float32)
    region += blurred


def _response(grid: Grid, layout: Layout, scan: dict):
    """The in-plane response after the Gaussian PSF that objects get (see `draw_object`), or None."""
    enhance, motion = scan["edge_enhancement"], scan["motion_blur_mm"]
    if enhance <= 0 and motion <= 0:
        return None
    low, high = _motion_zone(layout)
    sigma_px = scan["edge_enhancement_mm"] / grid.pixel_mm
    dx, dy = scan["motion_direction_lps"]

    def apply(blurred, crop, obj):
        if motion > 0 and np.all(obj.center >= low) and np.all(obj.center <= high):
            blurred = line_blur(blurred, (dy, dx), motion / grid.pixel_mm)
        if enhance > 0:
            sharpen_in_plane(blurred, sigma_px, enhance)
        return blurred

    return 0.5 * motion + 3.0 * scan["edge_enhancement_mm"] * (enhance > 0), apply


def _draw_objects(volume, grid: Grid, tracker: Tracker, objects, scan: dict, rng, response) -> list[SyntheticLesion]:
    """Paint every calcified and metal object, with streaks for metal; keep those that reach the grid."""
    lesions = []
    for obj in objects:
        lesion_id = len(lesions) + 1
        owner = tracker.new_owner(obj.code, lesion_id)
        result = draw_object(volume, grid, tracker, obj, owner, scan["psf_sigma_mm"], scan["psf_sigma_z_mm"], response)
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
                kind=obj.kind,
            )
        )
        if obj.metal:
            strength = SMALL_METAL_STREAKS if obj.kind in ("wire", "clip") else 1.0
            add_streaks(volume, grid, crop, contribution, rng, strength)
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
    kinds = sorted({lesion.kind for lesion in lesions})
    return {
        **scan,
        "generator_version": GENERATOR_VERSION,
        "lesion_kinds": {kind: sum(1 for lesion in lesions if lesion.kind == kind) for kind in kinds},
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

"""Compute SWI on a real multi-echo GRE (magnitude + phase NIfTI) and show it, to check veins and phase wraps.

    python training/check_swi_on_real_gre.py /work/data/romeo_small --out runs/swi_romeo_small

FOLDER holds `Mag.nii` and `Phase.nii` (4D, one volume per echo), e.g. ROMEO.jl's `test/data/small/`. The phase
is scaled from its [min, max] (or --raw-phase-range) to [-pi, pi). Writes `swi_echo<N>.nrrd` for the chosen
echo and `montage.png` (per echo: magnitude, raw phase, homodyne phase, SWI, SWI minimum-intensity projection)
into --out, and prints per echo how dark the darkest voxels (veins) are against the median (tissue), on the
magnitude and on the SWI, the mean homodyne phase there (negative: right-handed data), and the share of
neighbour steps beyond pi (phase wraps) in the raw and in the homodyne phase.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib
import numpy as np
import SimpleITK as sitk

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "LesionDetect"))

from LesionDetectLib.detectors.microbleed.swi import homodyne_phase, phase_radians, swi  # noqa: E402

VEIN_PERCENTILE = 1.0  # the darkest 1 % of the voxels stand for veins
MIP_SLICES = 7


def echo_image(image_4d: sitk.Image, echo: int) -> sitk.Image:
    """One echo of a 4D image as a 3D image with its geometry."""
    size = list(image_4d.GetSize())
    return sitk.Extract(image_4d, [*size[:3], 0], [0, 0, 0, echo])


def darkest_over_median(volume: np.ndarray, darkest: np.ndarray) -> float:
    """Median of the darkest voxels over the median of all voxels: 1 = no contrast, 0 = black veins."""
    return float(np.median(volume[darkest]) / np.median(volume))


def wrap_share(phase: np.ndarray) -> float:
    """Share of neighbour steps (along k, j, i) larger than pi: wraps, or noise in voxels without signal."""
    return float(np.mean([np.mean(np.abs(np.diff(phase, axis=axis)) > np.pi) for axis in range(3)]))


def summary(magnitude: np.ndarray, raw: np.ndarray, filtered: np.ndarray, image: np.ndarray) -> dict:
    """Vein contrast on magnitude and SWI, the filtered phase in the darkest magnitude voxels, wraps before/after."""
    dark_in_magnitude = magnitude <= np.percentile(magnitude, VEIN_PERCENTILE)
    dark_in_swi = image <= np.percentile(image, VEIN_PERCENTILE)
    return {
        "magnitude darkest/median": darkest_over_median(magnitude, dark_in_magnitude),
        "SWI darkest/median": darkest_over_median(image, dark_in_swi),
        "phase in dark magnitude (rad)": float(filtered[dark_in_magnitude].mean()),
        "wrap steps raw": wrap_share(raw),
        "wrap steps homodyne": wrap_share(filtered),
    }


def minimum_projection(volume: np.ndarray, centre: int) -> np.ndarray:
    """Minimum over MIP_SLICES slices around `centre`, where veins show as connected dark lines."""
    start = max(0, centre - MIP_SLICES // 2)
    return volume[start : start + MIP_SLICES].min(axis=0)


def save_montage(rows: list[dict], centre: int, path: Path) -> None:
    """One row per echo: magnitude, raw phase, homodyne phase, SWI, SWI minIP at slice `centre`."""
    columns = ("magnitude", "raw phase", "homodyne phase", "SWI", f"SWI minIP ({MIP_SLICES} slices)")
    figure, axes = plt.subplots(len(rows), len(columns), figsize=(3 * len(columns), 3 * len(rows)), squeeze=False)
    for row_axes, row in zip(axes, rows):
        swi_limits = np.percentile(row["SWI"], (0.5, 99.5))
        pictures = (
            (row["magnitude"][centre], "gray", np.percentile(row["magnitude"], (0.5, 99.5))),
            (row["raw phase"][centre], "twilight", (-np.pi, np.pi)),
            (row["homodyne phase"][centre], "gray", (-1.0, 1.0)),
            (row["SWI"][centre], "gray", swi_limits),
            (minimum_projection(row["SWI"], centre), "gray", swi_limits),
        )
        for axis, title, (picture, colours, (low, high)) in zip(row_axes, columns, pictures):
            axis.imshow(picture, cmap=colours, vmin=low, vmax=high, interpolation="nearest")
            axis.set_title(f"echo {row['echo']}: {title}", fontsize=9)
            axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder with Mag.nii and Phase.nii (4D, echoes last)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (outside the repository's sources)")
    parser.add_argument("--echo", type=int, default=-1, help="echo written as NRRD (default: the last)")
    parser.add_argument("--raw-phase-range", type=float, nargs=2, help="raw phase values of -pi and pi")
    parser.add_argument("--left-handed", action="store_true", help="paramagnetic phase is positive in this data")
    args = parser.parse_args(argv)

    magnitude_4d = sitk.ReadImage(str(args.folder / "Mag.nii"), sitk.sitkFloat32)
    phase_4d = sitk.ReadImage(str(args.folder / "Phase.nii"), sitk.sitkFloat32)
    magnitudes, phases = sitk.GetArrayFromImage(magnitude_4d), sitk.GetArrayFromImage(phase_4d)
    raw_range = tuple(args.raw_phase_range or (phases.min(), phases.max()))
    spacing_ijk = magnitude_4d.GetSpacing()[:3]
    print(
        f"{args.folder}: {len(magnitudes)} echoes of {magnitudes.shape[1:]} voxels (k, j, i), "
        f"spacing {spacing_ijk} mm, raw phase {raw_range[0]:.6g}..{raw_range[1]:.6g} -> [-pi, pi)"
    )

    rows = []
    for echo, (magnitude, phase) in enumerate(zip(magnitudes, phases)):
        radians = phase_radians(phase, raw_range)
        image = swi(magnitude, phase, spacing_ijk, raw_phase_range=raw_range, left_handed=args.left_handed)
        filtered = homodyne_phase(magnitude, -radians if args.left_handed else radians, spacing_ijk)
        rows.append(
            {"echo": echo, "magnitude": magnitude, "raw phase": radians, "homodyne phase": filtered, "SWI": image}
        )
        numbers = ", ".join(
            f"{name} {value:.3g}" for name, value in summary(magnitude, radians, filtered, image).items()
        )
        print(f"echo {echo}: {numbers}")

    args.out.mkdir(parents=True, exist_ok=True)
    chosen = rows[args.echo]
    swi_image = sitk.GetImageFromArray(chosen["SWI"])
    swi_image.CopyInformation(echo_image(magnitude_4d, chosen["echo"]))
    nrrd_path = args.out / f"swi_echo{chosen['echo']}.nrrd"
    sitk.WriteImage(swi_image, str(nrrd_path), useCompression=True)
    montage_path = args.out / "montage.png"
    save_montage(rows, len(magnitudes[0]) // 2, montage_path)
    print(f"wrote {nrrd_path} and {montage_path}")


if __name__ == "__main__":
    main()

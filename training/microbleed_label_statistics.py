"""Calibration numbers for `synthetic_swi.py` from real microbleed labels (MicrobleedNet's CMB metadata table).

    python training/microbleed_label_statistics.py PATH/CMB_metadata_all_enriched_filt.csv

The table (jorgedelpozolerida/MicrobleedNet, data-misc/csv/; not part of this project, read from the path given)
describes 201 labelled microbleeds of 38 scans, no images: voxel count ("size"), equivalent-sphere radius
("radius" = (3·size/4π)^⅓, voxels), PyRadiomics shape features, the sequence (SWI or T2*-GRE) and, for the CRB
scans, the location. Its shape features are in voxels (shape_VoxelVolume equals the voxel count); we read them on
a 0.5 mm isotropic grid (`--voxel-mm`), the one on which the microbleeds its raters flagged "<5mm" have equivalent
diameters of 2.5–6.3 mm (median 3.3); on a 1 mm grid they would be 4.9–12.5 mm, against the flag.

Prints JSON: quantiles of the equivalent diameter (mm), elongation and flatness (minor/major and least/major axis)
of the rows of one sequence (`--sequence`, SWI by default), the location counts and pooled lobar fraction of all
located rows, a beta-binomial fit of the per-scan lobar probability and a negative-binomial fit of (count − 1) per
scan, counting every scan in the table (all hold at least one microbleed).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from scipy import optimize, stats

QUANTILE_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
REGIONS = {  # the table's location → the generator's region
    "Cortex / grey-white junction": "cortex / grey-white junction",
    "Subcortical white matter": "subcortical white matter",
    "Basal ganglia grey matter": "basal ganglia",
    "Thalamus": "thalamus",
    "Brainstem": "brainstem",
    "Cerebellum": "cerebellum",
}
LOBAR_REGIONS = ("cortex / grey-white junction", "subcortical white matter")


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def quantiles(values) -> dict[str, float]:
    """Minimum, QUANTILE_LEVELS and maximum of `values`, keyed by level."""
    levels = (0.0, *QUANTILE_LEVELS, 1.0)
    return {f"{level:g}": round(float(np.quantile(values, level)), 3) for level in levels}


def fit_lobar_beta(lobar_per_scan: list[tuple[int, int]]) -> tuple[float, float]:
    """Maximum-likelihood beta-binomial (a, b) of (lobar, located) microbleed counts per scan."""
    lobar, located = (np.array(column) for column in zip(*lobar_per_scan))

    def negative_log_likelihood(log_ab):
        a, b = np.exp(log_ab)
        return -stats.betabinom.logpmf(lobar, located, a, b).sum()

    fitted = optimize.minimize(negative_log_likelihood, [0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-6})
    a, b = np.exp(fitted.x)
    return float(a), float(b)


def fit_count_negative_binomial(counts: list[int]) -> tuple[float, float]:
    """Maximum-likelihood negative binomial (n, p) of (count − 1) per scan."""
    extra = np.asarray(counts) - 1

    def negative_log_likelihood(parameters):
        n, p = np.exp(parameters[0]), 1.0 / (1.0 + np.exp(-parameters[1]))
        return -stats.nbinom.logpmf(extra, n, p).sum()

    fitted = optimize.minimize(negative_log_likelihood, [0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-6})
    return float(np.exp(fitted.x[0])), float(1.0 / (1.0 + np.exp(-fitted.x[1])))


def label_statistics(rows: list[dict], voxel_mm: float = 0.5, sequence: str = "SWI") -> dict:
    """The calibration numbers (see the module docstring) of the table's rows."""
    of_sequence = [row for row in rows if row["seq_type"] == sequence]
    diameters_mm = [2.0 * float(row["radius"]) * voxel_mm for row in of_sequence]
    located = [row for row in rows if row["Location"] in REGIONS]
    region_counts = Counter(REGIONS[row["Location"]] for row in located)
    per_scan = defaultdict(list)
    for row in rows:
        per_scan[row["seriesUID"]].append(row)
    lobar_per_scan = []
    for scan_rows in per_scan.values():
        regions = [REGIONS[row["Location"]] for row in scan_rows if row["Location"] in REGIONS]
        if regions:
            lobar_per_scan.append((sum(region in LOBAR_REGIONS for region in regions), len(regions)))
    lobar_count = sum(region_counts[region] for region in LOBAR_REGIONS)
    counts = [len(scan_rows) for scan_rows in per_scan.values()]
    return {
        "microbleeds": len(rows),
        "scans": len(per_scan),
        "sequence": sequence,
        "sequence_microbleeds": len(of_sequence),
        "voxel_mm": voxel_mm,
        "diameter_mm_quantiles": quantiles(diameters_mm),
        "elongation_quantiles": quantiles([float(row["shape_Elongation"]) for row in of_sequence]),
        "flatness_quantiles": quantiles([float(row["shape_Flatness"]) for row in of_sequence]),
        "region_counts": dict(region_counts),
        "lobar_fraction": round(lobar_count / max(len(located), 1), 3),
        "lobar_beta_per_scan": [round(v, 3) for v in fit_lobar_beta(lobar_per_scan)],
        "located_scans": len(lobar_per_scan),
        "count_minus_one_negative_binomial": [round(v, 4) for v in fit_count_negative_binomial(counts)],
        "count_per_scan": {"median": float(np.median(counts)), "mean": round(float(np.mean(counts)), 2)},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="CMB_metadata_all_enriched_filt.csv")
    parser.add_argument("--voxel-mm", type=float, default=0.5, help="isotropic voxel size of the table's grids")
    parser.add_argument("--sequence", default="SWI", help="the seq_type whose sizes and shapes to describe")
    args = parser.parse_args(argv)
    print(json.dumps(label_statistics(read_rows(args.csv), args.voxel_mm, args.sequence), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

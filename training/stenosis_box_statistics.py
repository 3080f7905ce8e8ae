"""Stenosis box sizes and positions: the real Danilov annotations against the boxes of generated runs.

    python training/stenosis_box_statistics.py --labels path/to/DANILOV/labels.csv --clips 300

The CSV (atabekis/stenosis, data/DANILOV/labels.csv: filename, width, height, class, xmin, ymin, xmax, ymax) is read
from the path given; it is not part of LesionDetect. Rows of files 14_002_* are left out (those frames are reserved
for evaluation). Prints quantiles of box width, height, size (√(width × height)) and centre as fractions of the
image side, and the median spread of a box centre over the frames of a run, real against synthetic. The synthetic
side draws ground truth only (`make_angiography_clip(render=False)`), so hundreds of runs take seconds.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from synthetic_angiography import QUANTILE_LEVELS, make_angiography_clip

RESERVED_PREFIX = "14_002_"
MIN_RUN_BOXES = 5  # runs with fewer boxes give no spread
QUANTITIES = ("width", "height", "size", "centre_x", "centre_y")


def read_real_boxes(path: Path) -> dict[str, np.ndarray]:
    """Box width, height, centre (fractions of the image side) and run name of every row but the reserved ones."""
    with open(path, newline="") as stream:
        rows = [row for row in csv.DictReader(stream) if not row["filename"].startswith(RESERVED_PREFIX)]
    width, height = (np.array([float(row[key]) for row in rows]) for key in ("width", "height"))
    x0, y0, x1, y1 = (np.array([float(row[key]) for row in rows]) for key in ("xmin", "ymin", "xmax", "ymax"))
    runs = np.array([row["filename"].rsplit("_", 1)[0] for row in rows])
    return _boxes(x0 / width, y0 / height, x1 / width, y1 / height, runs)


def synthetic_boxes(first_seed: int, clips: int, matrix: int) -> dict[str, np.ndarray]:
    """The same for every box of `clips` generated runs; a run of boxes is one stenosis of one clip."""
    corners, runs = [], []
    for seed in range(first_seed, first_seed + clips):
        clip = make_angiography_clip(seed, matrix=matrix, render=False)
        for frame_boxes in clip.boxes_px:
            for box in frame_boxes:
                corners.append(np.asarray(box["box_px"]) / matrix)
                runs.append(f"{seed}_{box['stenosis']}")
    corners = np.array(corners).reshape(-1, 4)
    return _boxes(*corners.T, np.array(runs))


def _boxes(x0, y0, x1, y1, runs) -> dict[str, np.ndarray]:
    width, height = x1 - x0, y1 - y0
    return {
        "width": width,
        "height": height,
        "size": np.sqrt(width * height),
        "centre_x": (x0 + x1) / 2,
        "centre_y": (y0 + y1) / 2,
        "run": runs,
    }


def centre_spread_in_runs(boxes: dict[str, np.ndarray]) -> float:
    """Median over runs of √(sd x² + sd y²) of the box centre across the run's frames."""
    by_run = defaultdict(list)
    for x, y, run in zip(boxes["centre_x"], boxes["centre_y"], boxes["run"]):
        by_run[run].append((x, y))
    spreads = [np.hypot(*np.std(c, axis=0)) for c in by_run.values() if len(c) >= MIN_RUN_BOXES]
    return float(np.median(spreads)) if spreads else float("nan")


def comparison_table(real: dict[str, np.ndarray], synthetic: dict[str, np.ndarray]) -> str:
    """Markdown rows: quantity, quantile level, real, synthetic."""
    lines = ["| quantity | quantile | real | synthetic |", "|---|---|---|---|"]
    for quantity in QUANTITIES:
        real_q = np.quantile(real[quantity], QUANTILE_LEVELS)
        synthetic_q = np.quantile(synthetic[quantity], QUANTILE_LEVELS)
        for level, r, s in zip(QUANTILE_LEVELS, real_q, synthetic_q):
            lines.append(f"| {quantity} | {level:g} | {r:.4f} | {s:.4f} |")
    spreads = centre_spread_in_runs(real), centre_spread_in_runs(synthetic)
    lines.append(f"| centre spread in a run | median | {spreads[0]:.4f} | {spreads[1]:.4f} |")
    counts = [f"{len(boxes['run'])} ({len(set(boxes['run']))})" for boxes in (real, synthetic)]
    lines.append(f"| boxes (runs) | | {counts[0]} | {counts[1]} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, required=True, help="the Danilov set's labels.csv")
    parser.add_argument("--clips", type=int, default=300, help="generated runs to compare with")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--matrix", type=int, default=512)
    args = parser.parse_args(argv)
    real = read_real_boxes(args.labels)
    synthetic = synthetic_boxes(args.first_seed, args.clips, args.matrix)
    print("Box sizes and centres as fractions of the image side")
    print(comparison_table(real, synthetic))
    return 0


if __name__ == "__main__":
    sys.exit(main())

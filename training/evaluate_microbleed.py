"""Evaluate a microbleed model on whole synthetic SWI scans through the detector's own 3D pipeline.

    python training/evaluate_microbleed.py --seeds 9000 9040 --out runs/mb-eval [--manifest runs/mb/microbleed.json]
        [--workers 2]

Per scan: generate (training/synthetic_swi.py), run `detect.find_candidates` (preprocessing, SSD on every slice,
3D merge), hit true microbleeds by centre distance (`microbleed_evaluation.py`). Prints and writes (report.json,
froc.png, precision_recall.png): AP, precision at 90 % recall, false positives per microbleed and per scan at the
model's shipped operating point and at 90 % sensitivity on these scans, the FROC curve, false positives that lie
on veins or calcifications, and the time per scan. Held-out seeds must be ones no model trained or validated on.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "LesionDetect"))

from microbleed_evaluation import at_sensitivity, average_precision, froc, operating_points, score_scan  # noqa: E402
from synthetic_swi import make_swi_case  # noqa: E402

from LesionDetectLib.detectors.microbleed.detect import find_candidates  # noqa: E402
from LesionDetectLib.detectors.microbleed.model import DEFAULT_MANIFEST, load_microbleed_model  # noqa: E402
from LesionDetectLib.detectors.microbleed.options import MicrobleedOptions  # noqa: E402

MIMIC_REACH_MM = 1.5  # a false positive this close to a vein or calcification voxel counts as on it


def near_mask(mask_kji: np.ndarray, centre_kji, spacing_ijk, reach_mm: float = MIMIC_REACH_MM) -> bool:
    """Whether any voxel of the mask lies within reach_mm of a point (k, j, i)."""
    spacing_kji = np.asarray(spacing_ijk, dtype=float)[::-1]
    reach = np.ceil(reach_mm / spacing_kji).astype(int)
    centre = np.round(centre_kji).astype(int)
    low, high = np.maximum(centre - reach, 0), np.minimum(centre + reach + 1, mask_kji.shape)
    window = mask_kji[tuple(slice(a, b) for a, b in zip(low, high))]
    if not window.any():
        return False
    offsets = (np.argwhere(window) + low - centre) * spacing_kji
    return bool((np.linalg.norm(offsets, axis=1) <= reach_mm).any())


def scan_scores(model, seeds, options: MicrobleedOptions | None = None) -> list[tuple]:
    """Per seed: (ScanScore, a record of the scan: counts, false positives on mimics, seconds)."""
    options = options or MicrobleedOptions()
    results = []
    for seed in seeds:
        case = make_swi_case(int(seed))
        started = time.perf_counter()
        found = find_candidates(case.volume, model, options)
        seconds = time.perf_counter() - started
        centres_kji = [np.asarray(lesion.box_ijk, dtype=float).mean(axis=0)[::-1] for lesion in found.lesions]
        spacing = case.volume.spacing
        on_vein = [near_mask(case.masks["veins"], c, spacing) for c in centres_kji]
        on_mimic = [near_mask(case.masks["mimics"] > 0, c, spacing) for c in centres_kji]
        scan = score_scan(
            [lesion.center_ras for lesion in found.lesions],
            [lesion.score for lesion in found.lesions],
            [m["center_ras_mm"] for m in case.microbleeds],
            [m["diameter_mm"] for m in case.microbleeds],
            on_vein,
        )
        mimic_scores = [lesion.score for lesion, near in zip(found.lesions, on_mimic) if near]
        results.append(
            (
                scan,
                {
                    "seed": int(seed),
                    "microbleeds": len(case.microbleeds),
                    "seconds": round(seconds, 2),
                    "mimic": mimic_scores,
                },
            )
        )
    return results


def scan_of_manifest(manifest: Path, seed: int) -> tuple:
    """`scan_scores` of one seed with the model a manifest names, on one thread (a worker's job)."""
    torch.set_num_threads(1)
    return scan_scores(load_microbleed_model(manifest), [seed])[0]


def scan_scores_in_workers(manifest: Path, seeds, workers: int) -> list[tuple]:
    """`scan_scores` of the seeds split over `workers` spawned processes, in seed order."""
    seeds = [int(seed) for seed in seeds]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(scan_of_manifest, [manifest] * len(seeds), seeds))


def plots(scans, out: Path) -> None:
    """froc.png (sensitivity against false positives per scan) and precision_recall.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fps, sensitivity = froc(scans)
    figure, axes = plt.subplots(figsize=(5, 4))
    axes.plot(fps, sensitivity)
    axes.set(xscale="log", xlabel="false positives per scan", ylabel="sensitivity", title="FROC, synthetic held-out")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(out / "froc.png", dpi=120)
    points = operating_points(scans, np.round(np.arange(0.05, 1.0001, 0.01), 2))
    figure, axes = plt.subplots(figsize=(5, 4))
    axes.plot([p["sensitivity"] for p in points], [p["precision"] for p in points])
    axes.set(xlabel="recall (sensitivity)", ylabel="precision", ylim=(0, 1.02), title="Precision–recall")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(out / "precision_recall.png", dpi=120)


def figures(results, shipped_threshold: float | None) -> dict:
    """The report's figures from per-scan results."""
    scans = [scan for scan, _ in results]
    targets = np.concatenate([scan.target_scores for scan in scans])
    false_positives = np.concatenate([scan.false_positive_scores for scan in scans])
    report = {
        "scans": len(scans),
        "microbleeds": int(len(targets)),
        "ap": round(average_precision(scans), 4),
        "at_90_sensitivity": at_sensitivity(operating_points(scans), 0.9),
        "seconds_per_scan": round(float(np.mean([record["seconds"] for _, record in results])), 2),
    }
    if shipped_threshold is not None:
        fp = false_positives >= shipped_threshold
        veins = np.concatenate([scan.vein_scores for scan in scans])
        mimics = [s for _, record in results for s in record["mimic"]]
        report["at_shipped_operating_point"] = {
            "score": shipped_threshold,
            "sensitivity": round(float(np.mean(targets >= shipped_threshold)), 4) if len(targets) else None,
            "fp_per_cmb": round(float(fp.sum() / max(len(targets), 1)), 4),
            "fp_per_scan": round(float(fp.sum() / len(scans)), 4),
            "fp_on_veins": int(np.sum(veins >= shipped_threshold)),
            "fp_on_calcification_or_air_bone": int(np.sum(np.asarray(mimics) >= shipped_threshold)),
        }
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs=2, required=True, metavar=("FIRST", "END"))
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sensitivity", type=float, default=0.9, help="the shipped operating point to report at")
    parser.add_argument("--workers", type=int, default=1, help="processes, one scan and one thread each")
    args = parser.parse_args(argv)
    from LesionDetectLib.detectors.microbleed.model import score_threshold

    model = load_microbleed_model(args.manifest)
    if args.workers > 1:
        results = scan_scores_in_workers(args.manifest, range(*args.seeds), args.workers)
    else:
        results = scan_scores(model, range(*args.seeds))
    report = figures(results, score_threshold(model.operating_points, args.sensitivity))
    threads = 1 if args.workers > 1 else torch.get_num_threads()
    report |= {"model": model.version, "seeds": list(args.seeds), "threads_per_scan": threads}
    report["per_scan"] = [record for _, record in results]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    plots([scan for scan, _ in results], args.out)
    print(json.dumps({key: value for key, value in report.items() if key != "per_scan"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

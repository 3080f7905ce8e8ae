"""Evaluate the calcium model on held-out labelled scans: DET curve, lesion-level and per-scan Agatston agreement.

    python training/evaluate_calcium.py --first-seed 9000 --count 30 --out runs/eval   # synthetic, unseen seeds
    python training/evaluate_calcium.py --layout labelmap --root DATA/test --out runs/eval
    python training/evaluate_calcium.py --nongated DATA/deidentified_nongated --method classical --out runs/real

With ``--nongated`` it scores real scans that have reference Agatston scores but no lesion labels (COCA
non-gated): per-patient total, category and per-artery agreement, Spearman; see `evaluate_calcium_real`.

- DET (the paper's curve): coronary detection rate against false positives per image, where an image
  is an axial slice inside the heart region's slice range; a box detects a 2D coronary object when it
  covers one of its pixels (MONAI's FROC helpers make the curve); the rate at FPPI = 1 is reported.
- Lesions: 3D coronary lesions (26-connected coronary-labelled voxels that score) found by a reported
  lesion's box; false-positive lesions per scan and their Agatston points, split by what they hit.
- Scans: total Agatston against the label map's, category agreement (0, 1–10, 11–100, 101–400, > 400).
The classical method runs on the same scans, over the whole field of view and inside the found heart region.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "LesionDetect"))

import evaluate_calcium_real  # noqa: E402
from calcium_datasets import iter_dataset  # noqa: E402
from calcium_training_data import slice_objects  # noqa: E402
from synthetic_cardiac_ct import make_case  # noqa: E402

from LesionDetectLib.detectors.calcium.agatston import agatston_category, score_lesion  # noqa: E402
from LesionDetectLib.detectors.calcium.candidate_windows import EIGHT_CONNECTED, MIN_PIECE_MM2  # noqa: E402
from LesionDetectLib.detectors.calcium.classical import CalciumParams, detect_calcium, voxel_volume_mm3  # noqa: E402
from LesionDetectLib.detectors.calcium.deep import findings_from_stages, run_stages  # noqa: E402
from LesionDetectLib.detectors.calcium.labels import CORONARY_CODES, OTHER_CLASS, STRUCTURES  # noqa: E402
from LesionDetectLib.detectors.calcium.model import DEFAULT_MANIFEST, load_calcium_model  # noqa: E402

NO_PROGRESS = lambda stage, fraction, message: None  # noqa: E731


def reference_lesions(volume, labels) -> tuple[list[np.ndarray], float]:
    """Coronary reference lesions as (k, j, i) index arrays, and the reference total Agatston."""
    import cc3d

    coronary = np.isin(labels, list(CORONARY_CODES))
    components = cc3d.connected_components(coronary, connectivity=26)
    lesions, total = [], 0.0
    spacing = volume.spacing
    for label, extent in enumerate(_find_objects(components), start=1):
        mask = components[extent] == label
        scores = score_lesion(
            volume.array[extent], mask, float(spacing[0] * spacing[1]), voxel_volume_mm3(volume), float(spacing[2]), 1.0
        )
        if scores is None:
            continue
        total += scores.agatston
        index = np.nonzero(mask)
        lesions.append(np.stack([index[d] + extent[d].start for d in range(3)], axis=1))
    return lesions, total


def _find_objects(components):
    from scipy import ndimage

    return [extent for extent in ndimage.find_objects(components) if extent is not None]


def lesion_matches(findings, reference: list[np.ndarray], labels) -> dict:
    """Reference lesions found by a reported lesion's box; artery agreement; unmatched lesions by what they hit."""
    boxes = [lesion.box_ijk for lesion in findings.lesions]
    found = sum(any(_in_box(voxels, box).any() for box in boxes) for voxels in reference)
    false_positives = {"count": 0, "agatston": 0.0, "by_structure": {}}
    arteries = {"compared": 0, "agree": 0}
    for lesion in findings.lesions:
        lo, hi = lesion.box_ijk
        hit = labels[lo[2] : hi[2] + 1, lo[1] : hi[1] + 1, lo[0] : hi[0] + 1]
        coronary = hit[np.isin(hit, list(CORONARY_CODES))]
        if coronary.size:
            if "artery" in lesion.measurements:
                arteries["compared"] += 1
                dominant = STRUCTURES[int(np.bincount(coronary).argmax())]
                arteries["agree"] += int(lesion.measurements["artery"] == dominant)
            continue
        codes = np.unique(hit[hit > 0])
        structure = STRUCTURES[int(codes[0])] if len(codes) else "noise"
        false_positives["count"] += 1
        false_positives["agatston"] += lesion.measurements["agatston"]
        by = false_positives["by_structure"]
        by[structure] = by.get(structure, 0.0) + lesion.measurements["agatston"]
    return {"reference": len(reference), "found": int(found), "false_positives": false_positives, "arteries": arteries}


def _in_box(voxels_kji: np.ndarray, box_ijk: np.ndarray) -> np.ndarray:
    lo, hi = box_ijk
    return np.all((voxels_kji[:, ::-1] >= lo) & (voxels_kji[:, ::-1] <= hi), axis=1)


def slice_scores(stages, labels) -> tuple[list[float], list[float], int, int]:
    """(TP scores, FP scores, coronary 2D objects, images) of the coronary boxes on the region's slices."""
    region_slices = np.flatnonzero(stages.region.any(axis=(1, 2)))
    by_slice = {}
    for detection in stages.detections:
        if 1 <= detection.label < OTHER_CLASS:
            by_slice.setdefault(detection.k, []).append(detection)
    tp, fp, targets = [], [], 0
    for k in region_slices:
        objects = [(box, code) for box, code in slice_objects(labels, int(k)) if code in CORONARY_CODES]
        pixels = [
            np.argwhere(np.isin(labels[k], [code]) & _box_mask(labels.shape[1:], box)) + 0.5 for box, code in objects
        ]
        targets += len(objects)
        matched = set()
        for detection in sorted(by_slice.get(int(k), []), key=lambda d: -d.score):
            j0, i0, j1, i1 = detection.box_ji
            hits = [
                n
                for n, p in enumerate(pixels)
                if n not in matched and np.any((p[:, 0] >= j0) & (p[:, 0] <= j1) & (p[:, 1] >= i0) & (p[:, 1] <= i1))
            ]
            if hits:
                matched.add(hits[0])
                tp.append(detection.score)
            else:
                fp.append(detection.score)
    return tp, fp, targets, len(region_slices)


def _box_mask(shape, box) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    j0, i0, j1, i1 = (int(v) for v in box)
    mask[j0:j1, i0:i1] = True
    return mask


def window_coverage(stages, labels, pixel_mm2: float) -> dict:
    """Coronary 2D objects inside a candidate window (all, and those of ≥ 1 mm² that Agatston scores), windows
    per slice, share of slice pixels looked at. An object counts as inside when its box centre is."""
    from scipy import ndimage

    covered = total = covered_scorable = scorable = 0
    looked = 0.0
    windows_by_slice = {}
    for window in stages.windows:
        windows_by_slice.setdefault(window.k, []).append(window.box_ji())
        looked += window.side_px**2
    for k in np.flatnonzero(np.isin(labels, list(CORONARY_CODES)).any(axis=(1, 2))):
        for code in set(np.unique(labels[k]).tolist()) & CORONARY_CODES:
            pieces, _ = ndimage.label(labels[k] == code, structure=EIGHT_CONNECTED)
            for number, extent in enumerate(ndimage.find_objects(pieces), start=1):
                rows, cols = extent
                centre = ((rows.start + rows.stop) / 2, (cols.start + cols.stop) / 2)
                inside = any(
                    w[0] <= centre[0] <= w[2] and w[1] <= centre[1] <= w[3] for w in windows_by_slice.get(int(k), [])
                )
                big = bool(np.count_nonzero(pieces[extent] == number) * pixel_mm2 >= MIN_PIECE_MM2)
                total, covered = total + 1, covered + int(inside)
                scorable, covered_scorable = scorable + int(big), covered_scorable + int(inside and big)
    slices = labels.shape[0]
    return {
        "coronary_objects": total,
        "covered": covered,
        "scorable_objects": scorable,
        "covered_scorable": covered_scorable,
        "windows_per_slice": len(stages.windows) / slices,
        "looked_fraction_of_pixels": looked / (slices * labels.shape[1] * labels.shape[2]),
    }


def evaluate(cases, model, out: Path) -> dict:
    """Run both methods on every (name, volume, labels) case; write metrics.json and the plots."""
    per_scan, tp_all, fp_all = [], [], []
    targets = images = 0
    for name, volume, labels in cases:
        started = time.perf_counter()
        stages = run_stages(volume, model, CalciumParams(), "cpu", NO_PROGRESS)
        deep = findings_from_stages(volume, model, CalciumParams(), stages, "cpu", NO_PROGRESS, started)
        deep_seconds = time.perf_counter() - started
        started = time.perf_counter()
        classical = detect_calcium(volume, CalciumParams(surfaces=False))
        classical_seconds = time.perf_counter() - started
        classical_region = detect_calcium(volume, CalciumParams(region=stages.region, surfaces=False))
        reference, reference_total = reference_lesions(volume, labels)
        tp, fp, n_targets, n_images = slice_scores(stages, labels)
        tp_all += tp
        fp_all += fp
        targets += n_targets
        images += n_images
        per_scan.append(
            {
                "case": name,
                "slices": int(volume.array.shape[0]),
                "reference_agatston": reference_total,
                "reference_category": agatston_category(reference_total),
                "candidates": {
                    **window_coverage(stages, labels, float(volume.spacing[0] * volume.spacing[1])),
                    "acf_would_keep": stages.acf_kept,
                    "windows": len(stages.windows),
                },
                "heart_region_found": bool(stages.heart.found),
                **{
                    method: {
                        "agatston": findings.summary["agatston_total"],
                        "category": findings.summary["category"],
                        "lesions": lesion_matches(findings, reference, labels),
                    }
                    for method, findings in (
                        ("deep", deep),
                        ("classical", classical),
                        ("classical_in_heart_region", classical_region),
                    )
                },
                "seconds": {"deep": deep_seconds, "classical": classical_seconds, **stages.timings},
            }
        )
        print(
            json.dumps({"case": name, "reference": reference_total, "deep": deep.summary["agatston_total"]}), flush=True
        )
    metrics = summarise(per_scan, tp_all, fp_all, targets, images)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({"summary": metrics, "scans": per_scan}, indent=1) + "\n")
    plot_det(metrics["det_curve"], out / "det_curve.png")
    plot_agatston(per_scan, out / "agatston_agreement.png")
    return metrics


def summarise(per_scan, tp, fp, targets: int, images: int) -> dict:
    from monai.metrics import compute_froc_curve_data

    fppi, rate = compute_froc_curve_data(np.array(fp), np.array(tp), targets, images)
    at_one = float(np.interp(1.0, fppi[::-1], rate[::-1])) if len(fppi) else 0.0
    summary = {"scans": len(per_scan), "images": images, "coronary_objects": targets, "det_rate_at_fppi_1": at_one}
    summary["det_curve"] = {"fppi": fppi.tolist(), "detection_rate": rate.tolist()}
    for method in ("deep", "classical", "classical_in_heart_region"):
        found = sum(s[method]["lesions"]["found"] for s in per_scan)
        reference = sum(s[method]["lesions"]["reference"] for s in per_scan)
        summary[method] = {
            "lesion_sensitivity": found / max(reference, 1),
            "false_positive_lesions_per_scan": float(
                np.mean([s[method]["lesions"]["false_positives"]["count"] for s in per_scan])
            ),
            "false_positive_agatston_per_scan": float(
                np.mean([s[method]["lesions"]["false_positives"]["agatston"] for s in per_scan])
            ),
            "category_agreement": float(np.mean([s[method]["category"] == s["reference_category"] for s in per_scan])),
            "agatston_mean_abs_difference": float(
                np.mean([abs(s[method]["agatston"] - s["reference_agatston"]) for s in per_scan])
            ),
        }
    compared = sum(s["deep"]["lesions"]["arteries"]["compared"] for s in per_scan)
    summary["deep"]["artery_agreement"] = sum(s["deep"]["lesions"]["arteries"]["agree"] for s in per_scan) / max(
        compared, 1
    )
    windows = [s["candidates"] for s in per_scan]
    summary["candidates"] = {
        "recall_2d": sum(a["covered"] for a in windows) / max(sum(a["coronary_objects"] for a in windows), 1),
        "recall_2d_scorable": sum(a["covered_scorable"] for a in windows)
        / max(sum(a["scorable_objects"] for a in windows), 1),
        "windows_per_scan": float(np.mean([a["windows"] for a in windows])),
        "windows_per_slice": float(np.mean([a["windows_per_slice"] for a in windows])),
        "looked_fraction_of_pixels": float(np.mean([a["looked_fraction_of_pixels"] for a in windows])),
        "acf_would_keep_fraction": sum(a["acf_would_keep"] for a in windows)
        / max(sum(a["windows"] for a in windows), 1),
    }
    return summary


def plot_det(curve: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 4), dpi=120)
    axes.plot(curve["fppi"], curve["detection_rate"], color="tab:red")
    axes.axvline(1.0, color="grey", linestyle=":")
    axes.set_xscale("log")
    axes.set_xlabel("false positives per image (axial slice)")
    axes.set_ylabel("coronary calcium detection rate")
    axes.set_ylim(0, 1.02)
    axes.set_title("Calcium SSD on held-out synthetic scans")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def plot_agatston(per_scan, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 4), dpi=120)
    reference = np.array([s["reference_agatston"] for s in per_scan]) + 1
    for method, colour in (("deep", "tab:red"), ("classical_in_heart_region", "tab:blue")):
        axes.scatter(
            reference, np.array([s[method]["agatston"] for s in per_scan]) + 1, s=14, color=colour, label=method
        )
    limit = max(axes.get_xlim()[1], axes.get_ylim()[1])
    axes.plot([1, limit], [1, limit], color="grey", linestyle=":")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("reference Agatston + 1")
    axes.set_ylabel("measured Agatston + 1")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MANIFEST, help="model manifest (calcium_deep.json)")
    parser.add_argument("--layout", default="synthetic", help="synthetic (made here from seeds) | coca | labelmap")
    parser.add_argument("--root", type=Path, help="dataset folder for real layouts")
    parser.add_argument("--first-seed", type=int, default=9000)
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--matrix", type=int, default=512)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--nongated", type=Path, help="COCA deidentified_nongated folder: evaluate on it by reference scores"
    )
    evaluate_calcium_real.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.nongated is not None:
        return evaluate_calcium_real.run_from_arguments(args, parser)
    model = load_calcium_model(args.model)
    if args.layout == "synthetic":
        cases = (
            (f"seed {seed}", case.volume, case.labels)
            for seed in range(args.first_seed, args.first_seed + args.count)
            for case in [make_case(seed, matrix=args.matrix)]
        )
    else:
        cases = ((c.case_id, c.volume, c.labels) for c in iter_dataset(args.root, args.layout))
    metrics = evaluate(cases, model, args.out)
    print(json.dumps({k: v for k, v in metrics.items() if k != "det_curve"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

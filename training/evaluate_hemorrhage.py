"""Evaluate a hemorrhage model on held-out synthetic scans and on the real PNG set's held-out split.

    python training/evaluate_hemorrhage.py --out runs/eval-hemorrhage                 # the shipped model
    python training/evaluate_hemorrhage.py --manifest runs/x/model/hemorrhage.json --seeds 9000 9040 \
        --real /work/data/head_ct --out runs/eval-x

Synthetic (generator seeds never trained or validated on): the RSNA weighted log loss of the slices;
per label the AUC, sensitivity and specificity at the detector's threshold, for slices and scans; the
per-slice CNN alone beside the BiLSTM (the paper's comparison); whether the heatmap's hottest voxel lies in
true blood, for every true-positive scan, at each Grad-CAM layer asked for. Real PNGs (held-out split of the
project's own ids; training/hemorrhage_datasets.py): slice mode's AUC for "any" with a bootstrap 95 %
interval, sensitivity and specificity. Writes OUT/figures.json and ROC curves as PNG.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "LesionDetect"))

from hemorrhage_datasets import read_png_set  # noqa: E402
from synthetic_head_ct import make_head_case  # noqa: E402

from LesionDetectLib.detectors.hemorrhage.classify import classify_slices  # noqa: E402
from LesionDetectLib.detectors.hemorrhage.detect import detect_key_image, scan_heatmap  # noqa: E402
from LesionDetectLib.detectors.hemorrhage.labels import ANY, LABELS, LOSS_WEIGHTS  # noqa: E402
from LesionDetectLib.detectors.hemorrhage.model import DEFAULT_MANIFEST, load_hemorrhage_model  # noqa: E402
from LesionDetectLib.detectors.hemorrhage.options import HemorrhageOptions  # noqa: E402
from LesionDetectLib.detectors.hemorrhage.preprocess import head_frame, network_input  # noqa: E402
from LesionDetectLib.io.image_sequence import ImageSequence  # noqa: E402

BOOTSTRAP_SAMPLES = 2000


def evaluate_synthetic(model, seeds, matrix: int, threshold: float, layers: list[str]) -> tuple[dict, dict]:
    """Figures and ROC inputs over the generator's scans of `seeds`; heatmap peaks per Grad-CAM layer, with and
    without the blood-density weighting."""
    layers = layers or [f"cnn.{model.network.cnn.cam_layer}"]
    variants = [(layer, gate) for layer in layers for gate in (True, False)]
    truth, final, cnn, scan_truth, scan_final = [], [], [], [], []
    hits = {variant: [] for variant in variants}
    for seed in seeds:
        case = make_head_case(seed, matrix=matrix)
        hu = case.volume.array  # the generator writes the trained layout: no reorientation
        frame = head_frame(hu, float(case.volume.spacing[0]))
        inputs = network_input(hu, frame, model.input_size)
        probabilities = classify_slices(model.network, inputs)
        truth.append(case.slice_labels)
        final.append(probabilities.final)
        cnn.append(probabilities.cnn)
        scan_truth.append(case.slice_labels.max(axis=0))
        scan_final.append(probabilities.scan)
        positive = [label for label, p in zip(LABELS, probabilities.scan) if p >= threshold]
        if case.slice_labels[:, ANY].any() and LABELS[ANY] in positive:
            blood = np.any(list(case.masks.values()), axis=0)
            for layer, gate in variants:
                heat, _ = scan_heatmap(
                    model.network,
                    inputs,
                    probabilities.final,
                    positive,
                    threshold,
                    frame,
                    hu,
                    target_layer=layer,
                    density_gate=gate,
                )
                hits[layer, gate].append(bool(blood[np.unravel_index(heat.argmax(), heat.shape)]))
    truth, final, cnn = np.concatenate(truth), np.concatenate(final), np.concatenate(cnn)
    scan_truth, scan_final = np.array(scan_truth), np.array(scan_final)
    figures = {
        "scans": len(seeds),
        "slices": len(truth),
        "seeds": [int(seeds[0]), int(seeds[-1]) + 1],
        "weighted_log_loss_slices": {"bilstm": log_loss(truth, final), "cnn": log_loss(truth, cnn)},
        "slice": {"bilstm": label_figures(truth, final, threshold), "cnn": label_figures(truth, cnn, threshold)},
        "scan": label_figures(scan_truth, scan_final, threshold),
        "heatmap_peak_in_blood": {
            f"{layer}{' × blood density' if gate else ''}": {
                "scans": len(found),
                "rate": float(np.mean(found)) if found else None,
            }
            for (layer, gate), found in hits.items()
        },
    }
    curves = {
        "slice": {label: (truth[:, n], final[:, n]) for n, label in enumerate(LABELS)},
        "scan": {label: (scan_truth[:, n], scan_final[:, n]) for n, label in enumerate(LABELS)},
        "slice any: CNN vs BiLSTM": {"CNN": (truth[:, ANY], cnn[:, ANY]), "BiLSTM": (truth[:, ANY], final[:, ANY])},
    }
    return figures, curves


def evaluate_real(model, root: Path, threshold: float, seed: int) -> tuple[dict, dict]:
    """Slice mode on the real held-out PNGs: "any" AUC with a bootstrap 95 % interval."""
    options = HemorrhageOptions(threshold=threshold, heatmap=False)
    truth, scores, ids = [], [], []
    for png in read_png_set(root, "held_out"):
        findings = detect_key_image(ImageSequence(png.grey[None], name=f"{png.image_id:03d}"), model, options)
        truth.append(png.hemorrhage)
        scores.append(findings.probabilities[LABELS[ANY]])
        ids.append(png.image_id)
    truth, scores = np.array(truth, dtype=float), np.array(scores)
    figures = {
        "split": "held_out",
        "images": len(truth),
        "positives": int(truth.sum()),
        "ids": ids,
        "any": binary_figures(truth, scores, threshold),
        "auc_any_95ci": bootstrap_auc(truth, scores, np.random.default_rng(seed)),
    }
    return figures, {"real held-out slices, any": {"slice mode": (truth, scores)}}


def binary_figures(truth: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    from sklearn.metrics import roc_auc_score

    positive, called = truth > 0.5, scores >= threshold
    return {
        "positives": int(positive.sum()),
        "auc": float(roc_auc_score(positive, scores)) if 0 < positive.sum() < len(positive) else None,
        "sensitivity": float(called[positive].mean()) if positive.any() else None,
        "specificity": float((~called[~positive]).mean()) if (~positive).any() else None,
    }


def label_figures(truth: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    return {label: binary_figures(truth[:, n], scores[:, n], threshold) for n, label in enumerate(LABELS)}


def log_loss(truth: np.ndarray, probabilities: np.ndarray) -> float:
    """The RSNA weighted log loss of probabilities (rows × 6), clipped as the challenge did."""
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    per_label = -(truth * np.log(p) + (1 - truth) * np.log(1 - p))
    weights = np.asarray(LOSS_WEIGHTS)
    return float((per_label @ weights / weights.sum()).mean())


def bootstrap_auc(truth: np.ndarray, scores: np.ndarray, rng) -> list[float] | None:
    """The 2.5th and 97.5th percentiles of the AUC over resamples of the images (with replacement)."""
    from sklearn.metrics import roc_auc_score

    values = []
    for _ in range(BOOTSTRAP_SAMPLES):
        chosen = rng.integers(0, len(truth), len(truth))
        if 0 < truth[chosen].sum() < len(chosen):
            values.append(roc_auc_score(truth[chosen], scores[chosen]))
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))] if values else None


def plot_roc(curves: dict, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    figure, axes = plt.subplots(figsize=(5, 5))
    for name, (truth, scores) in curves.items():
        if 0 < truth.sum() < len(truth):
            fpr, tpr, _ = roc_curve(truth > 0.5, scores)
            axes.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(truth > 0.5, scores):.3f})")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":")
    axes.set(xlabel="1 − specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.01))
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--seeds", type=int, nargs=2, default=[9000, 9040], help="[first, stop) generator seeds")
    parser.add_argument("--matrix", type=int, default=256)
    parser.add_argument("--real", type=Path, help="the head-CT PNG set's root (NeiderSmith/head_ct_dataset)")
    parser.add_argument(
        "--layers", nargs="+", help="Grad-CAM layers to compare (default: the layer the backbone names)"
    )
    parser.add_argument("--threshold", type=float, default=HemorrhageOptions.threshold)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    model = load_hemorrhage_model(args.manifest)
    started = time.perf_counter()
    figures = {"model": model.version, "sha256": model.sha256, "threshold": args.threshold}
    synthetic, curves = evaluate_synthetic(model, range(*args.seeds), args.matrix, args.threshold, args.layers)
    figures["synthetic"] = synthetic
    plot_roc(curves["scan"], "synthetic held-out scans", args.out / "roc_synthetic_scan.png")
    plot_roc(curves["slice"], "synthetic held-out slices (BiLSTM)", args.out / "roc_synthetic_slice.png")
    plot_roc(curves["slice any: CNN vs BiLSTM"], "synthetic slices, any", args.out / "roc_synthetic_cnn_bilstm.png")
    if args.real:
        figures["real_png"], real_curves = evaluate_real(model, args.real, args.threshold, seed=0)
        plot_roc(real_curves["real held-out slices, any"], "real PNG held-out, any", args.out / "roc_real_png.png")
    figures["seconds"] = time.perf_counter() - started
    (args.out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

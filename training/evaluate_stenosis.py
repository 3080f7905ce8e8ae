"""Evaluate a stenosis model on held-out synthetic cines through the product's own path (`detect_stenosis`).

    python training/evaluate_stenosis.py --manifest runs/stenosis/model/stenosis.json --seeds 9000 9040 --out runs/eval
    python training/evaluate_stenosis.py --manifest A.json --compare B.json ...   # e.g. without attention, side by side

Per model, over generator seeds never trained or validated on: clip AUC (the mean key-frame probability) and clip
accuracy (the majority vote); frame accuracy on the key frames (a key frame is positive when a stenosis box shows
on it); the share of key frames inside the true filled phase; on true-positive clips, whether the heatmap's hottest
pixel (over the key frames) lies within 5 mm, or 15 px, of a stenosis centre shown on that frame; on true-positive
key frames, whether a box contains a stenosis centre or lies within 5 mm of one (box hit rate), and the share of
the frame a box covers (a box over the whole frame would always hit); boxes on normal clips. Writes
OUT/figures.json (with every clip's outcome) and ROC curves as PNG.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "LesionDetect"))

from evaluate_hemorrhage import plot_roc  # noqa: E402
from synthetic_angiography import GENERATOR_VERSION, make_angiography_clip  # noqa: E402

from LesionDetectLib.detectors.stenosis.detect import detect_stenosis  # noqa: E402
from LesionDetectLib.detectors.stenosis.model import load_stenosis_model  # noqa: E402
from LesionDetectLib.detectors.stenosis.options import StenosisOptions  # noqa: E402
from LesionDetectLib.detectors.stenosis.vote import STENOSIS  # noqa: E402

PEAK_TOLERANCE_MM = 5.0
PEAK_TOLERANCE_PX = 15.0  # the peak hits when within either tolerance
BOX_TOLERANCE_MM = 5.0


def shown_centres_px(clip, frame: int) -> np.ndarray:
    """(n, 2) x, y of the stenoses boxed on a frame (those that show on it)."""
    centres = [clip.stenoses[box["stenosis"]]["centre_px"][frame] for box in clip.boxes_px[frame]]
    return np.array(centres, dtype=float).reshape(-1, 2)


def distance_to_box(points: np.ndarray, box_px) -> np.ndarray:
    """Distance in pixels from each (x, y) point to a box [x0, y0, x1, y1]; 0 inside it."""
    x0, y0, x1, y1 = box_px
    x, y = points.T
    return np.hypot(x - np.clip(x, x0, x1), y - np.clip(y, y0, y1))


def clip_outcome(clip, findings, threshold: float) -> dict:
    """What one detection got right on one clip, JSON-ready."""
    summary = findings.summary
    frames = [int(entry["frame"]) for entry in summary["key_frames"]]
    probabilities = [float(entry["probability"]) for entry in summary["key_frames"]]
    truth = [bool(clip.boxes_px[k]) for k in frames]
    pixel_mm = float(np.mean(clip.pixel_spacing_mm))
    frame_area = float(np.prod(findings.image.frame_shape))
    outcome = {
        "seed": clip.settings["seed"],
        "label": clip.label,
        "verdict": summary["verdict"],
        "probability": float(summary["probability"]),
        "key_frames": frames,
        "key_frame_probabilities": probabilities,
        "key_frame_truth": truth,
        "in_filled_phase": [bool(clip.filled_phase[k]) for k in frames],
        "boxes": len(findings.lesions),
        "box_frame_shares": [
            float(np.prod(np.subtract(lesion.box_px[2:], lesion.box_px[:2]))) / frame_area
            for lesion in findings.lesions
        ],
        "peak_hit": None,
        "peak_distance_mm": None,
        "box_hits": [],
    }
    if clip.label != STENOSIS or summary["verdict"] != STENOSIS:
        return outcome
    if findings.heatmap is not None:
        key_heat = findings.heatmap[frames]
        position, row, column = np.unravel_index(int(np.argmax(key_heat)), key_heat.shape)
        centres = shown_centres_px(clip, frames[position])
        if len(centres):
            distance_px = float(np.hypot(*(centres - [column + 0.5, row + 0.5]).T).min())
            outcome["peak_distance_mm"] = distance_px * pixel_mm
            outcome["peak_hit"] = distance_px <= max(PEAK_TOLERANCE_MM / pixel_mm, PEAK_TOLERANCE_PX)
        else:
            outcome["peak_hit"] = False  # the hottest key frame shows no stenosis
    for frame, probability, shown in zip(frames, probabilities, truth):
        if shown and probability >= threshold:
            centres = shown_centres_px(clip, frame)
            boxes = [lesion.box_px for lesion in findings.lesions if lesion.frame == frame]
            outcome["box_hits"].append(
                any(distance_to_box(centres, box).min() * pixel_mm <= BOX_TOLERANCE_MM for box in boxes)
            )
    return outcome


def model_figures(outcomes: list[dict], threshold: float) -> tuple[dict, dict]:
    """The set's figures from the clips' outcomes, and the ROC inputs (clip and key-frame level)."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    clip_truth = np.array([o["label"] == STENOSIS for o in outcomes])
    clip_scores = np.array([o["probability"] for o in outcomes])
    frame_truth = np.concatenate([o["key_frame_truth"] for o in outcomes]).astype(bool)
    frame_scores = np.concatenate([o["key_frame_probabilities"] for o in outcomes])
    true_positive = [o for o in outcomes if o["label"] == STENOSIS and o["verdict"] == STENOSIS]
    peaks = [o["peak_hit"] for o in true_positive if o["peak_hit"] is not None]
    box_hits = [hit for o in outcomes for hit in o["box_hits"]]
    normal = [o for o in outcomes if o["label"] != STENOSIS]

    def share(values):
        return float(np.mean(values)) if len(values) else None

    figures = {
        "clips": len(outcomes),
        "stenosis_clips": int(clip_truth.sum()),
        "clip_auc": float(roc_auc_score(clip_truth, clip_scores)) if 0 < clip_truth.sum() < len(clip_truth) else None,
        "clip_accuracy": float(accuracy_score(clip_truth, [o["verdict"] == STENOSIS for o in outcomes])),
        "clip_sensitivity": share([o["verdict"] == STENOSIS for o in outcomes if o["label"] == STENOSIS]),
        "clip_specificity": share([o["verdict"] != STENOSIS for o in normal]),
        "key_frames": int(len(frame_truth)),
        "frame_accuracy": float(accuracy_score(frame_truth, frame_scores >= threshold)),
        "key_frames_in_filled_phase": share(np.concatenate([o["in_filled_phase"] for o in outcomes])),
        "true_positive_clips": len(true_positive),
        "heatmap_peak_hit": share(peaks),
        "box_hit_rate": share(box_hits),
        "true_positive_key_frames": len(box_hits),
        "boxes_per_normal_clip": share([o["boxes"] for o in normal]),
        "box_frame_share": share([a for o in outcomes for a in o["box_frame_shares"]]),  # a huge box hits anything
    }
    return figures, {"clip": (clip_truth, clip_scores), "key frame": (frame_truth, frame_scores)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--compare", type=Path, help="a second model's manifest, reported beside the first")
    parser.add_argument("--seeds", type=int, nargs=2, default=[9000, 9040], help="[first, stop) generator seeds")
    parser.add_argument("--matrix", type=int, default=512)
    parser.add_argument("--frame-count", type=int, help="frames per clip (default: the generator's run length)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    models = {"model": load_stenosis_model(args.manifest)}
    if args.compare:
        models["compare"] = load_stenosis_model(args.compare)
    outcomes = {name: [] for name in models}
    seconds = {"generation": [], **{name: [] for name in models}}
    for seed in range(*args.seeds):
        started = time.perf_counter()
        clip = make_angiography_clip(seed, matrix=args.matrix, frame_count=args.frame_count)
        sequence = clip.image_sequence()
        seconds["generation"].append(time.perf_counter() - started)
        for name, model in models.items():
            started = time.perf_counter()
            findings = detect_stenosis(sequence, model, StenosisOptions(threshold=model.threshold))
            seconds[name].append(time.perf_counter() - started)
            outcomes[name].append(clip_outcome(clip, findings, model.threshold))
    figures = {
        "generator_version": GENERATOR_VERSION,
        "seeds": args.seeds,
        "matrix": args.matrix,
        "frame_count": args.frame_count,
        "seconds_per_clip": {name: float(np.mean(values)) for name, values in seconds.items()},
    }
    curves = {}
    for name, model in models.items():
        set_figures, curves[name] = model_figures(outcomes[name], model.threshold)
        figures[name] = {
            "manifest": str(args.manifest if name == "model" else args.compare),
            "version": model.manifest["version"],
            "attention": model.network.config.attention,
            "sha256": model.sha256,
            "threshold": model.threshold,
            **set_figures,
            "per_clip": outcomes[name],
        }
    for level in ("clip", "key frame"):
        labelled = {f"{figures[name]['version']} ({name})": curves[name][level] for name in models}
        plot_roc(labelled, f"synthetic held-out, {level}", args.out / f"roc_{level.replace(' ', '_')}.png")
    (args.out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    for name in models:
        print(name, json.dumps({k: v for k, v in figures[name].items() if k != "per_clip"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train the calcium deep model: fit the ACF trees (heatmap), build crops, train the SSD, write the safetensors bundle.

    python training/train_calcium.py --config training/configs/calcium_small.yaml --out runs/calcium_small
    python training/train_calcium.py ... --resume          # continue from runs/.../checkpoint.pt
    python training/train_calcium.py ... --install         # also copy the bundle to LesionDetect/Resources/Models

A config with `init_from: <manifest>` fine-tunes that bundle's SSD and keeps its ACF trees (they only score the
heatmap's background), instead of fitting both from scratch.

Seeded and resumable; one JSON line per epoch in OUT/train_log.jsonl. Adam as in the paper
(lr 1e-3, β 0.9/0.999, ε 1e-8, batch 16); the localisation loss is the two-parameter robust loss.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "LesionDetect"))

from calcium_datasets import iter_dataset  # noqa: E402
from calcium_training_data import CropSet, crops_from_volume  # noqa: E402
from synthetic_cardiac_ct import GENERATOR_VERSION, make_case  # noqa: E402
from train_acf import fit_acf  # noqa: E402

from LesionDetectLib.detection.weights import config_arguments, install_bundle  # noqa: E402
from LesionDetectLib.detectors.calcium.heart_region import find_heart_region  # noqa: E402
from LesionDetectLib.detectors.calcium.model import load_calcium_model, save_calcium_model  # noqa: E402
from LesionDetectLib.nets.ssd import SSD, SSDConfig, decode  # noqa: E402
from LesionDetectLib.nets.ssd_loss import ssd_loss  # noqa: E402


def labelled_volumes(data: dict, split: str):
    """(volume, labels) pairs of a split: synthetic seeds, or a real dataset layout."""
    if data["layout"] == "synthetic":
        first, stop = data[f"{split}_seeds"]
        for seed in range(first, stop):
            case = make_case(seed, matrix=data.get("matrix", 512))
            yield case.volume, case.labels
    else:
        for case in iter_dataset(Path(data["root"]) / split, data["layout"]):
            yield case.volume, case.labels


def build_crops(config: dict, cases, rng) -> CropSet:
    return CropSet.concatenate([crops_from_volume(volume, labels, rng, **config["crops"]) for volume, labels in cases])


def targets_of(crop_set: CropSet, indices) -> list[dict]:
    return [
        {"boxes": torch.from_numpy(crop_set.boxes[n]), "labels": torch.from_numpy(crop_set.labels[n])} for n in indices
    ]


def run_epoch(model, optimiser, crop_set: CropSet, config: dict, rng, train: bool) -> dict:
    """One pass over the crops; returns mean losses."""
    model.train(train)
    batch = config["optim"]["batch"]
    order = rng.permutation(len(crop_set)) if train else np.arange(len(crop_set))
    totals = {"loss": 0.0, "conf": 0.0, "loc": 0.0}
    steps = 0
    for first in range(0, len(order), batch):
        indices = order[first : first + batch]
        if train and len(indices) < 2:  # batch norm cannot train on one crop (the 1×1 extra map has one value)
            continue
        images = crop_set.crops[indices].float()
        with torch.set_grad_enabled(train):
            logits, deltas = model(images)
            losses = ssd_loss(logits, deltas, model.anchors, targets_of(crop_set, indices), **config["loss"])
        if train:
            optimiser.zero_grad()
            losses["loss"].backward()
            optimiser.step()
        for name in totals:
            totals[name] += losses[name].item()
        steps += 1
    return {name: value / max(steps, 1) for name, value in totals.items()}


@torch.no_grad()
def coronary_recall(model, crop_set: CropSet, score_threshold: float = 0.5) -> float:
    """Fraction of coronary target boxes with a coronary detection of IoU ≥ 0.3 (a quick validation signal)."""
    from monai.data.box_utils import box_iou

    model.eval()
    found = total = 0
    for first in range(0, len(crop_set), 256):
        indices = np.arange(first, min(first + 256, len(crop_set)))
        logits, deltas = model(crop_set.crops[indices].float())
        for n, result in zip(indices, decode(model, logits, deltas, score_threshold=score_threshold)):
            coronary = (crop_set.labels[n] >= 1) & (crop_set.labels[n] <= 4)
            total += int(coronary.sum())
            kept = (result["labels"] >= 1) & (result["labels"] <= 4)
            if coronary.any() and kept.any():
                iou = box_iou(torch.from_numpy(crop_set.boxes[n][coronary]), result["boxes"][kept].float())
                found += int((iou.amax(dim=1) >= 0.3).sum())
    return found / max(total, 1)


def trained_input_range(volumes) -> dict:
    """The smallest and largest pixel size and slice spacing of the training scans (the model's input range)."""
    pixels, slices = [], []
    for volume in volumes:
        pixels += [float(volume.spacing[0]), float(volume.spacing[1])]
        slices.append(float(volume.spacing[2]))
    return {"pixel_mm": [min(pixels), max(pixels)], "slice_mm": [min(slices), max(slices)]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--install", action="store_true", help="copy the bundle into LesionDetect/Resources/Models")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.config.read_text())
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    seed = config["seed"]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    log = open(args.out / "train_log.jsonl", "a")

    started = time.perf_counter()
    train_cases = list(labelled_volumes(config["data"], "train"))  # made once: the ACF and the crops both read them
    input_range = trained_input_range(volume for volume, _ in train_cases)
    start = load_calcium_model(Path(config["init_from"])) if config.get("init_from") else None
    if start is None:
        acf_cases = ((volume, labels, find_heart_region(volume).mask) for volume, labels in train_cases)
        trees, threshold, acf_stats = fit_acf(acf_cases, **config.get("acf", {}))
    else:
        trees, threshold = start.acf, start.acf_threshold
        acf_stats = {"reused_from": start.version, "shrink": start.acf_shrink}
    shrink = acf_stats.get("shrink", 4)
    log.write(json.dumps({"stage": "acf", "seconds": time.perf_counter() - started, **_jsonable(acf_stats)}) + "\n")
    train_set = build_crops(config, train_cases, rng)
    del train_cases
    val_cases = labelled_volumes(config["data"], "val")
    val_set = build_crops(config, val_cases, np.random.default_rng(seed + 1))
    log.write(json.dumps({"stage": "crops", "train": len(train_set), "val": len(val_set)}) + "\n")
    log.flush()

    model = SSD(SSDConfig(**config_arguments(config["model"])))
    if start is not None:
        model.load_state_dict(start.ssd.state_dict())
    optim = config["optim"]
    optimiser = torch.optim.Adam(model.parameters(), lr=optim["lr"], betas=tuple(optim["betas"]), eps=optim["eps"])
    first_epoch = 0
    checkpoint_path = args.out / "checkpoint.pt"
    if args.resume and checkpoint_path.is_file():
        state = torch.load(checkpoint_path, weights_only=True)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        torch.set_rng_state(state["torch_rng"])
        rng = np.random.default_rng(state["numpy_seed"])
        first_epoch = state["epoch"] + 1
    for epoch in range(first_epoch, optim["epochs"]):
        epoch_started = time.perf_counter()
        if epoch in optim.get("lr_drops", []):
            for group in optimiser.param_groups:
                group["lr"] *= 0.1
        train = run_epoch(model, optimiser, train_set, config, rng, train=True)
        val = run_epoch(model, optimiser, val_set, config, rng, train=False)
        entry = {"epoch": epoch, "train": train, "val": val, "val_coronary_recall": coronary_recall(model, val_set)}
        entry["seconds"] = time.perf_counter() - epoch_started
        log.write(json.dumps(entry) + "\n")
        log.flush()
        print(json.dumps(entry), flush=True)
        torch.save(
            {
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
                "epoch": epoch,
                "torch_rng": torch.get_rng_state(),
                "numpy_seed": int(rng.integers(2**31)),
            },
            checkpoint_path,
        )
    card = {
        "version": config.get("version", "calcium-ssd-" + time.strftime("%Y%m%d")),
        "architecture": "SSD, clipped ResNet-50 backbone (bottlenecks 64/256, 128/512, 256/1024, 512/2048 × width)",
        "training_data": {"layout": config["data"]["layout"], "generator_version": GENERATOR_VERSION, **config["data"]},
        "training": {"crops": {"train": len(train_set), "val": len(val_set)}, "optim": optim, "loss": config["loss"]},
        "acf": _jsonable(acf_stats),
        "seed": seed,
        "input_range": input_range,
        "fine_tuned_from": None if start is None else start.version,
    }
    model.eval()
    manifest = save_calcium_model(model, trees, threshold, shrink, args.out / "model", card)
    if args.install:
        install_bundle(manifest)
    print(f"Model written to {manifest.parent}")
    return 0


def _jsonable(stats: dict) -> dict:
    return json.loads(json.dumps(stats, default=float))


if __name__ == "__main__":
    sys.exit(main())

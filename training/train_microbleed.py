"""Train the microbleed SSD on synthetic SWI slices, with or without the training-only feature enhancement (FE).

    python training/train_microbleed.py --config training/configs/microbleed_ssd300_vgg16.yaml --out runs/mb-fe
    python training/train_microbleed.py --config ... --out runs/mb-plain --feature-enhancement off   # the ablation

Slices come from `microbleed_training_data.py` (the detector's own preprocessing, cached per seed), augmented as
the paper (`microbleed_augmentation.py`); Adam with a cosine learning rate; each epoch is checkpointed (a rerun
with the same --out resumes) and scored on the validation seeds' slices (AP of slice boxes, centre hits); the best
epoch is exported without FE (the inference graph has none) and its operating points (score per validation
sensitivity, false positives per microbleed) are measured on whole validation scans through the detector's own
3D pipeline (`evaluate_microbleed.scan_scores`); those points belong to the whole pipeline, so a rerun with the
same --out after training has finished measures them again with the current preprocessing and merging.
--warm-start continues from a previous model's weights with a fresh optimiser and schedule (the card names it).
Writes microbleed.safetensors + microbleed.json into --out; --install copies them into LesionDetect/Resources/Models.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "LesionDetect"))

from evaluate_microbleed import scan_scores  # noqa: E402
from microbleed_augmentation import augmentation, augmented  # noqa: E402
from microbleed_evaluation import at_sensitivity, average_precision, operating_points, score_scan  # noqa: E402
from microbleed_training_data import cached_training_slices  # noqa: E402
from pretrained_backbones import load_imagenet_mobilenet_v2  # noqa: E402
from run_log import run_log  # noqa: E402
from synthetic_swi import GENERATOR_VERSION  # noqa: E402

from LesionDetectLib.detection.weights import install_bundle  # noqa: E402
from LesionDetectLib.detectors.microbleed.model import (  # noqa: E402
    MicrobleedModel,
    load_microbleed_model,
    save_microbleed_model,
)
from LesionDetectLib.detectors.microbleed.preprocess import INPUT_FOV_MM  # noqa: E402
from LesionDetectLib.nets.ssd import SSD, SSDConfig, decode  # noqa: E402
from LesionDetectLib.nets.ssd_loss import ssd_loss  # noqa: E402


def flattened(scans: list[dict]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Every kept slice of the scans (float16) and its boxes."""
    return torch.cat([scan["images"] for scan in scans]), [boxes for scan in scans for boxes in scan["boxes"]]


def build_network(model: dict, feature_enhancement: bool):
    """The SSD of the config and where its weights start: an ImageNet MobileNetV2 trunk when the config asks."""
    settings = {key: value for key, value in model.items() if key != "pretrained"}
    network = SSD(SSDConfig(**settings, feature_enhancement=feature_enhancement))
    if model.get("pretrained") == "imagenet":
        return network, load_imagenet_mobilenet_v2(network.backbone.mobilenet)
    return network, "from scratch (random initialisation)"


LOSS_SETTINGS = {"loss_alpha": "alpha", "loss_scale": "beta", "min_negatives": "min_negatives"}  # config -> ssd_loss


def train_epoch(network, optimiser, scheduler, images, boxes, train: dict, transform, rng, record) -> float:
    """One shuffled pass; each slice augmented; FE (when on) gets the augmented boxes. Mean loss.

    The localisation term is the robust loss with the config's shape and scale (loss_alpha, loss_scale;
    ssd_loss's defaults where absent); scale 1 with shape 1 is the pseudo-Huber form of SSD's smooth L1.
    min_negatives: the hardest background boxes each slice teaches at least (lesion-free slices included)."""
    network.train()
    batch = train["batch"]
    shape_and_scale = {argument: train[key] for key, argument in LOSS_SETTINGS.items() if key in train}
    order = rng.permutation(len(images))
    total, steps = 0.0, 0
    for first in range(0, len(order) - 1, batch):
        pairs = [augmented(transform, images[n], boxes[n]) for n in order[first : first + batch]]
        if len(pairs) < 2:  # batch norm needs two slices
            continue
        inputs = torch.stack([image for image, _ in pairs])
        targets = [{"boxes": b, "labels": torch.ones(len(b), dtype=torch.int64)} for _, b in pairs]
        logits, deltas = network(inputs, [t["boxes"] for t in targets])
        losses = ssd_loss(logits, deltas, network.anchors, targets, **shape_and_scale)
        optimiser.zero_grad()
        losses["loss"].backward()
        optimiser.step()
        scheduler.step()
        total, steps = total + losses["loss"].item(), steps + 1
        if steps % 50 == 0:
            record({"step": steps, "loss": round(total / steps, 4)})
    return total / max(steps, 1)


@torch.no_grad()
def slice_average_precision(network, images, boxes, pixel_mm: float, batch: int = 16) -> float:
    """AP of the slice boxes on validation slices: a box hits a labelled microbleed by centre distance (mm)."""
    network.eval()
    scans = []
    for first in range(0, len(images), batch):
        logits, deltas = network(images[first : first + batch].float())
        for found, truth in zip(decode(network, logits, deltas, 0.05, 0.3, 30), boxes[first : first + batch]):
            centres = ((found["boxes"][:, :2] + found["boxes"][:, 2:]) / 2 * pixel_mm).numpy()
            truth_centres = ((truth[:, :2] + truth[:, 2:]) / 2 * pixel_mm).numpy()
            scans.append(
                score_scan(
                    np.c_[centres, np.zeros(len(centres))],
                    found["scores"].numpy(),
                    np.c_[truth_centres, np.zeros(len(truth_centres))],
                    ((truth[:, 2:] - truth[:, :2]).amax(dim=1) * pixel_mm).numpy(),
                )
            )
    return average_precision(scans)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--feature-enhancement", choices=("on", "off"), default="on")
    parser.add_argument("--cache", type=Path, help="folder of generated training slices (shared between runs)")
    parser.add_argument("--workers", type=int, default=1, help="processes generating slices")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warm-start", type=Path, help="a microbleed manifest whose weights the network starts from")
    parser.add_argument("--install", action="store_true", help="copy the model into LesionDetect/Resources/Models")
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.config.read_text())
    torch.set_num_threads(args.threads)
    torch.manual_seed(config["seed"])
    rng = np.random.default_rng(config["seed"])
    record = run_log(args.out)
    data, train, model_config = config["data"], config["train"], config["model"]
    size = model_config["image_size"]
    started = time.perf_counter()
    train_images, train_boxes = flattened(
        cached_training_slices(range(*data["train_seeds"]), size, args.cache, args.workers)
    )
    val_images, val_boxes = flattened(cached_training_slices(range(*data["val_seeds"]), size, args.cache, args.workers))
    record({"slices": len(train_images), "boxes": sum(map(len, train_boxes)), "data_s": time.perf_counter() - started})

    fe = args.feature_enhancement == "on"
    network, backbone_start = build_network(model_config, fe)
    warm_start = None
    if args.warm_start:
        previous = load_microbleed_model(args.warm_start)
        network.load_state_dict(previous.network.state_dict())
        warm_start = {"version": previous.version, "sha256": previous.sha256}
    optimiser = torch.optim.Adam(network.parameters(), lr=train["lr"])
    steps = train["epochs"] * max(1, len(train_images) // train["batch"])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    transform = augmentation(train.get("augmentation_probability", 0.5))
    checkpoint_path, best = args.out / "checkpoint.pt", {"ap": -1.0, "epoch": None, "state": None}
    first_epoch = 0
    if checkpoint_path.is_file():
        saved = torch.load(checkpoint_path, weights_only=False)
        network.load_state_dict(saved["network"])
        optimiser.load_state_dict(saved["optimiser"])
        scheduler.load_state_dict(saved["scheduler"])
        rng.bit_generator.state, best, first_epoch = saved["rng"], saved["best"], saved["epoch"] + 1
    pixel_mm = INPUT_FOV_MM / size
    for epoch in range(first_epoch, train["epochs"]):
        tic = time.perf_counter()
        loss = train_epoch(network, optimiser, scheduler, train_images, train_boxes, train, transform, rng, record)
        ap = slice_average_precision(network, val_images, val_boxes, pixel_mm)
        if ap > best["ap"]:
            best = {"ap": ap, "epoch": epoch, "state": {k: v.clone() for k, v in network.state_dict().items()}}
        record(
            {
                "epoch": epoch,
                "loss": round(loss, 4),
                "val_slice_ap": round(ap, 4),
                "s": round(time.perf_counter() - tic),
            }
        )
        torch.save(
            {
                "network": network.state_dict(),
                "optimiser": optimiser.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng.bit_generator.state,
                "best": best,
                "epoch": epoch,
            },
            checkpoint_path,
        )

    plain, _ = build_network({**model_config, "pretrained": None}, feature_enhancement=False)
    plain.load_state_dict(best["state"])
    plain.eval()
    scans = scan_scores(MicrobleedModel(plain, size, {"version": "validation"}, ""), range(*data["val_seeds"]))
    points = operating_points([scan for scan, _ in scans])
    at_90 = at_sensitivity(points, 0.9)
    record({"best_epoch": best["epoch"], "val_slice_ap": best["ap"], "val_scans": len(scans), "at_90": at_90})
    card = {
        "version": config["version"] + ("" if fe else "-no-fe"),
        "trained_on": f"synthetic SWI, training/synthetic_swi.py {GENERATOR_VERSION}, seeds {data['train_seeds']}",
        "validated_on": f"synthetic SWI seeds {data['val_seeds']} (whole scans, the detector's 3D pipeline)",
        "caution": "trained and validated on synthetic SWI only; not validated on real scans or for clinical use.",
        "backbone_start": backbone_start,
        "warm_start": warm_start,
        "feature_enhancement_in_training": fe,
        "best_epoch": best["epoch"],
        "validation_slice_ap": round(best["ap"], 4),
        "operating_points": points,
        "config": config,
    }
    manifest = save_microbleed_model(plain, size, args.out, card)
    if args.install:
        install_bundle(manifest)
    print(f"wrote {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

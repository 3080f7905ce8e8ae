"""Train the hemorrhage model in three stages: per-slice CNN, PCA reduction to 120, BiLSTM over slices.

    python training/train_hemorrhage.py --config training/configs/hemorrhage_small.yaml --out runs/hemorrhage
    python training/train_hemorrhage.py ... --resume     # continue after the last finished epoch or stage
    python training/train_hemorrhage.py ... --install    # also copy the bundle to LesionDetect/Resources/Models

1. CNN: each slice alone, its six labels, the RSNA weighted log loss ("any" × 2); Adam.
2. Reduction: PCA (scikit-learn) of the trained CNN's features of every training slice, kept as buffers.
3. BiLSTM: the CNN and PCA frozen, their outputs cached per scan; the sequence model and last layer learn
   the slice labels of whole scans, slices in order.
Seeded; one JSON line per epoch in OUT/train_log.jsonl; a checkpoint after every epoch and stage. The CNN of the
epoch with the lowest validation loss is the one kept.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "LesionDetect"))

from hemorrhage_datasets import read_png_set  # noqa: E402
from pretrained_backbones import load_imagenet_mobilenet_v2  # noqa: E402
from run_log import run_log  # noqa: E402
from seed_cache import cached_by_seed  # noqa: E402
from synthetic_head_ct import GENERATOR_VERSION, make_head_case  # noqa: E402

from LesionDetectLib.detection.weights import config_arguments, install_bundle  # noqa: E402
from LesionDetectLib.detectors.hemorrhage.key_image import (  # noqa: E402
    KEY_IMAGE_BACKGROUND_HU,
    brain_window_only,
    key_image_input,
)
from LesionDetectLib.detectors.hemorrhage.labels import ANY, LOSS_WEIGHTS  # noqa: E402
from LesionDetectLib.detectors.hemorrhage.model import save_hemorrhage_model  # noqa: E402
from LesionDetectLib.detectors.hemorrhage.preprocess import head_frame, network_input  # noqa: E402
from LesionDetectLib.nets.multilabel_loss import weighted_log_loss  # noqa: E402
from LesionDetectLib.nets.slice_sequence import SliceSequenceConfig, SliceSequenceNet  # noqa: E402


def scan_inputs(seed: int, matrix: int, input_size: int) -> dict:
    """One generated scan as the CNN reads it (float16): its slices, the same slices as brain-windowed key
    images show them (slice mode's input), and its slice labels."""
    case = make_head_case(seed, matrix=matrix)
    hu = case.volume.array
    frame = head_frame(hu, float(case.volume.spacing[0]))
    return {
        "slices": network_input(hu, frame, input_size).half(),
        "key_images": network_input(brain_window_only(hu), frame, input_size, KEY_IMAGE_BACKGROUND_HU).half(),
        "labels": torch.from_numpy(case.slice_labels).float(),
    }


def cached_scan_inputs(seeds, matrix: int, input_size: int, cache: Path | None, workers: int) -> list[dict]:
    """`scan_inputs` of every seed (training/seed_cache.py: spawned workers, kept in `cache` when given)."""
    return cached_by_seed(
        scan_inputs,
        seeds,
        (matrix, input_size),
        lambda seed: f"head_{GENERATOR_VERSION}_m{matrix}_s{input_size}_{seed}.pt",
        cache,
        workers,
    )


def synthetic_scans(data: dict, split: str, input_size: int, key_image_fraction=0.0, rng=None, cache=None, workers=1):
    """Per scan of a split's seeds: (slices (S, 3, size, size) float16, labels (S, 6) float32); and, for a
    `key_image_fraction` of all slices drawn with `rng`, those slices again as brain-windowed key images show
    them (slice mode's input), with their labels."""
    scans, key_slices, key_labels = [], [], []
    for inputs in cached_scan_inputs(
        range(*data[f"{split}_seeds"]), data.get("matrix", 256), input_size, cache, workers
    ):
        labels = inputs["labels"]
        scans.append((inputs["slices"], labels))
        chosen = np.nonzero(rng.random(len(labels)) < key_image_fraction)[0] if key_image_fraction else []
        if len(chosen):
            key_slices.append(inputs["key_images"][chosen])
            key_labels.append(labels[chosen])
    key_images = (torch.cat(key_slices), torch.cat(key_labels)) if key_slices else None
    return scans, key_images


def real_key_images(real: dict, split: str, input_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The real PNG set's slices of a split as slice mode reads them, and their labels ("any" only known)."""
    slices, labels = [], []
    for png in read_png_set(real["root"], split):
        slices.append(key_image_input(png.grey, input_size)[0].half())
        labels.append(png.hemorrhage)
    return torch.cat(slices), torch.tensor(labels, dtype=torch.float32)


def cnn_training_set(train_scans, key_images, real, real_set) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Slices, labels and known-label masks the CNN stage reads: every synthetic slice, the key-image copies,
    and the real PNGs repeated `real.repeat` times with only "any" known."""
    slices, labels = all_slices(train_scans)
    parts = [(slices, labels, torch.ones_like(labels))]
    if key_images is not None:
        parts.append((*key_images, torch.ones_like(key_images[1])))
    if real_set is not None:
        real_slices, real_any = real_set
        real_labels = torch.zeros(len(real_any), len(LOSS_WEIGHTS))
        real_labels[:, ANY] = real_any
        known = torch.zeros_like(real_labels)
        known[:, ANY] = 1.0
        repeat = int(real.get("repeat", 1))
        parts.append((real_slices.repeat(repeat, 1, 1, 1), real_labels.repeat(repeat, 1), known.repeat(repeat, 1)))
    return tuple(torch.cat(tensors) for tensors in zip(*parts))


def all_slices(scans) -> tuple[torch.Tensor, torch.Tensor]:
    """Every slice of the scans and its labels, concatenated."""
    return torch.cat([s for s, _ in scans]), torch.cat([lab for _, lab in scans])


def cnn_epoch(network, optimiser, slices, labels, known, batch: int, rng, train: bool) -> float:
    """One pass of the CNN over every slice (shuffled, half of each batch mirrored left-right, when training);
    mean weighted log loss over the known labels."""
    network.cnn.train(train)
    order = rng.permutation(len(slices)) if train else np.arange(len(slices))
    total, steps = 0.0, 0
    for first in range(0, len(order), batch):
        index = order[first : first + batch]
        if train and len(index) < 2:
            continue
        inputs = slices[index].float()
        if train:
            inputs[: len(index) // 2] = inputs[: len(index) // 2].flip(-1)
        with torch.set_grad_enabled(train):
            _, logits = network.cnn(inputs)
            loss = weighted_log_loss(logits, labels[index], LOSS_WEIGHTS, known[index])
        if train:
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        total, steps = total + loss.item(), steps + 1
    return total / max(steps, 1)


@torch.no_grad()
def cnn_outputs(network, scans, batch: int = 64) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per scan: the CNN's features (S, F) and logits (S, 6), in eval mode."""
    network.cnn.eval()
    outputs = []
    for slices, _ in scans:
        parts = [network.cnn(slices[n : n + batch].float()) for n in range(0, len(slices), batch)]
        outputs.append((torch.cat([f for f, _ in parts]), torch.cat([g for _, g in parts])))
    return outputs


def fit_reduction(network, features: torch.Tensor, seed: int) -> dict:
    from sklearn.decomposition import PCA

    pca = PCA(n_components=network.config.reduced, random_state=seed).fit(features.numpy())
    network.reduction.set_pca(torch.from_numpy(pca.mean_).float(), torch.from_numpy(pca.components_).float())
    return {"explained_variance": float(pca.explained_variance_ratio_.sum()), "vectors": int(len(features))}


def lstm_epoch(network, optimiser, cached, scans, rng, train: bool) -> float:
    """One pass of the sequence model over whole scans (one scan a step); mean weighted log loss."""
    network.lstm.train(train)
    network.dropout.train(train)
    order = rng.permutation(len(scans)) if train else np.arange(len(scans))
    total = 0.0
    for n in order:
        (features, cnn_logits), (_, labels) = cached[n], scans[n]
        with torch.set_grad_enabled(train):
            logits = network.sequence(network.reduction(features)[None], cnn_logits[None])[0]
            loss = weighted_log_loss(logits, labels, LOSS_WEIGHTS)
        if train:
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        total += loss.item()
    return total / max(len(order), 1)


@torch.no_grad()
def validation_figures(network, cached, scans) -> dict:
    """Slice-level "any" AUC and sensitivity at 0.5 of the CNN alone and of the BiLSTM; scan-level AUC."""
    from sklearn.metrics import roc_auc_score

    network.eval()
    truth, cnn, sequence, scan_truth, scan_score = [], [], [], [], []
    for (features, cnn_logits), (_, labels) in zip(cached, scans):
        logits = network.sequence(network.reduction(features)[None], cnn_logits[None])[0]
        truth.append(labels[:, ANY].numpy())
        cnn.append(cnn_logits[:, ANY].sigmoid().numpy())
        sequence.append(logits[:, ANY].sigmoid().numpy())
        scan_truth.append(float(labels[:, ANY].max()))
        scan_score.append(float(sequence[-1].max()))
    truth, cnn, sequence = np.concatenate(truth), np.concatenate(cnn), np.concatenate(sequence)

    def auc(y, p):
        return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None

    positive = truth > 0.5
    return {
        "slice_auc_any": {"cnn": auc(truth, cnn), "bilstm": auc(truth, sequence)},
        "slice_sensitivity_any_at_0.5": {
            "cnn": float((cnn[positive] >= 0.5).mean()) if positive.any() else None,
            "bilstm": float((sequence[positive] >= 0.5).mean()) if positive.any() else None,
        },
        "scan_auc_any": auc(np.array(scan_truth), np.array(scan_score)),
    }


def pretrained_start(network, pretrained: str | None) -> dict:
    """Start the CNN's trunk from the named pretrained weights ("imagenet", MobileNetV2 only) or from scratch."""
    if pretrained is None:
        return {"weights": "random initialisation (from scratch)"}
    if pretrained != "imagenet" or network.config.backbone != "mobilenet_v2":
        raise ValueError(f"no {pretrained!r} weights for backbone {network.config.backbone!r}")
    return load_imagenet_mobilenet_v2(network.cnn.trunk)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--install", action="store_true", help="copy the bundle into LesionDetect/Resources/Models")
    parser.add_argument("--cache", type=Path, help="a folder that keeps the generated scans for later runs")
    parser.add_argument("--workers", type=int, default=1, help="processes that generate scans")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.config.read_text())
    seed, size = config["seed"], config["input_size"]
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    record = run_log(args.out)

    started = time.perf_counter()
    data, real = config["data"], config.get("real_png")
    generation = {"cache": args.cache, "workers": args.workers}
    train_scans, key_images = synthetic_scans(
        data, "train", size, data.get("key_image_fraction", 0.0), rng, **generation
    )
    val_scans, _ = synthetic_scans(data, "val", size, **generation)
    real_set = real_key_images(real, "train", size) if real else None
    slices = sum(len(s) for s, _ in train_scans)
    record(
        {
            "stage": "data",
            "train_scans": len(train_scans),
            "train_slices": slices,
            "key_image_slices": 0 if key_images is None else len(key_images[0]),
            "real_slices": 0 if real_set is None else len(real_set[0]),
            "seconds": time.perf_counter() - started,
        }
    )

    model_config = dict(config["model"])
    pretrained = model_config.pop("pretrained", None)
    network = SliceSequenceNet(SliceSequenceConfig(**config_arguments(model_config)))
    checkpoint_path = args.out / "checkpoint.pt"
    state = torch.load(checkpoint_path, weights_only=True) if args.resume and checkpoint_path.is_file() else None
    backbone_start = pretrained_start(network, pretrained)
    record({"stage": "backbone", "backbone": network.config.backbone, **backbone_start})
    if state is not None:
        network.load_state_dict(state["network"])
        rng = np.random.default_rng(state["numpy_seed"])
        torch.set_rng_state(state["torch_rng"])
    done = state["done"] if state else {"cnn": 0, "reduction": False, "lstm": 0}

    def save() -> None:
        torch.save(
            {
                "network": network.state_dict(),
                "done": done,
                "numpy_seed": int(rng.integers(2**31)),
                "torch_rng": torch.get_rng_state(),
            },
            checkpoint_path,
        )

    cnn_config, lstm_config = config["cnn"], config["lstm"]
    best_cnn_path = args.out / "best_cnn.pt"
    optimiser = torch.optim.Adam(network.cnn.parameters(), lr=cnn_config["lr"])
    if done["cnn"] < cnn_config["epochs"]:
        train_slices = cnn_training_set(train_scans, key_images, real, real_set)  # once, not every epoch
        val_slices = all_slices(val_scans)
        val_slices = (*val_slices, torch.ones_like(val_slices[1]))
    for epoch in range(done["cnn"], cnn_config["epochs"]):
        epoch_started = time.perf_counter()
        train_loss = cnn_epoch(network, optimiser, *train_slices, cnn_config["batch"], rng, train=True)
        val_loss = cnn_epoch(network, optimiser, *val_slices, cnn_config["batch"], rng, train=False)
        done["cnn"] = epoch + 1
        if val_loss < done.get("best_val", float("inf")):
            done["best_val"], done["best_epoch"] = val_loss, epoch
            torch.save(network.cnn.state_dict(), best_cnn_path)
        save()
        record(
            {
                "stage": "cnn",
                "epoch": epoch,
                "train": train_loss,
                "val": val_loss,
                "seconds": time.perf_counter() - epoch_started,
            }
        )
    if not done.get("best_restored"):  # the CNN of the epoch with the lowest validation loss goes on
        network.cnn.load_state_dict(torch.load(best_cnn_path, weights_only=True))
        done["best_restored"] = True
        save()
        record({"stage": "cnn_best", "epoch": done["best_epoch"], "val": done["best_val"]})
    train_cached = cnn_outputs(network, train_scans)
    if not done["reduction"]:
        figures = fit_reduction(network, torch.cat([f for f, _ in train_cached]), seed)
        done["reduction"] = True
        save()
        record({"stage": "reduction", **figures})
    val_cached = cnn_outputs(network, val_scans)
    sequence_parameters = [*network.lstm.parameters(), *network.head.parameters()]
    optimiser = torch.optim.Adam(sequence_parameters, lr=lstm_config["lr"])
    for epoch in range(done["lstm"], lstm_config["epochs"]):
        epoch_started = time.perf_counter()
        train_loss = lstm_epoch(network, optimiser, train_cached, train_scans, rng, train=True)
        val_loss = lstm_epoch(network, optimiser, val_cached, val_scans, rng, train=False)
        done["lstm"] = epoch + 1
        save()
        figures = validation_figures(network, val_cached, val_scans)
        record(
            {
                "stage": "lstm",
                "epoch": epoch,
                "train": train_loss,
                "val": val_loss,
                **figures,
                "seconds": time.perf_counter() - epoch_started,
            }
        )

    card = {
        "version": config["version"],
        "architecture": f"per-slice 2D {network.config.backbone} → PCA → 3-layer BiLSTM; CNN probabilities join last",
        "backbone_start": backbone_start,
        "training_data": {
            "generator": "training/synthetic_head_ct.py",
            "generator_version": GENERATOR_VERSION,
            **config["data"],
        },
        "training": {
            "cnn": {**cnn_config, "kept_epoch": done["best_epoch"], "kept_val_loss": done["best_val"]},
            "lstm": lstm_config,
            "train_slices": slices,
            "real_png": None if real is None else {"split": "train", "slices": len(real_set[0]), **real},
        },
        "validation": validation_figures(network, val_cached, val_scans),
        "seed": seed,
    }
    manifest = save_hemorrhage_model(network.eval(), size, args.out / "model", card)
    if args.install:
        install_bundle(manifest)
    print(f"Model written to {manifest.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train the stenosis frame classifier (METHODS.md E): key frames of synthetic cines → CNN + self-attention.

    python training/train_stenosis.py --config training/configs/stenosis_small.yaml --out runs/stenosis
    python training/train_stenosis.py ... --folds 5        # stratified 5-fold cross-validation over clips first
    python training/train_stenosis.py ... --attention off  # the paper's ablation: the same CNN, budget and seed
    python training/train_stenosis.py ... --resume         # continue after the last finished epoch
    python training/train_stenosis.py ... --install        # also copy the bundle to LesionDetect/Resources/Models

Every clip goes through the product's own steps (as `detect_stenosis` does): key frames chosen on the rendered
frames (`key_frames`), then the network input of those frames (`network_input`). A key frame is positive when a
stenosis box shows on it. With `patch_pretraining` in the config, each run's trunk is first taught on patches of its
own training clips (stenosis_patch_pretraining.py, stage 1) and the frame stage starts from it. Training: Adam,
binary cross-entropy (plus, with `train.localisation_weight`, a training-only 1×1 head on the reduced cells learning
where the stenoses are: a Gaussian of half a cell at each shown centre; it is not part of the exported network),
the paper's augmentation (a random crop of 500/512 of the side, resized back, and an intensity shift of ±10 grey
levels of 255; left-right flips only when asked).
With `--folds K` the training clips are first split K ways by StratifiedKFold on the clip label; each fold trains
from the same start for the whole budget and is scored on its held-out clips after its last epoch (frame AUC,
frame accuracy, clip accuracy by majority vote). The final model trains on all training clips and is kept at the
epoch with the lowest loss on the validation seeds. Seeded: each epoch's order, crops and dropout follow from the
seed, the run and the epoch, so a resumed run trains what an unbroken one would have. One JSON line per epoch in
OUT/train_log.jsonl; a checkpoint after every epoch.
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

from pretrained_backbones import load_imagenet_mobilenet_v2  # noqa: E402
from run_log import run_log  # noqa: E402
from seed_cache import cached_by_seed  # noqa: E402
from stenosis_patch_pretraining import pretrain_trunk  # noqa: E402
from synthetic_angiography import GENERATOR_VERSION, make_angiography_clip  # noqa: E402

from LesionDetectLib.detection.weights import config_arguments, install_bundle  # noqa: E402
from LesionDetectLib.detectors.stenosis.key_frames import KEY_FRAME_COUNT, key_frames  # noqa: E402
from LesionDetectLib.detectors.stenosis.model import save_stenosis_model  # noqa: E402
from LesionDetectLib.detectors.stenosis.preprocess import network_input  # noqa: E402
from LesionDetectLib.detectors.stenosis.vote import STENOSIS, clip_verdict  # noqa: E402
from LesionDetectLib.nets.frame_attention import FrameAttentionConfig, FrameAttentionNet  # noqa: E402

FINAL = "final"
VOTE_THRESHOLD = 0.5  # a key frame votes stenosis at this probability, in validation and in the card
CELL_STRIDE = 32  # MobileNetV2's feature map: one cell per 32 network pixels


def clip_inputs(seed: int, matrix: int, frame_count: int | None, input_size: int) -> dict:
    """One generated clip as the classifier reads it: its key frames' network input (float16), their labels (a
    stenosis box shows), the clip label, the key-frame indices and the true stenosis centres on each key frame."""
    started = time.perf_counter()
    clip = make_angiography_clip(seed, matrix=matrix, frame_count=frame_count)
    chosen = key_frames(clip.frames, clip.pixel_spacing_mm)
    indices = [int(k) for k in chosen.indices]
    inputs = network_input(clip.frames[indices], chosen.text_mask, input_size).half()  # as detect_stenosis does
    return {
        "seed": int(seed),
        "inputs": inputs,
        "frame_labels": torch.tensor([float(bool(clip.boxes_px[k])) for k in indices]),
        "clip_label": float(clip.label == STENOSIS),
        "key_frames": indices,
        "in_filled_phase": [bool(clip.filled_phase[k]) for k in indices],
        "centres_px": [[clip.stenoses[box["stenosis"]]["centre_px"][k] for box in clip.boxes_px[k]] for k in indices],
        "pixel_spacing_mm": [float(s) for s in clip.pixel_spacing_mm],
        "seconds": time.perf_counter() - started,  # generation, key frames and network input
    }


def cached_clip_inputs(seeds, data: dict, input_size: int, cache: Path | None, workers: int) -> list[dict]:
    """`clip_inputs` of every seed (training/seed_cache.py: spawned workers, kept in `cache` when given), so runs
    that compare models (with and without attention) read the same clips."""
    matrix, frame_count = data.get("matrix", 512), data.get("frame_count")

    def file_name(seed):
        return f"angio_{GENERATOR_VERSION}_m{matrix}_f{frame_count or 'run'}_s{input_size}_{seed}.pt"

    clips = cached_by_seed(clip_inputs, seeds, (matrix, frame_count, input_size), file_name, cache, workers)
    return [{**clip, "matrix": matrix} for clip in clips]


def cell_targets(clip: dict, input_size: int) -> torch.Tensor:
    """(key frames, g, g) 0…1 on the classifier's stride-32 cell grid (g = input_size / 32): a Gaussian of half a
    cell at each stenosis centre shown on the frame (the maximum where they overlap), zero on frames without one."""
    grid = -(-input_size // CELL_STRIDE)
    centres = (np.arange(grid) + 0.5) * CELL_STRIDE  # cell centres in network pixels
    targets = torch.zeros(len(clip["centres_px"]), grid, grid)
    for frame, shown in enumerate(clip["centres_px"]):
        for x, y in np.asarray(shown, dtype=float).reshape(-1, 2) * input_size / clip["matrix"]:
            blob = np.exp(-((centres[None, :] - x) ** 2 + (centres[:, None] - y) ** 2) / (2 * (CELL_STRIDE / 2) ** 2))
            targets[frame] = torch.maximum(targets[frame], torch.from_numpy(blob).float())
    return targets


def augmentation(config: dict, input_size: int):
    """The paper's augmentation as MONAI transforms of one (1, size, size) frame: a random crop of `crop_fraction`
    of the side resized back to the input size, an intensity shift of up to ±`intensity_shift`, and, only when
    `flip_left_right` is set, a left-right flip of half the frames."""
    from monai.transforms import Compose, EnsureType, RandFlip, RandScaleCrop, RandShiftIntensity, Resize

    steps = []
    if config.get("crop_fraction", 1.0) < 1.0:
        steps += [
            RandScaleCrop(roi_scale=config["crop_fraction"], random_size=False),
            Resize((input_size, input_size), mode="bilinear", anti_aliasing=True),
        ]
    if config.get("intensity_shift"):
        steps.append(RandShiftIntensity(offsets=config["intensity_shift"], prob=1.0))
    if config.get("flip_left_right"):
        steps.append(RandFlip(prob=0.5, spatial_axis=1))
    return Compose([*steps, EnsureType(data_type="tensor", track_meta=False)])


def key_frame_set(clips: list[dict], input_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    """Every key frame of the clips (float16), its label, its cell targets and the index of its clip."""
    clip_index = np.concatenate([np.full(len(c["frame_labels"]), n) for n, c in enumerate(clips)])
    targets = torch.cat([cell_targets(c, input_size) for c in clips])
    return torch.cat([c["inputs"] for c in clips]), torch.cat([c["frame_labels"] for c in clips]), targets, clip_index


def epoch_order(clip_index: np.ndarray, per_clip: int | None, rng) -> np.ndarray:
    """The frames one epoch trains on, shuffled: all of them, or `per_clip` drawn afresh from each clip (its key
    frames are near-duplicates, so an epoch of one per clip sees as many clips for a fifth of the cost)."""
    if per_clip is None:
        return rng.permutation(len(clip_index))
    chosen = [
        rng.choice(members, size=min(per_clip, len(members)), replace=False)
        for members in np.split(np.arange(len(clip_index)), np.flatnonzero(np.diff(clip_index)) + 1)
    ]
    return rng.permutation(np.concatenate(chosen))


def localisation_head(network: FrameAttentionNet) -> torch.nn.Conv2d | None:
    """Training only: a 1×1 convolution from the reduced cells (before attention) to one logit per cell; none with
    max pooling, where the network scores every cell itself and those scores are supervised."""
    return None if network.config.pooling == "max" else torch.nn.Conv2d(network.config.attention_dim, 1, 1)


def train_epoch(network, localiser, optimiser, data, order: np.ndarray, config: dict, augment) -> float:
    """One pass over the frames in `order`, each augmented; mean binary cross-entropy of the frame call, plus
    `localisation_weight` × that of the cell scores (the head's, or with max pooling the network's own) against the
    stenosis targets, positives weighted by `cell_positive_weight` (one cell in 64 holds a stenosis; the crop
    augmentation moves a centre by at most a fifth of a cell, left unmapped)."""
    frames, labels, targets = data
    batch, weight = config["batch"], config.get("localisation_weight", 0.0)
    positive_weight = torch.tensor(float(config.get("cell_positive_weight", 1.0)))
    network.train()
    total, steps = 0.0, 0
    for first in range(0, len(order), batch):
        index = order[first : first + batch]
        if len(index) < 2:  # batch norm needs two frames
            continue
        inputs = torch.stack([augment(frame) for frame in frames[index].float()]).clamp(0.0, 1.0)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(network(inputs), labels[index])
        if weight:
            cells = network.cell_logits if localiser is None else localiser(network.cells)[:, 0]
            cell_loss = torch.nn.functional.binary_cross_entropy_with_logits(
                cells, targets[index], pos_weight=positive_weight
            )
            loss = loss + weight * cell_loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        total, steps = total + loss.item(), steps + 1
    return total / max(steps, 1)


@torch.no_grad()
def frame_probabilities(network, clips: list[dict], batch: int = 32) -> list[np.ndarray]:
    """Per clip: the stenosis probability of each key frame, in eval mode."""
    network.eval()
    return [
        torch.cat([network(c["inputs"][n : n + batch].float()).sigmoid() for n in range(0, len(c["inputs"]), batch)])
        .double()
        .numpy()
        for c in clips
    ]


def validation_figures(network, clips: list[dict], threshold: float = VOTE_THRESHOLD) -> dict:
    """Key-frame loss, AUC and accuracy; clip AUC (mean key-frame probability) and accuracy (majority vote)."""
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    probabilities = frame_probabilities(network, clips)
    frame_truth = np.concatenate([c["frame_labels"].numpy() for c in clips])
    frame_scores = np.concatenate(probabilities)
    verdicts = [clip_verdict(p, threshold) for p in probabilities]
    clip_truth = np.array([c["clip_label"] for c in clips])

    def auc(truth, scores):
        return float(roc_auc_score(truth, scores)) if 0 < truth.sum() < len(truth) else None

    return {
        "loss": float(log_loss(frame_truth, frame_scores, labels=[0.0, 1.0])),
        "frame_auc": auc(frame_truth, frame_scores),
        "frame_accuracy": float(accuracy_score(frame_truth, frame_scores >= threshold)),
        "clip_auc": auc(clip_truth, np.array([v.probability for v in verdicts])),
        "clip_accuracy": float(accuracy_score(clip_truth, [v.verdict == STENOSIS for v in verdicts])),
    }


def new_network(model_config: dict, pretrained: str | None, seed: int) -> tuple[FrameAttentionNet, dict]:
    """The classifier with its trunk from ImageNet (`pretrained: imagenet`) or from scratch; the layers it adds
    are drawn from `seed`, so every run (fold, final, ablation) starts alike."""
    torch.manual_seed(seed)
    network = FrameAttentionNet(FrameAttentionConfig(**config_arguments(model_config)))
    if pretrained is None:
        return network, {"weights": "random initialisation (from scratch)"}
    if pretrained != "imagenet":
        raise ValueError(f"no {pretrained!r} weights for the MobileNetV2 trunk (only 'imagenet')")
    return network, load_imagenet_mobilenet_v2(network.trunk)


def train_run(name: str, run_index: int, start, train_clips, val_clips, settings: dict, out: Path, record) -> dict:
    """Train one network from `start()` on `train_clips` for the whole budget, scoring `val_clips` after every
    epoch; resumable from OUT/name/checkpoint.pt. Returns its state: epochs done, its last and its best epoch's
    figures; the best epoch's weights are in OUT/name/best.pt."""
    config, seed = settings["train"], settings["seed"]
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint_path = folder / "checkpoint.pt"
    network = start()
    localiser = localisation_head(network) if config.get("localisation_weight") else None
    parameters = [*network.parameters(), *(localiser.parameters() if localiser else [])]
    optimiser = torch.optim.Adam(parameters, lr=config["lr"])
    state = {"epochs": 0, "best": None, "last": None}
    if settings["resume"] and checkpoint_path.is_file():
        saved = torch.load(checkpoint_path, weights_only=True)
        network.load_state_dict(saved["network"])
        if localiser is not None:
            localiser.load_state_dict(saved["localiser"])
        optimiser.load_state_dict(saved["optimiser"])
        state = saved["state"]
    if state["epochs"] >= config["epochs"]:
        return state
    frames, labels, targets, clip_index = key_frame_set(train_clips, settings["input_size"])
    augment = augmentation(settings["augmentation"], settings["input_size"])
    for epoch in range(state["epochs"], config["epochs"]):
        epoch_started = time.perf_counter()
        rng = np.random.default_rng([seed, run_index, epoch])
        augment.set_random_state(seed=int(rng.integers(2**31)))
        torch.manual_seed(int(rng.integers(2**31)))  # dropout
        order = epoch_order(clip_index, config.get("key_frames_per_clip"), rng)
        data = (frames, labels, targets)
        train_loss = train_epoch(network, localiser, optimiser, data, order, config, augment)
        figures = validation_figures(network, val_clips)
        state["epochs"], state["last"] = epoch + 1, {"epoch": epoch, **figures}
        if state["best"] is None or figures["loss"] < state["best"]["loss"]:
            state["best"] = state["last"]
            torch.save(network.state_dict(), folder / "best.pt")
        torch.save(
            {
                "network": network.state_dict(),
                "localiser": localiser.state_dict() if localiser else {},
                "optimiser": optimiser.state_dict(),
                "state": state,
            },
            checkpoint_path,
        )
        record(
            {
                "stage": name,
                "epoch": epoch,
                "train_loss": train_loss,
                **{f"val_{key}": value for key, value in figures.items()},
                "seconds": time.perf_counter() - epoch_started,
            }
        )
    return state


def cross_validation_summary(fold_states: list[dict]) -> dict:
    """Each fold's figures after its last epoch, and their mean and sample standard deviation over the folds."""
    folds = [state["last"] for state in fold_states]
    summary = {"folds": folds}
    for key in ("frame_auc", "frame_accuracy", "clip_accuracy", "clip_auc"):
        values = [fold[key] for fold in folds if fold[key] is not None]
        summary[key] = {
            "mean": float(np.mean(values)) if values else None,
            "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None,
        }
    return summary


def clip_counts(clips: list[dict]) -> dict:
    return {
        "clips": len(clips),
        "stenosis_clips": int(sum(c["clip_label"] for c in clips)),
        "key_frames": int(sum(len(c["frame_labels"]) for c in clips)),
        "positive_key_frames": int(sum(c["frame_labels"].sum() for c in clips)),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--folds", type=int, help="stratified K-fold cross-validation first (default: config's)")
    parser.add_argument("--attention", choices=("on", "off"), help="override the config's model.attention")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--install", action="store_true", help="copy the bundle into LesionDetect/Resources/Models")
    parser.add_argument("--cache", type=Path, help="a folder that keeps the generated clips for later runs")
    parser.add_argument("--workers", type=int, default=1, help="processes that generate clips")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.config.read_text())
    model_config = dict(config["model"])
    pretrained = model_config.pop("pretrained", None)
    version = config["version"]
    if args.attention:
        model_config["attention"] = args.attention == "on"
        if not model_config["attention"] and "no-attention" not in version:
            version += "-no-attention"
    folds = config.get("folds", 0) if args.folds is None else args.folds
    seed, size, data = config["seed"], config["input_size"], config["data"]
    if args.threads:
        torch.set_num_threads(args.threads)
    record = run_log(args.out)

    started = time.perf_counter()
    train_clips = cached_clip_inputs(range(*data["train_seeds"]), data, size, args.cache, args.workers)
    val_data = {**data, **data.get("val", {})}  # validation clips may be drawn as the product meets them
    val_clips = cached_clip_inputs(range(*data["val_seeds"]), val_data, size, args.cache, args.workers)
    record(
        {
            "stage": "data",
            "train": clip_counts(train_clips),
            "val": clip_counts(val_clips),
            "seconds_per_clip_when_generated": float(np.mean([c["seconds"] for c in train_clips + val_clips])),
            "seconds": time.perf_counter() - started,
        }
    )
    _, backbone_start = new_network(model_config, pretrained, seed)
    record({"stage": "backbone", "attention": model_config.get("attention", True), **backbone_start})

    patch_config = config.get("patch_pretraining")

    def starter(name: str, clips: tuple[list, list]):
        """The start of a run on `clips` (training, validation): the trunk taught on their patches first (stage 1,
        in OUT/<name>_patch) when the config asks, so a fold's held-out clips stay unseen."""
        trunk_state = None
        if patch_config:
            network = new_network(model_config, pretrained, seed)[0]
            folder = args.out / f"{name}_patch"
            patches = pretrain_trunk(network.trunk, clips, size, patch_config, seed, folder, record, args.resume)
            trunk_state = network.trunk.state_dict()
            backbone_start["patch_pretraining"] = {**patch_config, **patches}

        def start():
            network = new_network(model_config, pretrained, seed)[0]
            if trunk_state is not None:
                network.trunk.load_state_dict(trunk_state)
            return network

        return start

    settings = {
        "seed": seed,
        "input_size": size,
        "train": config["train"],
        "augmentation": config.get("augmentation", {}),
        "resume": args.resume,
    }
    cross_validation = None
    if folds > 1:
        from sklearn.model_selection import StratifiedKFold

        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        clip_labels = [c["clip_label"] for c in train_clips]
        fold_states = []
        for fold, (fit, held_out) in enumerate(splitter.split(np.zeros(len(clip_labels)), clip_labels)):
            fit_clips, held_out_clips = [train_clips[n] for n in fit], [train_clips[n] for n in held_out]
            start = starter(f"fold{fold}", (fit_clips, held_out_clips))
            fold_states.append(
                train_run(f"fold{fold}", fold + 1, start, fit_clips, held_out_clips, settings, args.out, record)
            )
        cross_validation = {"k": folds, "scored_after_epoch": config["train"]["epochs"] - 1}
        cross_validation.update(cross_validation_summary(fold_states))
        record({"stage": "cross_validation", **cross_validation})

    start = starter(FINAL, (train_clips, val_clips))
    final = train_run(FINAL, 0, start, train_clips, val_clips, settings, args.out, record)
    network = start()
    network.load_state_dict(torch.load(args.out / FINAL / "best.pt", weights_only=True))
    record({"stage": "final_best", **final["best"]})
    card = {
        "version": version,
        "architecture": (
            f"MobileNetV2 x1.0 trunk → 1×1 convolution to {network.config.attention_dim} → "
            + ("one MONAI self-attention block (residual, layer norm)" if network.config.attention else "no attention")
            + (
                " → mean over cells → linear"
                if network.config.pooling == "mean"
                else " → linear on every cell → the highest cell (max pooling)"
            )
            + ": one stenosis logit per key frame; the clip by majority vote"
            + (
                ""
                if not config["train"].get("localisation_weight")
                else "; every cell's score also trained against the stenosis targets"
                if network.config.pooling == "max"
                else "; trained with a training-only 1×1 localisation head on the reduced cells (not exported)"
            )
        ),
        "attention": network.config.attention,
        "backbone_start": backbone_start,
        "training_data": {
            "generator": "training/synthetic_angiography.py",
            "generator_version": GENERATOR_VERSION,
            **data,
            "key_frames": f"{KEY_FRAME_COUNT} per clip by detectors/stenosis/key_frames.py on the rendered frames",
            "frame_label": "a key frame is positive when a stenosis box shows on it",
            "train": clip_counts(train_clips),
            "val": clip_counts(val_clips),
        },
        "augmentation": settings["augmentation"],
        "training": {
            **config["train"],
            "optimiser": "Adam",
            "loss": "binary cross-entropy",
            "kept_epoch": final["best"]["epoch"],
            "kept_val_loss": final["best"]["loss"],
        },
        "cross_validation": cross_validation,
        "validation": final["best"],
        "threshold": VOTE_THRESHOLD,
        "seed": seed,
        "caution": "trained and validated on synthetic angiography cines only; not validated on real runs or for "
        "clinical use.",
    }
    manifest = save_stenosis_model(network.eval(), size, args.out / "model", card)
    if args.install:
        install_bundle(manifest)
    print(f"Model written to {manifest.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

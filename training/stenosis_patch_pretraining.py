"""Stage 1 of train_stenosis.py: teach the trunk what a stenosis looks like locally, before it sees whole frames.

A frame label says only that a stenosis shows somewhere on a 256² key frame; on 800 clips the frame model learns
the clips rather than the lesion. Patches make the lesion the whole question: `patch`² crops of the key frames'
network input centred (± `jitter` px) on every shown stenosis are positives; crops on vessel pixels (the darkest
`vessel_percentile` % of the frame: contrast-filled vessels are dark) at least `clearance` px from every shown
stenosis are negatives, drawn from normal frames *and* from the healthy parts of frames with a stenosis, so
"a vessel" or "this clip" is no shortcut. The trunk (MobileNetV2, ImageNet start) plus a linear layer on its mean
feature learns positive against negative with flips and quarter turns; validation patches come from the
validation clips. The trunk of the epoch with the lowest validation loss starts the frame stage.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from LesionDetectLib.nets import mobilenet_v2


class PatchClassifier(nn.Module):
    """The frame model's trunk + a linear layer on its mean feature: one stenosis logit per patch."""

    def __init__(self, trunk: mobilenet_v2.MobileNetV2Features) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = nn.Linear(mobilenet_v2.FEATURES, 1)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk.feature_map(patches.expand(-1, 3, -1, -1)).mean(dim=(2, 3)))[:, 0]


def patch_set(clips: list[dict], input_size: int, config: dict, rng) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 1, patch, patch) float16 crops of every key frame's network input and their labels (1: stenosis)."""
    size, jitter, clearance = config["patch"], config["jitter"], config["clearance"]
    patches, labels = [], []
    for clip in clips:
        scale = input_size / clip["matrix"]
        for frame, shown in zip(clip["inputs"][:, 0].float().numpy(), clip["centres_px"]):
            padded = np.pad(frame, size // 2, mode="edge")
            centres = np.asarray(shown, dtype=float).reshape(-1, 2) * scale  # (x, y) in network pixels
            for x, y in centres:
                column, row = np.clip(
                    np.rint([x, y]).astype(int) + rng.integers(-jitter, jitter + 1, 2), 0, frame.shape[0] - 1
                )
                patches.append(padded[row : row + size, column : column + size])
                labels.append(1.0)
            rows, columns = np.nonzero(frame <= np.percentile(frame, config["vessel_percentile"]))
            far = np.ones(len(rows), dtype=bool)
            for x, y in centres:
                far &= np.hypot(columns - x, rows - y) >= clearance
            for pick in rng.choice(
                np.flatnonzero(far), size=min(config["negatives_per_frame"], far.sum()), replace=False
            ):
                patches.append(padded[rows[pick] : rows[pick] + size, columns[pick] : columns[pick] + size])
                labels.append(0.0)
    return torch.from_numpy(np.stack(patches)[:, None]).half(), torch.tensor(labels)


def _turned(patches: torch.Tensor, rng) -> torch.Tensor:
    """One flip-and-quarter-turn for the batch (a stenosis has no orientation)."""
    if rng.random() < 0.5:
        patches = patches.flip(-1)
    return torch.rot90(patches, int(rng.integers(4)), (2, 3))


@torch.no_grad()
def patch_figures(classifier: PatchClassifier, patches: torch.Tensor, labels: torch.Tensor, batch: int = 256) -> dict:
    from sklearn.metrics import log_loss, roc_auc_score

    classifier.eval()
    scores = torch.cat([classifier(patches[n : n + batch].float()) for n in range(0, len(patches), batch)]).sigmoid()
    truth, scores = labels.numpy(), scores.double().numpy()
    return {"loss": float(log_loss(truth, scores, labels=[0.0, 1.0])), "auc": float(roc_auc_score(truth, scores))}


def pretrain_trunk(
    trunk, clips: tuple[list, list], input_size: int, config: dict, seed: int, folder: Path, record, resume: bool
) -> dict:
    """Train `trunk` in place on the patches of the (training, validation) clips for `config["epochs"]` (with
    `resume`, from folder/checkpoint.pt); load the best epoch's trunk into it and return that epoch's figures with
    the patch counts."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 101])
    train, val = (patch_set(part, input_size, config, rng) for part in clips)
    torch.manual_seed(seed)
    classifier = PatchClassifier(trunk)
    optimiser = torch.optim.Adam(classifier.parameters(), lr=config["lr"])
    state = {"epochs": 0, "best": None}
    checkpoint_path = folder / "checkpoint.pt"
    if resume and checkpoint_path.is_file():
        saved = torch.load(checkpoint_path, weights_only=True)
        classifier.load_state_dict(saved["classifier"])
        optimiser.load_state_dict(saved["optimiser"])
        state = saved["state"]
    for epoch in range(state["epochs"], config["epochs"]):
        started = time.perf_counter()
        epoch_rng = np.random.default_rng([seed, 102, epoch])
        order = epoch_rng.permutation(len(train[1]))
        classifier.train()
        for first in range(0, len(order) - 1, config["batch"]):
            index = order[first : first + config["batch"]]
            logits = classifier(_turned(train[0][index].float(), epoch_rng))
            loss = nn.functional.binary_cross_entropy_with_logits(logits, train[1][index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        figures = patch_figures(classifier, *val)
        state["epochs"] = epoch + 1
        if state["best"] is None or figures["loss"] < state["best"]["loss"]:
            state["best"] = {"epoch": epoch, **figures}
            torch.save(trunk.state_dict(), folder / "best_trunk.pt")
        torch.save(
            {"classifier": classifier.state_dict(), "optimiser": optimiser.state_dict(), "state": state},
            checkpoint_path,
        )
        record(
            {
                "stage": folder.name,
                "epoch": epoch,
                **{f"val_{k}": v for k, v in figures.items()},
                "seconds": time.perf_counter() - started,
            }
        )
    trunk.load_state_dict(torch.load(folder / "best_trunk.pt", weights_only=True))
    counts = {
        "train_patches": len(train[1]),
        "train_positive": int(train[1].sum()),
        "val_patches": len(val[1]),
        "val_positive": int(val[1].sum()),
    }
    return {**state["best"], **counts}

"""Grad-CAM heatmaps of the per-slice CNN (MONAI's `GradCAM`), one per label called positive, and their union.

Each map is computed on the network's input square for the slices where the label's probability reaches the
threshold, scaled there to 0…1 (min → 0, max → 1: `nets.cam.grad_cam`) and weighted by that slice's probability,
so a slice the model doubts glows less. The union is the pixel-wise maximum over the positive labels, as the paper's
radiologists asked ("show all bleeding regions").
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from LesionDetectLib.detectors.hemorrhage.labels import LABELS
from LesionDetectLib.nets.cam import grad_cam


class _CnnLogits(nn.Module):
    """The slice CNN with its logits only, as `GradCAM` expects."""

    def __init__(self, cnn: nn.Module) -> None:
        super().__init__()
        self.cnn = cnn

    def forward(self, slices: torch.Tensor) -> torch.Tensor:
        return self.cnn(slices)[1]


def label_heatmaps(
    network,
    inputs: torch.Tensor,
    slice_probabilities: np.ndarray,
    labels: list[str],
    threshold: float,
    target_layer: str | None = None,
) -> dict[str, np.ndarray]:
    """Label → (slices, size, size) float32 0…1 on the input square; zero on slices below `threshold`. The
    layer is named within the network; by default the one its backbone names (`SliceCNN.cam_layer`)."""
    target_layer = target_layer or f"cnn.{network.cnn.cam_layer}"
    cnn_logits = _CnnLogits(network.cnn).eval()
    maps = {}
    for label in labels:
        index = LABELS.index(label)
        probabilities = slice_probabilities[:, index]
        heat = np.zeros((len(inputs), *inputs.shape[-2:]), dtype=np.float32)
        hot = np.nonzero(probabilities >= threshold)[0]
        if len(hot):
            heat[hot] = grad_cam(cnn_logits, inputs[hot], target_layer, index) * probabilities[hot, None, None]
        maps[label] = heat
    return maps


def union(maps: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The pixel-wise maximum of the maps and, per pixel, the index into `maps` of the label that gives it."""
    stacked = np.stack(list(maps.values()))
    return stacked.max(axis=0), stacked.argmax(axis=0)

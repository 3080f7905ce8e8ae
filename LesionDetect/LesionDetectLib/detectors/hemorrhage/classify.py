"""The classification pass: per-slice CNN, reduction and BiLSTM over the scan's slices, in slice order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

CNN_BATCH = 32


@dataclass
class SliceProbabilities:
    final: np.ndarray  # (slices, 6): the BiLSTM's, the detector's answer
    cnn: np.ndarray  # (slices, 6): the per-slice CNN alone (slice mode's answer; the paper's comparison)

    @property
    def scan(self) -> np.ndarray:
        """(6,) a scan holds a label where its most likely slice does."""
        return self.final.max(axis=0)


@torch.no_grad()
def classify_slices(network, inputs: torch.Tensor, device: str = "cpu") -> SliceProbabilities:
    """Probabilities of every slice of one scan; `inputs` (slices, 3, size, size), inferior to superior."""
    network = network.to(device).eval()
    features, logits = [], []
    for first in range(0, len(inputs), CNN_BATCH):
        batch_features, batch_logits = network.cnn(inputs[first : first + CNN_BATCH].to(device).float())
        features.append(batch_features)
        logits.append(batch_logits)
    features, cnn_logits = torch.cat(features), torch.cat(logits)
    final = network.sequence(network.reduction(features)[None], cnn_logits[None])[0]
    return SliceProbabilities(final.sigmoid().cpu().numpy(), cnn_logits.sigmoid().cpu().numpy())


@torch.no_grad()
def classify_single_slice(network, inputs: torch.Tensor, device: str = "cpu") -> np.ndarray:
    """(1, 6) the per-slice CNN's probabilities of one image: a sequence of one slice is not what the BiLSTM
    was trained on."""
    network = network.to(device).eval()
    return network.cnn(inputs.to(device).float())[1].sigmoid().cpu().numpy()

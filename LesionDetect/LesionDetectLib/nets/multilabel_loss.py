"""The RSNA 2019 weighted multi-label log loss: binary cross-entropy per label, averaged with label weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def weighted_log_loss(logits: Tensor, targets: Tensor, weights, known: Tensor | None = None) -> Tensor:
    """Mean over rows of Σ_label w·BCE / Σ w; logits and targets (…, labels), `weights` one per label.

    `known` (…, labels) of 0/1 leaves out the labels a row does not have (e.g. subtypes of a slice labelled
    "any" only): each row averages over its known labels.
    """
    weights = torch.as_tensor(weights, dtype=logits.dtype, device=logits.device)
    per_label = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")
    if known is None:
        return (per_label @ weights / weights.sum()).mean()
    weighted = known.to(logits.dtype) * weights
    return ((per_label * weighted).sum(-1) / weighted.sum(-1).clamp_min(1e-12)).mean()

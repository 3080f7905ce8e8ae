"""The RSNA 2019 weighted multi-label log loss: binary cross-entropy per label, averaged with label weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def weighted_log_loss(logits: Tensor, targets: Tensor, weights) -> Tensor:
    """Mean over rows of Σ_label w·BCE / Σ w; logits and targets (…, labels), `weights` one per label."""
    weights = torch.as_tensor(weights, dtype=logits.dtype, device=logits.device)
    per_label = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")
    return (per_label @ weights / weights.sum()).mean()

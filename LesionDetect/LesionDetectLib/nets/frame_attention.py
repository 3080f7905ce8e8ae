"""A frame classifier: CNN feature map → one self-attention module → one logit (normal / abnormal; METHODS.md E).

The CNN (MobileNetV2 ×1.0, which can start from ImageNet weights) gives a stride-32 feature map; a 1×1
convolution reduces it to `attention_dim` channels; MONAI's multi-head self-attention block (`SABlock`) lets
every cell attend to every other, added back to its input (residual, layer-normed). `pooling` says how the cells
become one logit: `mean` averages them and a linear layer scores the mean; `max` scores every cell with that linear
layer and keeps the highest (multiple-instance pooling: a frame is abnormal when one place is, so a finding in one
of 64 cells is not averaged away). `attention=False` is the same network without the module, for the paper's
ablation.

`cells` keeps the last forward pass's reduced feature map (N, attention_dim, H / 32, W / 32), for a localisation head
that only a training script adds (the exported network has no such head); with `max` pooling, `cell_logits` keeps
every cell's score, which a training script can supervise directly.

`attention_map` returns, as a (H / 32, W / 32) heatmap, how much each cell's value went into what was scored: with
`mean` pooling the mean over queries of the attention matrix (the cells are averaged after the attention), with
`max` pooling the attention row of the cell that scored highest (where the winner drew its context from, not where
the finding is: `evidence_map` gives the cell scores there).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from LesionDetectLib.nets import mobilenet_v2


@dataclass
class FrameAttentionConfig:
    attention: bool = True
    attention_dim: int = 128
    heads: int = 4
    dropout: float = 0.2
    in_channels: int = 1  # grey frames, repeated to the trunk's three channels
    pooling: str = "mean"  # "mean": score the mean cell; "max": score every cell, keep the highest


POOLINGS = ("mean", "max")
# Grad-CAM's layer: with max pooling the stride-16 block, since the score already says which stride-32 cell holds the
# finding and Grad-CAM should say where in it (on validation frames the stride-32 layer's peak lay a median 81 px of
# 256 from the finding, the stride-16 layer's, combined with the cell scores, 17 px)
CAM_LAYERS = {"mean": "trunk.features.18", "max": "trunk.features.13"}


class FrameAttentionNet(nn.Module):
    """Frames (N, 1, H, W) in 0…1 → logits (N,); `attention_map` after a forward pass."""

    def __init__(self, config: FrameAttentionConfig) -> None:
        super().__init__()
        if config.pooling not in POOLINGS:
            raise ValueError(f"pooling {config.pooling!r} is not one of {', '.join(POOLINGS)}")
        self.config = config
        self.cam_layer = CAM_LAYERS[config.pooling]
        self.trunk = mobilenet_v2.MobileNetV2Features()
        self.reduce = nn.Conv2d(mobilenet_v2.FEATURES, config.attention_dim, 1)
        if config.attention:
            from monai.networks.blocks import SABlock

            self.attention = SABlock(config.attention_dim, config.heads, config.dropout, save_attn=True)
            self.norm = nn.LayerNorm(config.attention_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.attention_dim, 1)
        self.cells = None
        self.cell_logits = None  # with max pooling: every cell's score (N, H / 32, W / 32) of the last pass
        self.winners = None  # and the index of each frame's highest-scoring cell

    def forward(self, frames: Tensor) -> Tensor:
        cells = self.reduce(self.trunk.feature_map(frames.expand(-1, 3, -1, -1)))
        self.cells = cells
        tokens = cells.flatten(2).transpose(1, 2)  # (N, cells, dim)
        if self.config.attention:
            tokens = self.norm(tokens + self.attention(tokens))
        if self.config.pooling == "mean":
            return self.head(self.dropout(tokens.mean(dim=1)))[:, 0]
        per_cell = self.head(self.dropout(tokens))[..., 0]
        self.cell_logits = per_cell.view(-1, *cells.shape[-2:])
        scores, self.winners = per_cell.max(dim=1)
        return scores

    def evidence_map(self) -> Tensor | None:
        """(N, H / 32, W / 32) of the last forward pass: where the network finds the frame's evidence. With max
        pooling every cell's finding probability (its own score, trained on the finding positions); with mean
        pooling the attention map; None for mean pooling without attention."""
        if self.config.pooling == "max":
            return self.cell_logits.sigmoid()
        return self.attention_map() if self.config.attention else None

    def attention_map(self) -> Tensor:
        """(N, H / 32, W / 32) of the last forward pass: each cell's weight in the pooled vector, summing to 1."""
        if not self.config.attention or self.cells is None:
            raise RuntimeError("no attention map: the network has no attention module or has not run yet")
        rows = self.attention.att_mat.mean(dim=1)  # over heads → (N, queries, cells)
        if self.config.pooling == "mean":
            weights = rows.mean(dim=1)
        else:
            weights = rows[torch.arange(len(rows)), self.winners]
        return weights.view(-1, *self.cells.shape[-2:])

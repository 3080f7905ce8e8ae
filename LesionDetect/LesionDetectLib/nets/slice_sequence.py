"""Per-slice CNN → feature reduction to 120 → 3-layer BiLSTM over slices → 6 sigmoid outputs (METHODS.md D).

The CNN (a 2D ResNet trunk from MONAI, basic blocks, widths scaled for the CPU; or MobileNetV2, which can start
from ImageNet weights) gives each slice a feature vector and its own six logits. A fixed linear reduction (PCA
fitted on training features, stored as buffers with the weights) maps the features to 120 values; a
bidirectional LSTM reads them over the scan's slices in order; the CNN's six probabilities are concatenated with
the LSTM's output before the last layer, which gives six logits per slice. The scan's probability of a label is
its highest slice probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from monai.networks.nets.resnet import ResNet, ResNetBlock
from torch import Tensor, nn

from LesionDetectLib.nets import mobilenet_v2

RESNET18_WIDTHS = (64, 128, 256, 512)
BACKBONES = ("resnet", "mobilenet_v2")
CAM_LAYERS = {"resnet": "layer2", "mobilenet_v2": mobilenet_v2.STRIDE_16_LAYER}  # where Grad-CAM finds blood best


@dataclass
class SliceSequenceConfig:
    labels: int = 6
    in_channels: int = 3
    backbone: str = "resnet"  # one of BACKBONES; mobilenet_v2 is ×1.0 and takes 3 channels
    width: float = 0.25  # ResNet-18 widths × width
    blocks: tuple = (2, 2, 2, 2)
    reduced: int = 120
    lstm_hidden: int = 256
    lstm_layers: int = 3
    dropout: float = 0.3


class SliceCNN(nn.Module):
    """A 2D trunk (ResNet or MobileNetV2), pooled: slices (N, C, H, W) → features (N, F) and logits (N, labels)."""

    def __init__(self, config: SliceSequenceConfig) -> None:
        super().__init__()
        if config.backbone not in BACKBONES:
            raise ValueError(f"backbone {config.backbone!r} is not one of {', '.join(BACKBONES)}")
        if config.backbone == "mobilenet_v2":
            if config.in_channels != 3:
                raise ValueError(f"mobilenet_v2 takes 3 channels, not {config.in_channels}")
            self.trunk, self.features = mobilenet_v2.MobileNetV2Features(), mobilenet_v2.FEATURES
        else:
            widths = [max(8, round(c * config.width)) for c in RESNET18_WIDTHS]
            self.trunk = ResNet(
                block=ResNetBlock,
                layers=list(config.blocks),
                block_inplanes=widths,
                spatial_dims=2,
                n_input_channels=config.in_channels,
                feed_forward=False,
                bias_downsample=False,
            )
            self.features = widths[-1] * ResNetBlock.expansion
        self.cam_layer = f"trunk.{CAM_LAYERS[config.backbone]}"
        self.head = nn.Linear(self.features, config.labels)

    def forward(self, slices: Tensor) -> tuple[Tensor, Tensor]:
        features = self.trunk(slices)
        return features, self.head(features)


class FeatureReduction(nn.Module):
    """(x − mean) · componentsᵀ: a PCA fitted in training, kept as buffers so it travels with the weights."""

    def __init__(self, features: int, reduced: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("components", torch.eye(reduced, features))

    def set_pca(self, mean: Tensor, components: Tensor) -> None:
        """Take a fitted PCA's mean (F,) and components (reduced, F), e.g. scikit-learn's."""
        if components.shape != self.components.shape or mean.shape != self.mean.shape:
            raise ValueError(f"PCA of shape {tuple(components.shape)} does not fit {tuple(self.components.shape)}")
        self.mean.copy_(mean)
        self.components.copy_(components)

    def forward(self, features: Tensor) -> Tensor:
        return (features - self.mean) @ self.components.T


class SliceSequenceNet(nn.Module):
    """Scans (B, S, C, H, W), slices in order → slice logits (B, S, labels) and the CNN's own (B, S, labels)."""

    def __init__(self, config: SliceSequenceConfig) -> None:
        super().__init__()
        self.config = config
        self.cnn = SliceCNN(config)
        self.reduction = FeatureReduction(self.cnn.features, config.reduced)
        self.lstm = nn.LSTM(
            config.reduced,
            config.lstm_hidden,
            num_layers=config.lstm_layers,
            dropout=config.dropout,
            bidirectional=True,
            batch_first=True,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(2 * config.lstm_hidden + config.labels, config.labels)

    def forward(self, scans: Tensor) -> tuple[Tensor, Tensor]:
        batch, slices = scans.shape[:2]
        features, cnn_logits = self.cnn(scans.flatten(0, 1))
        cnn_logits = cnn_logits.view(batch, slices, -1)
        return self.sequence(self.reduction(features).view(batch, slices, -1), cnn_logits), cnn_logits

    def sequence(self, reduced: Tensor, cnn_logits: Tensor) -> Tensor:
        """Slice logits from reduced features (B, S, reduced) and the CNN's logits (B, S, labels)."""
        sequence, _ = self.lstm(reduced)
        return self.head(torch.cat([self.dropout(sequence), cnn_logits.sigmoid()], dim=-1))


def scan_probabilities(slice_logits: Tensor) -> Tensor:
    """(B, S, labels) slice logits → (B, labels): a scan holds a label where its most likely slice does."""
    return slice_logits.sigmoid().amax(dim=1)

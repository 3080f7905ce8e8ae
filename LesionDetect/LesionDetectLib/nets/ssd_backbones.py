"""SSD backbones: trunks that return their head feature maps (first one at stride 8, 4 for the clipped ResNet-50).

Each trunk's forward(images, enhance=None) gives the maps, and `out_channels` their widths; `enhance` (the FE
layer, during training) edits the first map inside the trunk, so the deeper maps are computed from it too. Every
stride-2 step (convs with padding, ceil-mode pools) takes a side to ceil(side / 2), so a map at stride s of an
image of side S has side ceil(S / s), for any S.
"""

from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from monai.networks.nets.resnet import ResNetBlock
from torch import Tensor, nn

from LesionDetectLib.nets.clipped_resnet import ClippedResNet50, ResNetTrunk, scaled_width
from LesionDetectLib.nets.mobilenet_v2 import FEATURES, MobileNetV2Features
from LesionDetectLib.nets.ssd_extras import conv_bn_relu

Enhance = Callable[[Tensor], Tensor] | None
VGG16_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3))  # conv1..conv4: width, 3x3 convs
VGG16_CONV5 = 512  # three 3x3 convs, as conv4
VGG16_FC = 1024
L2NORM_SCALE = 20.0  # SSD's initial scale of the normalised conv4_3
MOBILENET_V2_HEADS = {6: 32, 13: 96, 18: FEATURES}  # features.N whose output feeds a head: its channels


class L2Norm(nn.Module):
    """Each location's channel vector scaled to unit length, then by a learned per-channel scale (SSD's conv4_3)."""

    def __init__(self, channels: int, scale: float = L2NORM_SCALE) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), scale))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=1) * self.weight.view(1, -1, 1, 1)


def vgg_stage(stage: int, in_channels: int, out_channels: int, convs: int) -> list[tuple[str, nn.Module]]:
    """conv{stage}_1 .. conv{stage}_{convs}: 3x3 pad-1 conv, batch norm, ReLU."""
    return [
        (f"conv{stage}_{n + 1}", conv_bn_relu(in_channels if n == 0 else out_channels, out_channels, 3, padding=1))
        for n in range(convs)
    ]


class VGG16(nn.Module):
    """SSD's VGG-16 (Liu et al. 2016), conv1_1..fc7, with batch norm after every conv as it is trained from scratch.

    3x3 convs conv1_1..conv5_3 with 2x2 ceil-mode max-pools between stages (300 -> 38 at conv4_3), pool5 3x3
    stride 1 pad 1, fc6 3x3 dilation 6, fc7 1x1; widths (64 .. 512, fc 1024) scaled by `width`. Head maps: conv4_3
    (stride 8) through L2 normalisation with a learned per-channel scale starting at 20, and fc7 (stride 16).
    """

    def __init__(self, in_channels: int, width: float = 1.0) -> None:
        super().__init__()
        layers, channels = [], in_channels
        for stage, (out, convs) in enumerate(VGG16_STAGES, start=1):
            if stage > 1:
                layers.append((f"pool{stage - 1}", nn.MaxPool2d(2, 2, ceil_mode=True)))
            layers += vgg_stage(stage, channels, scaled_width(out, width), convs)
            channels = scaled_width(out, width)
        conv4, conv5, fc = channels, scaled_width(VGG16_CONV5, width), scaled_width(VGG16_FC, width)
        self.to_conv4_3 = nn.Sequential(OrderedDict(layers))
        self.conv4_3_norm = L2Norm(conv4)
        self.to_fc7 = nn.Sequential(
            OrderedDict(
                [
                    ("pool4", nn.MaxPool2d(2, 2, ceil_mode=True)),
                    *vgg_stage(5, conv4, conv5, 3),
                    ("pool5", nn.MaxPool2d(3, 1, 1)),
                    ("fc6", conv_bn_relu(conv5, fc, 3, padding=6, dilation=6)),
                    ("fc7", conv_bn_relu(fc, fc, 1)),
                ]
            )
        )
        self.out_channels = [conv4, fc]

    def forward(self, images: Tensor, enhance: Enhance = None) -> list[Tensor]:
        """Images [B, in_channels, H, W] -> [normalised conv4_3, fc7].

        `enhance` acts on conv4_3 on both paths: into pool4 and, after the L2 normalisation (which would undo a
        per-location scaling such as FE's), into the head."""
        conv4_3 = self.to_conv4_3(images)
        head = self.conv4_3_norm(conv4_3)
        if enhance is not None:
            conv4_3, head = enhance(conv4_3), enhance(head)
        return [head, self.to_fc7(conv4_3)]


class ResNet34(ResNetTrunk):
    """ResNet-34 (MONAI's 2D ResNet, basic blocks (3, 4, 6, 3), widths 64..512 scaled by `width`), standard
    7x7 stride-2 stem and max-pool. Head maps: layer2, layer3, layer4 (strides 8, 16, 32)."""

    def __init__(self, in_channels: int, width: float = 1.0, blocks: tuple = (3, 4, 6, 3)) -> None:
        super().__init__(ResNetBlock, in_channels, width, blocks, conv1_t_size=7, conv1_t_stride=2)
        self.out_channels = self.widths[1:]


class MobileNetV2Trunk(nn.Module):
    """MobileNetV2 x1.0 (nets/mobilenet_v2.py), ImageNet-loadable as `mobilenet`; three channels in 0...1.

    Head maps: the outputs of features.6 (stride 8, 32 channels), features.13 (16, 96) and features.18 (32, 1280).
    """

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        if in_channels != 3:
            raise ValueError(f"the mobilenet_v2 backbone takes 3 channels, not {in_channels}")
        self.mobilenet = MobileNetV2Features()
        self.out_channels = list(MOBILENET_V2_HEADS.values())

    def forward(self, images: Tensor, enhance: Enhance = None) -> list[Tensor]:
        """Images [B, 3, H, W] -> the three head maps; `enhance` edits the first before features.7 sees it."""
        x = (images - self.mobilenet.mean) / self.mobilenet.std
        maps = []
        for index, layer in enumerate(self.mobilenet.features):
            x = layer(x)
            if index in MOBILENET_V2_HEADS:
                if not maps and enhance is not None:
                    x = enhance(x)
                maps.append(x)
        return maps


class Backbone(NamedTuple):
    """An SSD backbone: how to build its trunk from an SSDConfig, the strides of its head maps, and how many
    stride-2 extra layers follow it (None: SSD's rule, while the map is larger than 3)."""

    build: Callable[..., nn.Module]
    strides: tuple[int, ...]
    extra_down_steps: int | None = None


BACKBONES = {
    # for small candidate crops, as shipped: one stride-2 extra layer, then the whole-map one
    "clipped_resnet50": Backbone(lambda c: ClippedResNet50(c.in_channels, c.width, c.blocks), (4, 8, 16), 1),
    "vgg16": Backbone(lambda c: VGG16(c.in_channels, c.width), (8, 16)),
    "resnet34": Backbone(lambda c: ResNet34(c.in_channels, c.width, c.blocks), (8, 16, 32)),
    "mobilenet_v2": Backbone(lambda c: MobileNetV2Trunk(c.in_channels), (8, 16, 32)),
}


def backbone_by_name(name: str) -> Backbone:
    """The named backbone, or a ValueError that lists the choices."""
    if name not in BACKBONES:
        raise ValueError(f"unknown SSD backbone {name!r}: choose one of {', '.join(BACKBONES)}")
    return BACKBONES[name]

"""ResNet trunks for SSDs (MONAI's 2D ResNet); the clipped ResNet-50 suits small candidate crops (METHODS.md A)."""

from collections.abc import Callable

from monai.networks.nets.resnet import ResNet, ResNetBottleneck
from torch import Tensor

RESNET50_WIDTHS = (64, 128, 256, 512)  # 1x1/3x3 widths of the conv2..conv5 bottlenecks; their last 1x1 is 4x wider


def scaled_width(channels: int, width: float) -> int:
    """A ResNet channel count scaled by `width`, at least 8."""
    return max(8, round(channels * width))


class ResNetTrunk(ResNet):
    """MONAI's ResNet returning the layer2, layer3 and layer4 maps, an SSD's heads' first three inputs."""

    def __init__(self, block, in_channels: int, width: float, blocks: tuple, **stem) -> None:
        """`block` stages (3, 4, 6, 3 blocks by default) at RESNET50_WIDTHS scaled by `width`; `stem`: MONAI's
        conv1 / max-pool settings."""
        widths = [scaled_width(c, width) for c in RESNET50_WIDTHS]
        super().__init__(
            block=block,
            layers=list(blocks),
            block_inplanes=widths,
            spatial_dims=2,
            n_input_channels=in_channels,
            feed_forward=False,
            bias_downsample=False,
            **stem,
        )
        self.widths = widths

    def forward(self, x: Tensor, enhance: Callable[[Tensor], Tensor] | None = None) -> list[Tensor]:
        """Images [B, in_channels, H, W] -> the layer2..layer4 maps; `enhance` (if given) edits the layer2 map
        before layer3 and the heads see it."""
        x = self.act(self.bn1(self.conv1(x)))
        if not self.no_max_pool:
            x = self.maxpool(x)
        first = self.layer2(self.layer1(x))
        if enhance is not None:
            first = enhance(first)
        second = self.layer3(first)
        return [first, second, self.layer4(second)]


class ClippedResNet50(ResNetTrunk):
    """ResNet-50 bottleneck stages conv2..conv5 (MONAI's 2D ResNet), with the stem clipped for small crops.

    Stages keep ResNet-50's bottlenecks (1x1x64/3x3x64/1x1x256 ... 1x1x512/3x3x512/1x1x2048, blocks (3, 4, 6, 3),
    stride on the 3x3 conv), widths scaled by `width`. "Clipped": the 7x7 stride-2 stem conv and its stride-2
    max-pool become one 3x3 stride-2 conv, so conv3, conv4 and conv5 sit at strides 4, 8 and 16 (16x16, 8x8 and
    4x4 maps for a 64-pixel candidate crop) instead of 8, 16 and 32, which keeps lesions a few pixels wide visible.
    """

    def __init__(self, in_channels: int, width: float = 1.0, blocks: tuple = (3, 4, 6, 3)) -> None:
        super().__init__(
            ResNetBottleneck, in_channels, width, blocks, conv1_t_size=3, conv1_t_stride=2, no_max_pool=True
        )
        self.out_channels = [w * ResNetBottleneck.expansion for w in self.widths[1:]]  # conv3, conv4, conv5

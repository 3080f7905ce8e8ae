"""SSD's extra layers (Liu et al. 2016): 1x1 reduce then 3x3 steps from the last backbone map down to 1x1.

Each step halves the map (stride 2, pad 1: side -> ceil(side / 2)) while it is larger than 3, then one valid conv
spanning the whole remaining map gives 1x1: VGG SSD-300's fc7 19 -> 10 -> 5 -> 3 -> 1 and SSD-512's
32 -> 16 -> 8 -> 4 -> 2 -> 1 (the paper ends SSD-512 with a 4x4 pad-1 conv; a valid 2x2 gives the same 1x1 map).
Widths are SSD's, scaled: the first step 1x1x256 -> 3x3x512, the later ones 1x1x128 -> 3x3x256.
"""

from torch import nn

from LesionDetectLib.nets.clipped_resnet import scaled_width

FIRST_WIDTHS = (256, 512)  # (1x1 reduce, 3x3 output) of the first extra layer
LATER_WIDTHS = (128, 256)


def conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> nn.Sequential:
    """Conv (no bias), batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def extra_map_sizes(side: int, down_steps: int | None = None) -> list[int]:
    """Sides of the extra layers' maps after a side x side map: `down_steps` halvings (default: while the map is
    larger than 3), then 1 for the whole-map conv."""
    sides = []
    while (side > 3) if down_steps is None else (len(sides) < down_steps):
        side = -(-side // 2)
        sides.append(side)
    return [*sides, 1]


def extra_layers(
    in_channels: int, side: int, width: float, down_steps: int | None = None
) -> tuple[nn.ModuleList, list[int]]:
    """The extra layers after a side x side map of in_channels (laid out as `extra_map_sizes`), and their widths."""
    sides = extra_map_sizes(side, down_steps)
    layers, channels = nn.ModuleList(), []
    for index, before in enumerate([side, *sides[:-1]]):
        reduced, out = (scaled_width(c, width) for c in (FIRST_WIDTHS if index == 0 else LATER_WIDTHS))
        kernel, stride, padding = (before, 1, 0) if index == len(sides) - 1 else (3, 2, 1)
        layers.append(
            nn.Sequential(conv_bn_relu(in_channels, reduced, 1), conv_bn_relu(reduced, out, kernel, stride, padding))
        )
        channels.append(out)
        in_channels = out
    return layers, channels

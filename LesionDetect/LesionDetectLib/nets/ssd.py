"""SSD: backbone, SSD extra layers, multi-scale heads, default boxes and decoding (METHODS.md A and C).

SSD (Liu et al. 2016) on one of several backbones (nets/ssd_backbones.py), run on square images: a clipped
ResNet-50 for small candidate crops, SSD's own VGG-16, ResNet-34 or ImageNet MobileNetV2 for whole slices;
optionally with the training-only feature-enhancement layer (nets/feature_enhancement.py) on the first
head map. Shared by the detectors that use an SSD.

Boxes everywhere are (d0_min, d1_min, d0_max, d1_max) in pixels of the crop tensor's spatial dims (dim 0 = rows,
dim 1 = columns; pixel (i, j) covers [i, i+1) x [j, j+1)), i.e. MONAI's 2D "xyxy" mode with x the first dim.
"""

import itertools
import math
from dataclasses import dataclass
from functools import partial

import torch
from monai.apps.detection.utils.anchor_utils import AnchorGenerator
from monai.apps.detection.utils.box_coder import BoxCoder
from monai.apps.detection.utils.box_selector import BoxSelector
from torch import Tensor, nn

from LesionDetectLib.nets.feature_enhancement import FeatureEnhancement
from LesionDetectLib.nets.ssd_backbones import backbone_by_name
from LesionDetectLib.nets.ssd_extras import extra_layers, extra_map_sizes

# Unit weights: encoded errors are centre offsets in default-box sizes and log size ratios, so the robust loss's
# beta = 0.05 puts its quadratic bowl at 5 % of the default box (about 0.5 px for the smallest box of a 64-px crop).
BOX_CODER = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
ANCHOR_UNITS_PER_PIXEL = 4096  # MONAI rounds anchor corners to whole units: generate in 1/4096 px to keep SSD shapes


@dataclass
class SSDConfig:
    """Input crop, classes (0 = background), backbone and SSD default-box settings.

    backbone: one of nets.ssd_backbones.BACKBONES; width scales it (not mobilenet_v2, ImageNet's x1.0, which takes
    3 channels) and the extra layers; blocks are the ResNets' stage depths. Default-box scales are fractions of
    image_size: SSD's s_min..s_max spread over the head maps, or `scales`, one per map. feature_enhancement: the FE
    layer on the first head map in training (forward given boxes), none at inference.
    """

    in_channels: int = 5
    num_classes: int = 6
    image_size: int = 64
    width: float = 0.25
    blocks: tuple = (3, 4, 6, 3)
    s_min: float = 0.15
    s_max: float = 0.95
    aspect_ratios: tuple = (1, 2, 3, 1 / 2, 1 / 3)
    backbone: str = "clipped_resnet50"
    scales: tuple | None = None
    feature_enhancement: bool = False


def feature_map_sizes(image_size: int, backbone: str = "clipped_resnet50") -> list[int]:
    """Side lengths of the head maps for square images: the backbone's (ceil(image_size / stride)), then the extras'.

    The clipped ResNet-50 (for small candidate crops) gives five: conv3..conv5 (strides 4, 8, 16), then extras at
    stride 32 and 1x1; its whole-map extra needs image_size a multiple of 32.
    """
    if backbone == "clipped_resnet50" and (image_size % 32 or image_size < 32):
        raise ValueError(f"image_size must be a positive multiple of 32, got {image_size}")
    chosen = backbone_by_name(backbone)
    sides = [-(-image_size // stride) for stride in chosen.strides]
    return sides + extra_map_sizes(sides[-1], chosen.extra_down_steps)


def default_box_scales(config: SSDConfig) -> list[float]:
    """s_1..s_m of the m head maps, then s_{m+1} = 1 for the last extra box.

    s_k is config.scales[k - 1] if given, else SSD's s_k = s_min + (s_max - s_min)(k - 1)/(m - 1), k = 1..m.
    """
    m = len(feature_map_sizes(config.image_size, config.backbone))
    if config.scales is not None:
        if len(config.scales) != m:
            raise ValueError(f"scales needs one value per head map ({m}), got {len(config.scales)}")
        return [*config.scales, 1.0]
    return [config.s_min + (config.s_max - config.s_min) * k / (m - 1) for k in range(m)] + [1.0]


def default_boxes(config: SSDConfig) -> Tensor:
    """SSD default boxes [A, 4] in pixels, ordered by map, then location (row-major), then box shape.

    Per location: one box per aspect ratio r of scale s_k, width (dim 1) s_k*sqrt(r) and height (dim 0) s_k/sqrt(r),
    then the extra square box of scale sqrt(s_k * s_{k+1}); centres at ((i + 0.5) * stride, (j + 0.5) * stride),
    stride = image_size / side (to 1/4096 px per cell where it is not whole). MONAI's 2D aspect ratio is
    extent(dim 1) / extent(dim 0), i.e. SSD's r as is.
    """
    sizes = feature_map_sizes(config.image_size, config.backbone)
    scales = default_box_scales(config)
    unit = config.image_size * ANCHOR_UNITS_PER_PIXEL
    shaped = AnchorGenerator([(s * unit,) for s in scales[:-1]], [config.aspect_ratios] * len(sizes))
    extra_sizes = [(math.sqrt(s * t) * unit,) for s, t in itertools.pairwise(scales)]
    square = AnchorGenerator(extra_sizes, [(1.0,)] * len(sizes))
    grids = [[size, size] for size in sizes]
    strides = [[torch.tensor(round(unit / size))] * 2 for size in sizes]
    levels = [
        torch.cat([a.view(size * size, -1, 4), b.view(size * size, 1, 4)], dim=1).view(-1, 4)
        for size, a, b in zip(sizes, shaped.grid_anchors(grids, strides), square.grid_anchors(grids, strides))
    ]
    return torch.cat(levels) / ANCHOR_UNITS_PER_PIXEL


def anchor_layout(anchors: Tensor) -> tuple[list[int], int]:
    """(locations per map, boxes per location) of default boxes laid out as `default_boxes` does."""
    centres = anchors[:, :2] + anchors[:, 2:]
    moved = (centres != centres[0]).any(dim=1).nonzero()
    per_location = int(moved[0]) if len(moved) else len(anchors)
    shapes = (anchors[:, 2:] - anchors[:, :2]).reshape(-1, per_location * 2)
    starts = ((shapes[1:] - shapes[:-1]).abs().amax(dim=1) > 1e-3).nonzero()[:, 0] + 1
    bounds = [0, *starts.tolist(), len(shapes)]
    return [end - start for start, end in itertools.pairwise(bounds)], per_location


class SSD(nn.Module):
    """SSD on the configured backbone: heads (3x3 convs) on its maps and on SSD's extra layers (nets/ssd_extras.py).

    The clipped ResNet-50 (for small candidate crops) has heads on conv3, conv4, conv5 and two extras, a stride-2 3x3
    (stride 32) and a valid conv spanning the whole remaining map (1x1): m = 5 scales. `anchors` [A, 4] (a buffer,
    not saved) are the default boxes in pixels of the input crop. The FE layer, when configured, holds no weights:
    a model trained with it loads into one without it.
    """

    def __init__(self, config: SSDConfig) -> None:
        super().__init__()
        self.config = config
        chosen = backbone_by_name(config.backbone)
        self.backbone = chosen.build(config)
        last_side = feature_map_sizes(config.image_size, config.backbone)[len(chosen.strides) - 1]
        self.extras, extra_channels = extra_layers(
            self.backbone.out_channels[-1], last_side, config.width, chosen.extra_down_steps
        )
        self.feature_enhancement = FeatureEnhancement() if config.feature_enhancement else None
        per_location = len(config.aspect_ratios) + 1
        channels = [*self.backbone.out_channels, *extra_channels]
        self.class_heads = nn.ModuleList(
            nn.Conv2d(c, per_location * config.num_classes, 3, padding=1) for c in channels
        )
        self.box_heads = nn.ModuleList(nn.Conv2d(c, per_location * 4, 3, padding=1) for c in channels)
        self.register_buffer("anchors", default_boxes(config), persistent=False)

    def forward(self, images: Tensor, boxes: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Images [B, C, S, S] -> class logits [B, A, num_classes] and encoded box deltas [B, A, 4].

        In training mode with FE configured, the ground-truth boxes per image ([n_i, 4], n_i may be 0) enhance the
        first head map inside the backbone; otherwise (eval mode, no FE or no boxes) this is the plain network.
        """
        enhance = None
        if self.training and self.feature_enhancement is not None and boxes is not None:
            enhance = partial(self.feature_enhancement, images=images, boxes=boxes)
        features = self.backbone(images, enhance)
        for extra in self.extras:
            features.append(extra(features[-1]))
        logits = [per_anchor(head(f), self.config.num_classes) for head, f in zip(self.class_heads, features)]
        deltas = [per_anchor(head(f), 4) for head, f in zip(self.box_heads, features)]
        return torch.cat(logits, dim=1), torch.cat(deltas, dim=1)


def per_anchor(head_output: Tensor, values: int) -> Tensor:
    """[B, boxes * values, H, W] -> [B, H * W * boxes, values], the order of `default_boxes`."""
    return head_output.permute(0, 2, 3, 1).reshape(head_output.shape[0], -1, values)


@torch.no_grad()
def decode(
    model_or_anchors: SSD | Tensor,
    class_logits: Tensor,
    box_deltas: Tensor,
    score_threshold: float = 0.05,
    iou_threshold: float = 0.45,
    max_detections: int = 50,
    image_size: int | None = None,
) -> list[dict]:
    """Per crop: dict(boxes [n, 4] in pixels, scores [n], labels [n] int64 >= 1), best first.

    Softmax scores per foreground class, MONAI's BoxSelector (score threshold, clipping to the crop, per-class
    NMS, at most max_detections). image_size is needed only when anchors are given instead of the model.
    """
    if isinstance(model_or_anchors, SSD):
        anchors, image_size = model_or_anchors.anchors, model_or_anchors.config.image_size
    elif image_size is None:
        raise ValueError("decode needs image_size when given anchors instead of the model")
    else:
        anchors = model_or_anchors
    selector = BoxSelector(
        apply_sigmoid=False,
        score_thresh=score_threshold,
        nms_thresh=iou_threshold,
        detections_per_img=max_detections,
        box_overlap_metric=nms_iou,
    )
    scores = class_logits.float().softmax(dim=-1)[..., 1:]
    detections = []
    for crop_scores, crop_deltas in zip(scores, box_deltas.float()):
        boxes = BOX_CODER.decode_single(crop_deltas, anchors)
        kept, kept_scores, labels = selector.select_boxes_per_image([boxes], [crop_scores], (image_size, image_size))
        detections.append({"boxes": kept, "scores": kept_scores, "labels": labels + 1})
    return detections


def nms_iou(boxes: Tensor, others: Tensor) -> Tensor:
    """IoU (N, M) of corner boxes, as MONAI's `box_iou` gives it, for MONAI's NMS loop.

    MONAI's NMS calls its overlap metric once per kept box; `box_iou` validates both inputs on every call
    (≈0.4 ms), which made NMS most of a detector's time on a real scan; NMS hands it valid boxes.
    """
    dims = boxes.shape[-1] // 2
    low = torch.maximum(boxes[:, None, :dims], others[None, :, :dims])
    high = torch.minimum(boxes[:, None, dims:], others[None, :, dims:])
    intersection = (high - low).clamp_min(0).prod(dim=-1)
    area = (boxes[:, dims:] - boxes[:, :dims]).prod(dim=-1)
    other_area = (others[:, dims:] - others[:, :dims]).prod(dim=-1)
    union = area[:, None] + other_area[None, :] - intersection
    return intersection / union.clamp_min(torch.finfo(union.dtype).eps)

"""Feature enhancement (FE) from ground-truth boxes, a training-only layer for small dark lesions (METHODS.md C).

Per ground-truth box, M = P (the input image) inside the box and 0 outside; B_mean = beta * mean(P in the box),
beta = 1.5; pixels above B_mean are dropped (M = 0) and the others get M = 1 - P / B_mean, so the darkest pixels
(dark lesions, as in SWI) get the strongest enhancement; M is resized to the feature map and X' = X + M * X on every
channel. The layer holds no parameters or buffers: inference runs the plain network, which is the same network.

Boxes are (d0_min, d1_min, d0_max, d1_max) in pixels of the image's spatial dims, as in ssd.py (MONAI's 2D "xyxy"
StandardMode, x the first dim = rows; pixel (i, j) covers [i, i+1) x [j, j+1)); other MONAI box modes are
converted. Boxes are clipped to the image and those under one pixel wide left out (MONAI's clip_boxes_to_image);
a box covers every pixel it overlaps. Choices the paper leaves open:
- overlapping boxes: each box's weights come from its own pixels and its own B_mean; where boxes overlap the
  larger weight counts, so the result does not depend on box order and stays within 0...1;
- a box with B_mean <= 0 (possible only for images with negative values) is not enhanced, and weights are capped
  at 1 (a negative pixel in a box with positive B_mean), so no feature is more than doubled;
- an image with several channels (e.g. grey repeated for an ImageNet backbone) uses their mean as P;
- M is resized by area averaging, so a lesion of a few pixels still reaches a stride-8 feature cell.
"""

import math

import torch
import torch.nn.functional as F
from monai.data.box_utils import clip_boxes_to_image, convert_box_to_standard_mode
from torch import Tensor, nn

BETA = 1.5


@torch.no_grad()
def enhancement_mask(images: Tensor, boxes: list[Tensor], beta: float = BETA, box_mode: str = "xyxy") -> Tensor:
    """The FE mask M [N, 1, H, W] in 0...1 from images [N, C, H, W] and ground-truth boxes per image [n_i, 4]."""
    intensity = images.detach().float().mean(dim=1)
    mask = torch.zeros_like(intensity)
    for image, image_mask, image_boxes in zip(intensity, mask, boxes):
        standard = convert_box_to_standard_mode(torch.as_tensor(image_boxes, dtype=torch.float32), box_mode)
        clipped, _ = clip_boxes_to_image(standard, image.shape, remove_empty=True)
        for d0_min, d1_min, d0_max, d1_max in clipped.tolist():
            rows = slice(math.floor(d0_min), math.ceil(d0_max))
            cols = slice(math.floor(d1_min), math.ceil(d1_max))
            box_mean = beta * image[rows, cols].mean()
            if box_mean <= 0:
                continue
            weights = (1 - image[rows, cols] / box_mean).clamp(0, 1)  # 0 above B_mean: those pixels are dropped
            image_mask[rows, cols] = torch.maximum(image_mask[rows, cols], weights)
    return mask[:, None]


def resized_mask(mask: Tensor, feature_size: tuple[int, int]) -> Tensor:
    """The mask [N, 1, H, W] area-averaged onto a feature map's (rows, cols)."""
    return F.interpolate(mask, size=tuple(feature_size), mode="area")


def enhanced(features: Tensor, mask: Tensor) -> Tensor:
    """X' = X + M * X, the mask [N, 1, h, w] broadcast over the channels of features [N, C, h, w]."""
    return features + mask.to(features.dtype) * features


class FeatureEnhancement(nn.Module):
    """The FE layer on one feature map during training; the identity in eval mode. No parameters, no state."""

    def __init__(self, beta: float = BETA, box_mode: str = "xyxy") -> None:
        super().__init__()
        self.beta = beta
        self.box_mode = box_mode

    def forward(self, features: Tensor, images: Tensor, boxes: list[Tensor]) -> Tensor:
        """Features [N, C, h, w] enhanced by the mask of the input images [N, C_in, H, W] and their boxes."""
        if not self.training:
            return features
        mask = enhancement_mask(images, boxes, self.beta, self.box_mode)
        return enhanced(features, resized_mask(mask, features.shape[-2:]))

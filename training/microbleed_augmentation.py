"""The paper's augmentation for the microbleed SSD (METHODS.md C), with MONAI's box-aware transforms.

Vertical and horizontal flips (p 0.5 each), zoom 0.8–0.95 (p 0.5), rotation ±30° and translation ≤ 15 px (p 0.5;
boxes ride along as ellipse masks, MONAI's detection recipe for arbitrary rotations), intensity × 1.2–1.5 (p 0.5)
and Gaussian blur σ 0–3 px (p 0.5). Boxes are (row0, col0, row1, col1) in pixels, MONAI's 2D "xyxy" with x the
first spatial dim; a box rotated or shifted out of the image is dropped.
"""

from __future__ import annotations

import math

import torch
from monai.apps.detection.transforms.dictionary import BoxToMaskd, MaskToBoxd, RandFlipBoxd, RandZoomBoxd
from monai.transforms import Compose, RandAffined, RandGaussianSmoothd, RandScaleIntensityd

KEYS = ("image", "boxes", "labels")


def augmentation(probability: float = 0.5) -> Compose:
    """dict(image [C, H, W], boxes [n, 4], labels [n]) → the same, augmented."""
    image, boxes, labels = KEYS
    return Compose(
        [
            RandFlipBoxd(image, boxes, image, prob=probability, spatial_axis=0),
            RandFlipBoxd(image, boxes, image, prob=probability, spatial_axis=1),
            RandZoomBoxd(image, boxes, image, prob=probability, min_zoom=0.8, max_zoom=0.95, keep_size=True),
            BoxToMaskd(boxes, "box_mask", labels, image, min_fg_label=0, ellipse_mask=True),
            RandAffined(
                (image, "box_mask"),
                prob=probability,
                rotate_range=math.radians(30),
                translate_range=(15, 15),
                mode=("bilinear", "nearest"),
                padding_mode="zeros",
            ),
            MaskToBoxd(boxes, "box_mask", labels, min_fg_label=0),
            RandScaleIntensityd(image, factors=(0.2, 0.5), prob=probability),
            RandGaussianSmoothd(image, sigma_x=(0.0, 3.0), sigma_y=(0.0, 3.0), prob=probability),
        ]
    )


def augmented(transform: Compose, image: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One slice and its boxes through the transform (labels all 1, microbleed); plain tensors back."""
    sample = transform({"image": image.float(), "boxes": boxes.float(), "labels": torch.ones(len(boxes))})
    return torch.as_tensor(sample["image"]).float(), torch.as_tensor(sample["boxes"]).float().reshape(-1, 4)

"""Grad-CAM (MONAI's `GradCAM`) of one class at a named layer, each image's map scaled to 0…1.

MONAI's default normaliser maps each map's (min, max) to (1, 0), for an inverted colour map: the hottest pixel
would read coldest. Here (min, max) → (0, 1), and a flat map (no evidence anywhere) stays 0. MONAI registers its
hooks on the layer without keeping their handles, so every GradCAM built on a network would stay hooked into all
its later forward passes; `grad_cam` takes its hooks off again when done.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

BATCH = 16


def scaled_to_unit(maps: torch.Tensor) -> torch.Tensor:
    """Each map's (min, max) → (0, 1); a constant map → 0."""
    from monai.transforms import ScaleIntensity

    scale = ScaleIntensity(minv=0.0, maxv=1.0)
    return torch.stack([torch.as_tensor(scale(one)) for one in maps])


def grad_cam(model: nn.Module, inputs: torch.Tensor, target_layer: str, class_index: int) -> np.ndarray:
    """(N, H, W) float32 0…1: Grad-CAM of logit `class_index` at submodule `target_layer` of `model` (in eval mode;
    images (N, C, H, W) → logits (N, classes)), upsampled to the images' size, in batches of BATCH."""
    from monai.visualize import GradCAM

    layer = model.get_submodule(target_layer)
    hooks_before = set(layer._forward_hooks), set(layer._backward_hooks)
    try:
        cam = GradCAM(model, target_layers=target_layer, postprocessing=scaled_to_unit)
        maps = np.zeros((len(inputs), *inputs.shape[-2:]), dtype=np.float32)
        for first in range(0, len(inputs), BATCH):
            with torch.enable_grad():
                result = cam(inputs[first : first + BATCH].float(), class_idx=class_index)
            maps[first : first + BATCH] = result[:, 0].detach().cpu().numpy()
    finally:
        for hooks, before in zip((layer._forward_hooks, layer._backward_hooks), hooks_before):
            for key in set(hooks) - before:
                del hooks[key]
    return maps

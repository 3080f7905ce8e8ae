"""Where on a key frame the network sees stenosis: its evidence map and Grad-CAM, combined on frame pixels.

The evidence map (`FrameAttentionNet.evidence_map`) is, with max pooling, every cell's stenosis probability and,
with mean pooling, the self-attention map. Both maps are scaled to 0…1 per frame (min → 0, max → 1) on the
network's input square and combined by their geometric mean, √(evidence × Grad-CAM), so a pixel is hot only where
both agree: the cell that holds the evidence, and where in it the features push the stenosis logit up (Grad-CAM
alone follows any feature that raises the logit; an attention share is positive everywhere, even on a frame called
normal). A mean-pooled network without the attention module (the paper's ablation) gets Grad-CAM alone. The map is
resized onto the frame's pixels (`preprocess.to_frame_pixels`) and multiplied by the frame's stenosis probability,
so a frame the model calls normal glows faintly.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from LesionDetectLib.detectors.stenosis.preprocess import to_frame_pixels
from LesionDetectLib.nets.cam import grad_cam, scaled_to_unit


class _StenosisLogit(nn.Module):
    """The frame classifier with its logit as a one-class column, as `GradCAM` expects."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.network(frames)[:, None]


def frame_heatmaps(network, inputs: torch.Tensor, frame_shape: tuple[int, int]) -> np.ndarray:
    """(n, rows, columns) float32 0…1 for the network's inputs (n, 1, size, size): the combined map on each frame's
    pixels, weighted by that frame's stenosis probability."""
    with torch.no_grad():
        probabilities = torch.sigmoid(network(inputs)).cpu().numpy()
        evidence = network.evidence_map()
    cam = grad_cam(_StenosisLogit(network).eval(), inputs, f"network.{network.cam_layer}", 0)
    if evidence is not None:
        square = torch.nn.functional.interpolate(
            evidence[:, None].float(), size=inputs.shape[-2:], mode="bilinear", align_corners=False
        )
        cam = np.sqrt(cam * scaled_to_unit(square[:, 0]).cpu().numpy())
    heat = to_frame_pixels(cam, frame_shape) * probabilities[:, None, None]
    return np.clip(heat, 0.0, 1.0).astype(np.float32)

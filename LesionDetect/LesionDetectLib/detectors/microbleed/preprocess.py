"""An SWI volume as the SSD's input: N4-corrected, normalised axial slices of fixed size in mm, three depths each.

Slices are brought to the axial layout (`io.axial_view`), corrected and normalised inside the head
(`intensity.py`), cut to one INPUT_FOV_MM square centred on the head and resized to the model's side, so a
microbleed has the same size in network pixels at any matrix or field of view. Each network slice has three
channels: the tissue NEIGHBOUR_MM below, at and above the slice centre (linear interpolation across slices),
which shows whether a dark dot goes on through neighbouring slices like a vein or ends like a microbleed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from LesionDetectLib.detection.slice_square import SliceSquare, cut_square, resized, square_around
from LesionDetectLib.detectors.microbleed.intensity import head_mask, n4_bias_corrected, normalized_intensity
from LesionDetectLib.io.axial_view import AxialView, axial_view
from LesionDetectLib.io.volume import Volume

INPUT_FOV_MM = 240.0
NEIGHBOUR_MM = 2.0


@dataclass
class SwiSlices:
    """The network's slices (K, 3, size, size) in the axial layout and how they map back onto the input."""

    slices: torch.Tensor
    view: AxialView
    square: SliceSquare
    head: np.ndarray  # bool (K, rows, cols), the head in the axial layout
    view_shape_ji: tuple[int, int]  # an axial-layout slice's (rows, cols)
    input_size: int

    @property
    def network_pixel_mm(self) -> float:
        return INPUT_FOV_MM / self.input_size


def in_plane_pixel_mm(volume: Volume) -> float:
    """The mean in-plane pixel size in mm (the axes i and j)."""
    return float(np.mean(volume.spacing[:2]))


def depth_channels(stack_kji: np.ndarray, slice_mm: float, offset_mm: float = NEIGHBOUR_MM) -> np.ndarray:
    """(K, 3, rows, cols): each slice's tissue offset_mm below, at and above it, clamped at the first and last."""
    stack_kji = np.asarray(stack_kji, dtype=np.float32)
    last = stack_kji.shape[0] - 1
    channels = []
    for offset in (-offset_mm / slice_mm, 0.0, offset_mm / slice_mm):
        position = np.clip(np.arange(last + 1) + offset, 0, last)
        below = np.floor(position).astype(int)
        above = np.minimum(below + 1, last)
        weight = (position - below).astype(np.float32)[:, None, None]
        channels.append(stack_kji[below] * (1 - weight) + stack_kji[above] * weight)
    return np.stack(channels, axis=1)


def network_slices(volume: Volume, input_size: int, bias_correction: bool = True) -> SwiSlices:
    """Every axial slice of an SWI magnitude volume as the network's input (float32 in 0…1)."""
    view = axial_view(volume)
    array = view.to_network(np.asarray(volume.array, dtype=np.float32))
    spacing = volume.spacing[[1, 0, 2]] if view.swap_in_plane else volume.spacing
    head = head_mask(array)
    if bias_correction:
        array = n4_bias_corrected(array, spacing, head)
    normalised = normalized_intensity(array, head)
    square = square_around(head.any(axis=0), in_plane_pixel_mm(volume), INPUT_FOV_MM)
    channels = depth_channels(cut_square(normalised, square, 0.0), float(volume.spacing[2]))
    return SwiSlices(resized(channels, input_size), view, square, head, array.shape[1:], input_size)

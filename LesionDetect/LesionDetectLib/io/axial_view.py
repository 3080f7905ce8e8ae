"""Axial slices as slice networks are trained on them: i to the patient's left, j to posterior, k upwards.

DICOM series come so already; NIfTI and NRRD files often run i to the right or k downwards. The view flips
(and, for i/j stored the other way round, transposes) the array without resampling, and maps heatmaps back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.volume import Volume

WANTED_SIGN = (-1.0, -1.0, 1.0)  # along RAS x, y, z: i → left (−x), j → posterior (−y), k → superior (+z)


@dataclass(frozen=True)
class AxialView:
    """Flips of the array's (k, j, i) axes and whether j and i are swapped, to reach the trained layout."""

    flip_axes: tuple[int, ...]
    swap_in_plane: bool

    def to_network(self, array_kji: np.ndarray) -> np.ndarray:
        flipped = np.flip(array_kji, self.flip_axes) if self.flip_axes else array_kji
        return flipped.transpose(0, 2, 1) if self.swap_in_plane else flipped

    def from_network(self, array_kji: np.ndarray) -> np.ndarray:
        unswapped = array_kji.transpose(0, 2, 1) if self.swap_in_plane else array_kji
        return np.flip(unswapped, self.flip_axes) if self.flip_axes else unswapped

    def box_to_input(self, box_kji: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
        """A (2, 3) inclusive (k, j, i) box in the network layout → the same voxels' box in the input array."""
        corners = np.array(box_kji, dtype=int)
        if self.swap_in_plane:
            corners = corners[:, [0, 2, 1]]
        for axis in self.flip_axes:
            corners[:, axis] = input_shape[axis] - 1 - corners[:, axis]
        return np.sort(corners, axis=0)

    def pixel_box_to_input(self, box_ji, input_shape_ji: tuple[int, int]) -> np.ndarray:
        """A (j0, i0, j1, i1) box in pixel units of a network-layout slice (edges, j1 > j0) → the same area's
        (j0, i0, j1, i1) box in the input's slice of shape `input_shape_ji`."""
        j0, i0, j1, i1 = (float(v) for v in box_ji)
        if self.swap_in_plane:
            j0, i0, j1, i1 = i0, j0, i1, j1
        rows, columns = input_shape_ji
        if 1 in self.flip_axes:
            j0, j1 = rows - j1, rows - j0
        if 2 in self.flip_axes:
            i0, i1 = columns - i1, columns - i0
        return np.array([j0, i0, j1, i1])

    def slice_order(self, slices: int) -> np.ndarray:
        """The input's slice index of each network slice (inferior to superior)."""
        order = np.arange(slices)
        return order[::-1] if 0 in self.flip_axes else order


def axial_view(volume: Volume) -> AxialView:
    """The view of an axial volume; a sagittal or coronal one is refused (the model reads axial slices)."""
    directions = volume.directions
    dominant = np.abs(directions).argmax(axis=0)  # the RAS axis each of i, j, k runs along most
    if dominant[2] != 2 or sorted(dominant) != [0, 1, 2]:
        raise LesionDetectError(
            f"'{volume.name}' is not stored as axial slices (its slice axis runs along "
            f"{'RAS'[dominant[2]]}); the model reads axial slices: reformat the scan axially."
        )
    swap = bool(dominant[0] != 0)
    array_axis = {0: 2, 1: 1, 2: 0}  # i, j, k → axis of the (k, j, i) array
    flips = tuple(
        sorted(array_axis[n] for n in range(3) if np.sign(directions[dominant[n], n]) != WANTED_SIGN[dominant[n]])
    )
    return AxialView(flips, swap)

"""Resample a sheared slice stack (gantry-tilted CT) onto an orthogonal grid.

Like the acquisition geometry regularization of Slicer's DICOM scalar-volume plugin: the in-plane
axes are kept and the slice axis becomes the normal, so each slice only has to be moved back by its
in-plane shift, with linear interpolation. The grid grows to hold every shifted slice, so nothing
is cut off; pixels no slice covers get the stack's lowest value (air in CT).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

SHIFT_TOLERANCE_PX = 0.25  # in-plane shifts up to this are left alone
GRID_ROUNDING_PX = 1e-3


def regularize(voxels: np.ndarray, shifts_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resample `voxels` (k, j, i), whose slice k lies shifted by `shifts_px[k]` (along i, j), onto one grid.

    Returns the float32 voxels and the (i, j) pixel position of the grid's first voxel in slice 0's pixels.
    """
    rows, columns = voxels.shape[1:]
    low = np.floor(shifts_px.min(axis=0) + GRID_ROUNDING_PX)
    high = np.ceil(shifts_px.max(axis=0) - GRID_ROUNDING_PX) + [columns - 1, rows - 1]
    size_ij = (high - low + 1).astype(int)
    grid = sitk.Image(int(size_ij[0]), int(size_ij[1]), sitk.sitkFloat32)
    grid.SetOrigin(low.tolist())
    fill = float(voxels.min())
    resampled = np.empty((len(voxels), size_ij[1], size_ij[0]), dtype=np.float32)
    for k, slice_pixels in enumerate(voxels):
        image = sitk.GetImageFromArray(np.asarray(slice_pixels, dtype=np.float32))
        image.SetOrigin(shifts_px[k].tolist())
        resampled[k] = sitk.GetArrayFromImage(sitk.Resample(image, grid, sitk.Transform(), sitk.sitkLinear, fill))
    return resampled, low

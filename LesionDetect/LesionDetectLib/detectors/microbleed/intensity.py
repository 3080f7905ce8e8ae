"""Intensities of a GRE/SWI volume made comparable: N4 bias correction, a head mask, percentile normalisation.

The paper corrects the bias with ANTs' N4 (METHODS.md C); SimpleITK's N4 fits the field on a grid shrunk by
SHRINK_FACTOR, which is what makes it fast, and the smooth field is evaluated and divided out at full resolution.
Arrays are (k, j, i), spacing (i, j, k) in mm like `Volume.spacing`.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from skimage.filters import threshold_otsu

from LesionDetectLib.errors import LesionDetectError

SHRINK_FACTOR = 4
MIN_SHRUNK_SIZE = 8  # voxels along an axis after shrinking; thinner axes shrink less
PERCENTILES = (0.5, 99.5)
IN_PLANE = ndimage.generate_binary_structure(2, 1)[None]  # hole filling slice by slice


def head_mask(volume_kji: np.ndarray) -> np.ndarray:
    """Head voxels: above Otsu's threshold, with holes (veins, ventricles, dark lesions) filled in each slice."""
    volume_kji = np.asarray(volume_kji, dtype=np.float32)
    above = volume_kji > threshold_otsu(volume_kji)
    if not above.any():
        raise LesionDetectError("The volume holds one intensity only, so no head can be found: check the series.")
    return ndimage.binary_fill_holes(above, structure=IN_PLANE)


def n4_bias_corrected(
    volume_kji: np.ndarray, spacing_ijk=(1.0, 1.0, 1.0), mask_kji: np.ndarray | None = None, shrink_factor=SHRINK_FACTOR
) -> np.ndarray:
    """The volume (float32) divided by N4's bias field, fitted inside the head on a grid shrunk by shrink_factor."""
    volume_kji = np.asarray(volume_kji, dtype=np.float32)
    mask_kji = head_mask(volume_kji) if mask_kji is None else mask_kji
    image = sitk.GetImageFromArray(volume_kji)
    image.SetSpacing([float(s) for s in spacing_ijk])
    mask = sitk.GetImageFromArray(np.asarray(mask_kji, dtype=np.uint8))
    mask.CopyInformation(image)
    factors = [max(1, min(shrink_factor, size // MIN_SHRUNK_SIZE)) for size in image.GetSize()]
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.Execute(sitk.Shrink(image, factors), sitk.Shrink(mask, factors))
    log_bias = sitk.GetArrayFromImage(corrector.GetLogBiasFieldAsImage(image))
    return volume_kji / np.exp(log_bias).astype(np.float32)


def normalized_intensity(
    volume_kji: np.ndarray, mask_kji: np.ndarray | None = None, percentiles=PERCENTILES
) -> np.ndarray:
    """float32 in 0...1: the head's low and high percentiles mapped to 0 and 1, clipped (darker voxels -> 0)."""
    volume_kji = np.asarray(volume_kji, dtype=np.float32)
    mask_kji = head_mask(volume_kji) if mask_kji is None else mask_kji
    low, high = np.percentile(volume_kji[np.asarray(mask_kji, dtype=bool)], percentiles)
    if high <= low:
        raise LesionDetectError("The head has one intensity only, so it cannot be normalised: check the series.")
    return np.clip((volume_kji - low) / (high - low), 0.0, 1.0).astype(np.float32)

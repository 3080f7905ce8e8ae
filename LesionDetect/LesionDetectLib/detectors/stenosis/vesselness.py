"""Contrast-filled vessels in angiography frames: CLAHE, then multi-scale Hessian vesselness of dark tubes.

The filter runs on a grid coarsened so that its finest scale is about one pixel (for a 512-pixel frame at
0.3 mm: 256 pixels, at 0.4 mm: 341): the scales are smooth there, and the map is resized back onto the frame grid.
"""

from __future__ import annotations

import numpy as np

VESSEL_RADII_MM = (0.75, 2.5)  # distal branches to the left main, at the plane the pixel spacing refers to
SCALE_COUNT = 4
SIGMA_PER_RADIUS = 0.8  # the Gaussian scale that answers most strongly to a cylinder's projection of this radius
ASSUMED_PIXEL_MM_AT_512 = 0.3  # a 512-pixel cardiac frame spans about 150 mm at the detector
MIN_ANALYSIS_SIGMA_PX = 1.0  # the finest scale on the coarsened grid; below it the Hessian is too coarse
GREY_PERCENTILES = (0.5, 99.5)  # the clip's grey range, so that every frame is stretched alike
CLAHE_CLIP_LIMIT = 0.005  # low: flat, noisy background is not stretched into texture that looks like tubes
FRANGI_BETA = 0.5  # Frangi's blob suppression, as published
STRUCTURE_GAMMA = 0.05  # scale-normalised Hessian norm (in CLAHE grey units) where a tube counts as contrasted
EDGE_TOLERANCE = 0.25  # scale-normalised gradient / Laplacian allowed: ~0 on a tube's axis, ~1 beside a step edge


def vessel_sigmas_px(pixel_mm: float) -> np.ndarray:
    """Gaussian scales (pixels of the frame grid) for vessel radii VESSEL_RADII_MM."""
    radii_mm = np.geomspace(*VESSEL_RADII_MM, SCALE_COUNT)
    return SIGMA_PER_RADIUS * radii_mm / pixel_mm


def frame_pixel_mm(frame_shape: tuple[int, int], pixel_spacing_mm: tuple[float, float] | None) -> float:
    """The pixel size to set the scales with: the file's spacing, else a 512-pixel cardiac field's."""
    if pixel_spacing_mm is not None:
        return float(np.mean(pixel_spacing_mm))
    return ASSUMED_PIXEL_MM_AT_512 * 512 / max(frame_shape)


def vesselness(frames: np.ndarray, pixel_spacing_mm: tuple[float, float] | None = None) -> np.ndarray:
    """(frames, rows, columns) float32 0…1: how much each pixel lies on a dark tube 0.75–2.5 mm in radius."""
    from skimage.exposure import equalize_adapthist
    from skimage.transform import resize

    frames = np.asarray(frames, dtype=np.float32)
    frame_shape = frames.shape[1:]
    sigmas_px = vessel_sigmas_px(frame_pixel_mm(frame_shape, pixel_spacing_mm))
    shrink = max(1.0, sigmas_px.min() / MIN_ANALYSIS_SIGMA_PX)  # continuous: no 4× cost step between two spacings
    grid_shape = tuple(max(1, round(side / shrink)) for side in frame_shape)
    coarse = grid_shape != frame_shape
    low, high = np.percentile(frames, GREY_PERCENTILES)
    grey = np.clip((frames - low) / max(high - low, 1e-6), 0.0, 1.0)
    result = np.empty(frames.shape, dtype=np.float32)
    for index, frame in enumerate(grey):
        small = resize(frame, grid_shape, anti_aliasing=True) if coarse else frame
        enhanced = equalize_adapthist(small, clip_limit=CLAHE_CLIP_LIMIT)
        tubes = dark_tubes(enhanced, sigmas_px * grid_shape[0] / frame_shape[0])
        result[index] = resize(tubes, frame_shape, order=1) if coarse else tubes
    return result


def dark_tubes(image: np.ndarray, sigmas_px: np.ndarray) -> np.ndarray:
    """Frangi vesselness of dark ridges, scale by scale with a fixed (scale-normalised) contrast level, damped
    where the grey slope is steep for the curvature, as beside a step edge, which Frangi alone takes for a tube."""
    from scipy import ndimage
    from skimage.filters import frangi

    best = np.zeros(image.shape, dtype=np.float32)
    for sigma in sigmas_px:
        tube = frangi(image, sigmas=[sigma], beta=FRANGI_BETA, gamma=STRUCTURE_GAMMA / sigma**2, black_ridges=True)
        slope = sigma * ndimage.gaussian_gradient_magnitude(image, sigma)
        curvature = sigma**2 * ndimage.gaussian_laplace(image, sigma)
        asymmetry = np.divide(slope, curvature, out=np.full_like(slope, np.inf), where=curvature > 0)
        best = np.maximum(best, tube * np.exp(-0.5 * (asymmetry / EDGE_TOLERANCE) ** 2))
    return best

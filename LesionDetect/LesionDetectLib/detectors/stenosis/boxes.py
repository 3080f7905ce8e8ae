"""Boxes around the hottest regions of one frame's heatmap, each at least the size of a real stenosis annotation.

A region is a connected set of pixels at or above `hot_level` of the frame's hottest; its box is grown about its
centre to at least MIN_BOX_MM a side (kept inside the frame), since the attention grid is coarse where a stenosis
is small, and an annotator boxes the narrowing with its shoulders: the median real box (the Danilov labels,
√(width × height)) is 5.3 % of a 512-pixel frame's side, 8 mm at that field's 0.3 mm pixels. Without a pixel
spacing the frame is taken to span a 512-pixel cardiac field (`vesselness.frame_pixel_mm`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from LesionDetectLib.detection.hot_regions import hot_regions
from LesionDetectLib.detectors.stenosis.vesselness import frame_pixel_mm

MIN_BOX_MM = 8.0
MIN_REGION_MM2 = 4.0  # smaller specks above the level are interpolation fringes, not regions


@dataclass
class FrameBox:
    box_px: list[int]  # [x0, y0, x1, y1] column/row pixel edges
    peak_px: tuple[int, int]  # (row, column) of the region's hottest pixel
    score: float  # the region's peak heat


def frame_boxes(
    heat: np.ndarray, pixel_spacing_mm: tuple[float, float] | None, hot_level: float, max_boxes: int
) -> list[FrameBox]:
    """Up to `max_boxes` boxes on one frame's heatmap (rows, columns), hottest first."""
    rows, columns = heat.shape
    row_mm, column_mm = pixel_spacing_mm or (frame_pixel_mm(heat.shape, None),) * 2
    boxes = []
    for region in hot_regions(heat, hot_level, math.ceil(MIN_REGION_MM2 / (row_mm * column_mm)))[:max_boxes]:
        (row0, column0), (row1, column1) = region.box
        x0, x1 = widened(column0, column1 + 1, MIN_BOX_MM / column_mm, columns)
        y0, y1 = widened(row0, row1 + 1, MIN_BOX_MM / row_mm, rows)
        boxes.append(FrameBox([x0, y0, x1, y1], region.peak, region.peak_heat))
    return boxes


def widened(start: int, stop: int, min_length: float, limit: int) -> tuple[int, int]:
    """Pixel edges [start, stop) grown about their centre to at least `min_length` pixels, shifted into [0, limit]."""
    length = min(max(stop - start, math.ceil(min_length)), limit)
    first = int(np.clip(round((start + stop - length) / 2), 0, limit - length))
    return first, first + length

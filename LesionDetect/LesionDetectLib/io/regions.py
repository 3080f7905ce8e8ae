"""Region masks without MRML: voxels inside an oriented box, e.g. a heart ROI from a markups JSON file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.volume import Volume

LPS_TO_RAS_3 = np.diag([-1.0, -1.0, 1.0])


def box_mask(shape_kji, ijk_to_object: np.ndarray, half_size: np.ndarray) -> np.ndarray:
    """uint8 (k, j, i) mask of voxels whose centres lie in the box |object coordinate| ≤ half size."""
    shape_ijk = np.array(shape_kji[::-1])
    mask = np.zeros(tuple(shape_kji), dtype=np.uint8)
    corners_object = np.array([[sx, sy, sz, 1.0] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    corners_object[:, :3] *= half_size
    corners_ijk = (np.linalg.inv(ijk_to_object) @ corners_object.T).T[:, :3]
    low = np.clip(np.floor(corners_ijk.min(axis=0)).astype(int), 0, shape_ijk - 1)
    high = np.clip(np.ceil(corners_ijk.max(axis=0)).astype(int), 0, shape_ijk - 1)
    i = np.arange(low[0], high[0] + 1)[None, :]
    j = np.arange(low[1], high[1] + 1)[:, None]
    tolerance = 1e-6
    for k in range(low[2], high[2] + 1):
        inside = np.ones((j.shape[0], i.shape[1]), dtype=bool)
        for axis in range(3):
            row = ijk_to_object[axis]
            coordinate = row[0] * i + row[1] * j + (row[2] * k + row[3])
            inside &= np.abs(coordinate) <= half_size[axis] + tolerance
        mask[k, low[1] : high[1] + 1, low[0] : high[0] + 1] = inside
    return mask


def roi_mask_from_markups_file(path, volume: Volume) -> np.ndarray:
    """Mask on `volume`'s grid of the first box ROI in a Slicer markups JSON file (LPS or RAS)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        roi = next(markup for markup in document["markups"] if markup.get("type") == "ROI")
        center = np.asarray(roi["center"], dtype=float)
        axes = np.asarray(roi.get("orientation", np.eye(3).ravel()), dtype=float).reshape(3, 3)
        size = np.asarray(roi["size"], dtype=float)
    except (OSError, ValueError, KeyError, StopIteration) as error:
        raise LesionDetectError(f"'{path}' is not a Slicer markups file with a box ROI ({error}).") from error
    if roi.get("coordinateSystem", "LPS") == "LPS":
        center, axes = LPS_TO_RAS_3 @ center, LPS_TO_RAS_3 @ axes
    object_to_ras = np.eye(4)
    object_to_ras[:3, :3], object_to_ras[:3, 3] = axes, center
    return box_mask(volume.array.shape, np.linalg.inv(object_to_ras) @ volume.ijk_to_ras, size / 2)

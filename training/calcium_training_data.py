"""Training crops for the calcium SSD: the inference path's own windows plus windows around every labelled object.

Each labelled volume gives (a) the piece windows the detector will see at inference
(`candidate_windows.component_windows`: every ≥ 130 HU piece of ≥ 1 mm² of a non-bone component in the heart
region), (b) windows jittered in position and size around every labelled calcified object
on every slice, so rarely proposed objects are learned too. Targets are the 2D boxes of labelled
structures on the crop's slice in the detector's classes (background, LM, LAD, LCX, RCA, other).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from LesionDetectLib.detectors.calcium.candidate_windows import EIGHT_CONNECTED, WINDOW_MM, component_windows
from LesionDetectLib.detectors.calcium.crops import CROP_PX, Window, heart_frame, make_crops, to_crop_pixels
from LesionDetectLib.detectors.calcium.deep import deep_candidates
from LesionDetectLib.detectors.calcium.heart_region import find_heart_region
from LesionDetectLib.detectors.calcium.labels import CORONARY_CODES, detector_class
from LesionDetectLib.detectors.calcium.options import CalciumParams
from LesionDetectLib.io.volume import Volume

MIN_VISIBLE_FRACTION = 0.5


@dataclass
class CropSet:
    """Crops (N, 5, 64, 64) float16 and their targets: per crop boxes (n, 4) in crop pixels and labels (n,)."""

    crops: torch.Tensor
    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    from_candidates: np.ndarray  # bool per crop: an inference window (the inference distribution) or jittered

    def __len__(self) -> int:
        return len(self.crops)

    @staticmethod
    def concatenate(sets: list[CropSet]) -> CropSet:
        return CropSet(
            torch.cat([s.crops for s in sets]),
            [b for s in sets for b in s.boxes],
            [lab for s in sets for lab in s.labels],
            np.concatenate([s.from_candidates for s in sets]),
        )


def slice_objects(labels_kji: np.ndarray, k: int) -> list[tuple[np.ndarray, int]]:
    """2D objects on slice k: (box j0, i0, j1, i1 in slice pixels, structure code) per 8-connected piece per code."""
    objects = []
    for code in np.unique(labels_kji[k]):
        if code == 0:
            continue
        pieces, count = ndimage.label(labels_kji[k] == code, structure=EIGHT_CONNECTED)
        for found in ndimage.find_objects(pieces):
            rows, cols = found
            objects.append((np.array([rows.start, cols.start, rows.stop, cols.stop], dtype=float), int(code)))
    return objects


def targets_in_window(objects, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (crop pixels) and detector classes of the objects at least half inside the window."""
    boxes, classes = [], []
    for box_ji, code in objects:
        cls = detector_class(code)
        crop_box = to_crop_pixels(box_ji, window)
        clipped = np.clip(crop_box, 0, CROP_PX)
        area = np.prod(crop_box[2:] - crop_box[:2])
        visible = np.prod(np.maximum(clipped[2:] - clipped[:2], 0))
        if cls is None or visible < MIN_VISIBLE_FRACTION * area:
            continue
        boxes.append(clipped)
        classes.append(cls)
    return np.array(boxes, dtype=np.float32).reshape(-1, 4), np.array(classes, dtype=np.int64)


def jittered_windows(objects, k: int, pixel_mm: float, rng: np.random.Generator, per_object: int) -> list[Window]:
    """Windows around each object, side 8–40 mm (twice the object where it fits), the object off-centre.

    Coronary objects get `per_object` windows, other structures one (bone is on every slice).
    """
    windows = []
    high = WINDOW_MM[1] / pixel_mm
    for box_ji, code in objects:
        extent_px = float(np.max(box_ji[2:] - box_ji[:2]))
        low = min(max(WINDOW_MM[0] / pixel_mm, 2 * extent_px), high)
        centre = (box_ji[:2] + box_ji[2:]) / 2
        count = per_object if code in CORONARY_CODES else 1
        for _ in range(count):
            side = float(np.exp(rng.uniform(np.log(low), np.log(high))))
            shift = rng.uniform(-0.3, 0.3, size=2) * side
            windows.append(Window(k, (float(centre[0] + shift[0]), float(centre[1] + shift[1])), side))
    return windows


def crops_from_volume(
    volume: Volume,
    labels_kji: np.ndarray,
    rng: np.random.Generator,
    per_object: int = 2,
    max_candidate_windows: int = 400,
) -> CropSet:
    """All training crops of one labelled volume (see module docstring); at most `max_candidate_windows` of (a)."""
    region = find_heart_region(volume).mask
    frame = heart_frame(region)
    pixel_mm = float(volume.spacing[:2].mean())
    params = CalciumParams()
    windows = component_windows(deep_candidates(volume, params), region, volume.spacing)
    if len(windows) > max_candidate_windows:
        windows = [windows[n] for n in rng.choice(len(windows), max_candidate_windows, replace=False)]
    from_candidates = [True] * len(windows)
    objects_by_slice = {k: slice_objects(labels_kji, k) for k in np.flatnonzero(labels_kji.any(axis=(1, 2)))}
    for k, objects in objects_by_slice.items():
        jittered = jittered_windows(objects, int(k), pixel_mm, rng, per_object)
        windows += jittered
        from_candidates += [False] * len(jittered)
    boxes, classes = [], []
    for window in windows:
        found = targets_in_window(objects_by_slice.get(window.k, []), window)
        boxes.append(found[0])
        classes.append(found[1])
    crops = (
        make_crops(volume.array, windows, float(volume.spacing[2]), frame)
        if windows
        else torch.zeros((0, 5, CROP_PX, CROP_PX))
    )
    return CropSet(crops.to(torch.float16), boxes, classes, np.array(from_candidates, dtype=bool))

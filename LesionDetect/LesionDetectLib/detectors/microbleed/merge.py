"""Per-slice boxes of the 2D microbleed detector joined into 3D lesions across adjacent slices.

Input: for each slice k of the volume, a list of (box, score), the box [i0, j0, i1, j1] in pixels of that slice
(i column, j row; pixel i covers [i, i+1), so i1, j1 are exclusive) on the volume's own grid.

Two detections on slices k and k+1 are linkable when their boxes overlap with IoU >= MIN_IOU, or their centres lie
within CENTER_FRACTION of the larger box's width (its larger in-plane side in mm, pixel spacing of i and j)
of each other, which keeps small boxes that shift by a pixel together. Linking is greedy by score: the best
detection not yet in a lesion starts one, which grows up and down one slice at a time by the best linkable
detection not yet taken, so each detection lies in one lesion and a lesion holds at most one per slice.
A slice without a linkable detection ends the lesion: a gap of one slice is not bridged.

A microbleed's bloom often gets several boxes per slice (a small box inside a large one survives the slice NMS),
so chains come in near-copies. A lesion is dropped as a duplicate of a better one when its centre lies in the
better one's voxel box, or when the two boxes share at least DUPLICATE_OVERLAP of the smaller box's voxels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from LesionDetectLib.io.volume import Volume

MIN_IOU = 0.2
CENTER_FRACTION = 0.5
DUPLICATE_OVERLAP = 0.3


@dataclass(frozen=True)
class SliceDetection:
    slice: int
    box: tuple[float, float, float, float]  # [i0, j0, i1, j1] pixel edges of the slice, i1 and j1 exclusive
    score: float


@dataclass
class MergedLesion:
    """One 3D lesion from the detections of consecutive slices."""

    score: float  # the best of its detections
    mean_score: float
    box_ijk: np.ndarray  # (2, 3) int, inclusive voxel box [[i0, j0, k0], [i1, j1, k1]]
    center_ras: np.ndarray  # (3,) mm, the score-weighted mean of the box centres
    diameter_mm: float  # the largest in-plane side of its boxes
    slices: tuple[int, int]  # first and last slice, inclusive
    extent_mm: float  # slices × slice thickness
    elongation: float  # extent_mm / diameter_mm: ~1-2 for a microbleed, large for a vein crossing many slices
    detections: list[SliceDetection]  # in slice order


def merge_slice_detections(
    detections_per_slice: Sequence[Sequence[tuple[Sequence[float], float]]],
    volume: Volume,
    min_iou: float = MIN_IOU,
    center_fraction: float = CENTER_FRACTION,
) -> list[MergedLesion]:
    """The 3D lesions of the per-slice (box, score) lists (index = slice k), best score first."""
    detections = _slice_detections(detections_per_slice, volume)
    on_slice: dict[int, list[int]] = {}
    for index, detection in enumerate(detections):
        on_slice.setdefault(detection.slice, []).append(index)
    taken = np.zeros(len(detections), dtype=bool)
    pixel_mm = volume.spacing[:2]

    def best_next(end: int, step: int) -> int | None:
        """The best detection not taken on the slice `step` beyond detection `end`, linkable to it, or None."""
        candidates = [
            index
            for index in on_slice.get(detections[end].slice + step, [])
            if not taken[index]
            and linkable(detections[end].box, detections[index].box, pixel_mm, min_iou, center_fraction)
        ]
        return max(candidates, key=lambda index: detections[index].score, default=None)

    lesions = []
    for seed in sorted(range(len(detections)), key=lambda index: -detections[index].score):
        if taken[seed]:
            continue
        chain = [seed]
        taken[seed] = True
        for step in (1, -1):
            end = seed
            while (end := best_next(end, step)) is not None:
                chain.append(end)
                taken[end] = True
        chain.sort(key=lambda index: detections[index].slice)
        lesions.append(_lesion([detections[index] for index in chain], volume))
    ranked = sorted(lesions, key=lambda lesion: (-lesion.score, -lesion.mean_score, lesion.slices[0]))
    return without_duplicates(ranked, volume)


def without_duplicates(ranked: list[MergedLesion], volume: Volume) -> list[MergedLesion]:
    """The lesions (best first) that are not a duplicate of a better one kept before them (see the module)."""
    kept: list[MergedLesion] = []
    kept_boxes = np.zeros((len(ranked), 2, 3))
    ras_to_ijk = np.linalg.inv(volume.ijk_to_ras)
    for lesion in ranked:
        better = kept_boxes[: len(kept)]
        centre_ijk = (ras_to_ijk @ [*lesion.center_ras, 1.0])[:3]
        inside = np.all((centre_ijk >= better[:, 0] - 0.5) & (centre_ijk <= better[:, 1] + 0.5), axis=1)
        shared = np.clip(
            np.minimum(lesion.box_ijk[1], better[:, 1]) - np.maximum(lesion.box_ijk[0], better[:, 0]) + 1, 0, None
        )
        smaller = np.minimum(
            np.prod(lesion.box_ijk[1] - lesion.box_ijk[0] + 1), np.prod(better[:, 1] - better[:, 0] + 1, axis=1)
        )
        if not np.any(inside | (shared.prod(axis=1) >= DUPLICATE_OVERLAP * smaller)):
            kept_boxes[len(kept)] = lesion.box_ijk
            kept.append(lesion)
    return kept


def linkable(box_a, box_b, pixel_mm, min_iou: float = MIN_IOU, center_fraction: float = CENTER_FRACTION) -> bool:
    """Whether two in-plane boxes [i0, j0, i1, j1] overlap with IoU >= min_iou or have centres within
    center_fraction of the larger box's larger side (mm, `pixel_mm` = spacing of i and j)."""
    box_a, box_b, pixel_mm = (np.asarray(value, dtype=float) for value in (box_a, box_b, pixel_mm))
    overlap = np.clip(np.minimum(box_a[2:], box_b[2:]) - np.maximum(box_a[:2], box_b[:2]), 0.0, None).prod()
    union = np.prod(box_a[2:] - box_a[:2]) + np.prod(box_b[2:] - box_b[:2]) - overlap
    if union > 0 and overlap / union >= min_iou:
        return True
    center_distance_mm = np.linalg.norm(((box_a[:2] + box_a[2:]) - (box_b[:2] + box_b[2:])) / 2.0 * pixel_mm)
    larger_side_mm = max(_side_mm(box_a, pixel_mm), _side_mm(box_b, pixel_mm))
    return bool(center_distance_mm <= center_fraction * larger_side_mm)


def _side_mm(box: np.ndarray, pixel_mm: np.ndarray) -> float:
    """The larger in-plane side of a box in mm."""
    return float(((box[2:] - box[:2]) * pixel_mm).max())


def _slice_detections(detections_per_slice, volume: Volume) -> list[SliceDetection]:
    """The input as SliceDetections, refusing more slices than the volume has, malformed boxes and bad scores."""
    slices = volume.array.shape[0]
    if len(detections_per_slice) > slices:
        raise ValueError(f"Detections for {len(detections_per_slice)} slices given, but '{volume.name}' has {slices}.")
    detections = []
    for k, slice_detections in enumerate(detections_per_slice):
        for box, score in slice_detections:
            box = tuple(float(value) for value in box)
            if len(box) != 4 or not np.all(np.isfinite(box)) or box[2] <= box[0] or box[3] <= box[1]:
                raise ValueError(f"Slice {k}: box {box} is not [i0, j0, i1, j1] with i0 < i1 and j0 < j1.")
            if not (np.isfinite(score) and score > 0):
                raise ValueError(f"Slice {k}: score {score} is not a positive number.")
            detections.append(SliceDetection(k, box, float(score)))
    return detections


def _lesion(chain: list[SliceDetection], volume: Volume) -> MergedLesion:
    """The summary of one chain of detections on consecutive slices (see MergedLesion)."""
    boxes = np.array([detection.box for detection in chain])
    scores = np.array([detection.score for detection in chain])
    ks = np.array([detection.slice for detection in chain])
    first = np.floor(boxes[:, :2].min(axis=0)).astype(int)
    last = np.maximum(np.ceil(boxes[:, 2:].max(axis=0)).astype(int) - 1, first)
    in_plane_limit = np.array(volume.shape_ijk[:2]) - 1
    box_ijk = np.array(
        [
            [*np.clip(first, 0, in_plane_limit), ks.min()],
            [*np.clip(last, 0, in_plane_limit), ks.max()],
        ]
    )
    # A box edge x is the voxel index x - 0.5: voxel centres sit on whole indices.
    centers_ijk = np.column_stack([(boxes[:, :2] + boxes[:, 2:]) / 2.0 - 0.5, ks])
    center_ras = volume.ijk_to_ras_points(np.average(centers_ijk, axis=0, weights=scores)[None])[0]
    pixel_mm = volume.spacing[:2]
    diameter_mm = max(_side_mm(box, pixel_mm) for box in boxes)
    extent_mm = float(len(chain) * volume.spacing[2])
    return MergedLesion(
        score=float(scores.max()),
        mean_score=float(scores.mean()),
        box_ijk=box_ijk,
        center_ras=center_ras,
        diameter_mm=diameter_mm,
        slices=(int(ks.min()), int(ks.max())),
        extent_mm=extent_mm,
        elongation=extent_mm / diameter_mm,
        detections=chain,
    )

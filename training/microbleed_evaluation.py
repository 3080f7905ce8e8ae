"""Scoring 3D microbleed detections against ground truth: hits, FROC, AP, precision at a recall, operating points.

A detection hits a true microbleed when its centre lies within HIT_MM of the microbleed's centre, or the
microbleed's radius where that is larger (centre distance, not box IoU: boxes of 2–4 px make IoU jumpy). Each true
microbleed counts once, at the best score of the detections that hit it; a detection hitting none is a false
positive, one hitting an already-hit microbleed is neither. FROC points come from MONAI
(`compute_froc_curve_data`); AP is the area under the precision–recall curve of detections ranked by score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from monai.metrics import compute_froc_curve_data

HIT_MM = 3.0
SENSITIVITIES = tuple(np.round(np.arange(0.5, 0.991, 0.01), 2))


@dataclass
class ScanScore:
    """One scan: the best hitting score of each true microbleed (0 = missed), false-positive scores, vein hits."""

    target_scores: np.ndarray
    false_positive_scores: np.ndarray
    vein_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # false positives on a vein
    ranked: list[tuple[float, bool]] = field(default_factory=list)  # (score, is a first hit) of every detection


def score_scan(centres_ras, scores, truth_centres_ras, truth_diameters_mm, on_vein=None) -> ScanScore:
    """Hits of detections (centres (n, 3) RAS mm, scores (n,)) on true microbleeds (centres (m, 3), diameters);
    `on_vein[i]` says whether detection i lies on a vein (reported among the false positives)."""
    centres = np.asarray(centres_ras, dtype=float).reshape(-1, 3)
    scores = np.asarray(scores, dtype=float)
    truth = np.asarray(truth_centres_ras, dtype=float).reshape(-1, 3)
    reach = np.maximum(HIT_MM, np.asarray(truth_diameters_mm, dtype=float) / 2)
    target_scores = np.zeros(len(truth))
    false_positives, veins, ranked = [], [], []
    for index in np.argsort(-scores, kind="stable"):
        distance = np.linalg.norm(truth - centres[index], axis=1)
        hits = np.flatnonzero(distance <= reach)
        if hits.size == 0:
            false_positives.append(scores[index])
            if on_vein is not None and on_vein[index]:
                veins.append(scores[index])
            ranked.append((scores[index], False))
            continue
        fresh = [hit for hit in hits[np.argsort(distance[hits])] if target_scores[hit] == 0]
        if fresh:
            target_scores[fresh[0]] = scores[index]
            ranked.append((scores[index], True))
    return ScanScore(target_scores, np.array(false_positives), np.array(veins), ranked)


def froc(scans: list[ScanScore]) -> tuple[np.ndarray, np.ndarray]:
    """(false positives per scan, sensitivity) at every score threshold, from MONAI."""
    targets = np.concatenate([scan.target_scores for scan in scans])
    false_positives = np.concatenate([scan.false_positive_scores for scan in scans])
    return compute_froc_curve_data(false_positives, targets[targets > 0], len(targets), len(scans))


def average_precision(scans: list[ScanScore]) -> float:
    """Area under precision–recall over detections ranked by score (all-points interpolation, as VOC 2010+)."""
    total = sum(len(scan.target_scores) for scan in scans)
    ranked = sorted((item for scan in scans for item in scan.ranked), key=lambda item: -item[0])
    if total == 0 or not ranked:
        return 0.0
    hits = np.cumsum([is_hit for _, is_hit in ranked])
    recall = hits / total
    precision = hits / np.arange(1, len(ranked) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope))


def operating_points(scans: list[ScanScore], sensitivities=SENSITIVITIES) -> list[dict]:
    """Per reachable sensitivity: the highest score threshold reaching it, false positives per true microbleed and
    per scan there, and the precision."""
    targets = np.concatenate([scan.target_scores for scan in scans])
    false_positives = np.concatenate([scan.false_positive_scores for scan in scans])
    found = np.sort(targets[targets > 0])[::-1]
    points = []
    for sensitivity in sensitivities:
        needed = int(np.ceil(sensitivity * len(targets) - 1e-9))
        if needed == 0 or needed > len(found):
            continue
        threshold = float(found[needed - 1])
        fp = int(np.sum(false_positives >= threshold))
        tp = int(np.sum(targets >= threshold))
        points.append(
            {
                "sensitivity": float(sensitivity),
                "score": round(threshold, 6),
                "fp_per_cmb": round(fp / len(targets), 4),
                "fp_per_scan": round(fp / len(scans), 4),
                "precision": round(tp / max(tp + fp, 1), 4),
            }
        )
    return points


def at_sensitivity(points: list[dict], sensitivity: float) -> dict | None:
    """The operating point of `points` at `sensitivity` (None when it was not reached)."""
    return next((point for point in points if abs(point["sensitivity"] - sensitivity) < 1e-6), None)

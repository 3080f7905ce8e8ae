"""ACF: boosted trees score aggregate-channel blocks; high-scoring groups become windows (`windows_from_scores`).

The trees are plain arrays (no scikit-learn, no pickle) evaluated in vectorised numpy; they are trained
by `training/train_acf.py` and stored in safetensors with the threshold and block size in the metadata.
A window is a square on one axial slice in slice pixels, pixel n spanning n…n+1 (as `calcium_crops.Window`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from LesionDetectLib.detectors.calcium.acf_channels import DEFAULT_SHRINK, block_features
from LesionDetectLib.detectors.calcium.candidate_windows import CONTEXT_MM, EIGHT_CONNECTED, WINDOW_MM, group_windows
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.volume import Volume

__all__ = ["BoostedTrees", "Candidate", "block_features", "load_acf", "score_map", "windows_from_scores"]

ACF_FORMAT = "lesiondetect-acf"  # safetensors metadata "format" of a saved model
SCORE_CHUNK = 1 << 20  # (samples × trees) evaluated at a time


@dataclass
class BoostedTrees:
    """Binary boosted trees, all nodes concatenated; leaves have feature −1 and children −1.

    A sample goes left where x[feature] <= threshold; its raw score is base_score plus one leaf value per
    tree (log-odds), and `score` returns the logistic of that.
    """

    features: np.ndarray  # int32 (nodes,)
    thresholds: np.ndarray  # float64 (nodes,)
    left: np.ndarray  # int32 (nodes,) node index of the left child
    right: np.ndarray  # int32 (nodes,)
    values: np.ndarray  # float64 (nodes,) leaf values
    roots: np.ndarray  # int32 (trees,) first node of each tree
    base_score: float

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        """(N,) log-odds."""
        X = np.asarray(X)
        if len(X) == 0:
            return np.zeros(0)
        chunk = max(1, SCORE_CHUNK // max(len(self.roots), 1))
        return np.concatenate([self._raw_chunk(X[start : start + chunk]) for start in range(0, len(X), chunk)])

    def score(self, X: np.ndarray) -> np.ndarray:
        """(N,) probability-like scores in [0, 1]."""
        return 1.0 / (1.0 + np.exp(-self.raw_score(X)))

    def _raw_chunk(self, X: np.ndarray) -> np.ndarray:
        node = np.broadcast_to(self.roots, (len(X), len(self.roots))).copy()
        rows = np.arange(len(X))[:, None]
        while True:
            feature = self.features[node]
            inner = feature >= 0
            if not inner.any():
                break
            go_left = X[rows, np.maximum(feature, 0)] <= self.thresholds[node]
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)
        return self.base_score + self.values[node].sum(axis=1)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "features": self.features.astype(np.int32),
            "thresholds": self.thresholds.astype(np.float64),
            "left": self.left.astype(np.int32),
            "right": self.right.astype(np.int32),
            "values": self.values.astype(np.float64),
            "roots": self.roots.astype(np.int32),
            "base_score": np.array([self.base_score], dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> BoostedTrees:
        return cls(
            features=np.asarray(arrays["features"], dtype=np.int32),
            thresholds=np.asarray(arrays["thresholds"], dtype=np.float64),
            left=np.asarray(arrays["left"], dtype=np.int32),
            right=np.asarray(arrays["right"], dtype=np.int32),
            values=np.asarray(arrays["values"], dtype=np.float64),
            roots=np.asarray(arrays["roots"], dtype=np.int32),
            base_score=float(np.asarray(arrays["base_score"]).ravel()[0]),
        )


@dataclass
class Candidate:
    """A square window on axial slice k: centre (row j, column i) and side in slice pixels; its best block score."""

    k: int
    center_ji: tuple[float, float]
    side_px: float
    score: float


def load_acf(path) -> tuple[BoostedTrees, float, int]:
    """(trees, threshold, shrink) from a safetensors file written by `training/train_acf.save_acf`."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    with safe_open(str(Path(path)), framework="numpy") as handle:
        metadata = handle.metadata() or {}
    if metadata.get("format") != ACF_FORMAT:
        raise LesionDetectError(f"'{path}' is not an ACF candidate model (no '{ACF_FORMAT}' metadata).")
    return BoostedTrees.from_arrays(load_file(str(path))), float(metadata["threshold"]), int(metadata["shrink"])


def score_map(
    volume: Volume, trees: BoostedTrees, region: np.ndarray | None, shrink: int = DEFAULT_SHRINK
) -> np.ndarray:
    """float32 (k, j // shrink, i // shrink) block scores; 0 where a block cannot hold calcium."""
    depth, height, width = volume.array.shape
    scores = np.zeros((depth, height // shrink, width // shrink), dtype=np.float32)
    pixel_mm = float(np.mean(volume.spacing[:2]))
    for k in range(depth):
        plane_region = None if region is None else region[k]
        features, blocks = block_features(volume.array[k], pixel_mm, plane_region, shrink)
        if len(blocks):
            scores[k, blocks[:, 0], blocks[:, 1]] = trees.score(features)
    return scores


def windows_from_scores(
    scores: np.ndarray,
    threshold: float,
    pixel_mm: float,
    shrink: int = DEFAULT_SHRINK,
    window_mm: tuple[float, float] = WINDOW_MM,
) -> list[Candidate]:
    """One window per 8-connected group of blocks scoring ≥ threshold, slice by slice.

    Side = twice the group's extent plus CONTEXT_MM, clamped to `window_mm`; a group too large for the
    largest window is tiled with largest windows.
    """
    limits_px = np.asarray(window_mm, dtype=float) / pixel_mm
    above = (scores >= threshold) & (scores > 0)  # unscored blocks never make a window
    candidates = []
    for k in np.flatnonzero(above.any(axis=(1, 2))):
        groups, count = ndimage.label(above[k], structure=EIGHT_CONNECTED)
        for center, side, label, core in group_windows(groups, count, shrink, limits_px, CONTEXT_MM / pixel_mm):
            peak = float(scores[k][core][groups[core] == label].max())
            candidates.append(Candidate(int(k), (float(center[0]), float(center[1])), float(side), peak))
    return candidates

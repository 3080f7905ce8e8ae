"""Fit the ACF candidate classifier (boosted trees over aggregate-channel blocks) from labelled CT volumes.

Positives are blocks holding coronary calcium (label codes 1–5); negatives are the other blocks that can
hold calcium (a pixel ≥ 130 HU inside the region): bone, aortic and valve calcium, stents, noise.

Classifier: scikit-learn's HistGradientBoostingClassifier (log-loss boosting of shallow trees). Its leaves
are real-valued log-odds, so the sum is a probability-like score; histogram binning fits 3·10⁴ blocks ×
476 features with 150 trees in under a minute on two cores; depth-3 trees capture "bright AND fat around
AND no bone context" in one tree and stay cheap to evaluate in numpy. The trees are exported to plain
arrays for `LesionDetectLib.detectors.calcium.acf` (no scikit-learn at inference).

The threshold is the highest score at which at least `target_recall` of the validation lesions have a
block at or above it, counted both as 3D components of coronary voxels and as per-slice 2D components
(the stricter of the two); every such block lies in a window, so window recall is at least that.

    python training/train_acf.py --train 12 --validation 4 --out acf.safetensors
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import cc3d
import numpy as np
from scipy import ndimage

from LesionDetectLib.detectors.calcium.acf import ACF_FORMAT, BoostedTrees, Candidate, windows_from_scores
from LesionDetectLib.detectors.calcium.acf_channels import DEFAULT_SHRINK, block_features
from LesionDetectLib.detectors.calcium.labels import CORONARY_CODES
from LesionDetectLib.io.volume import Volume

Case = tuple[Volume, np.ndarray, "np.ndarray | None"]  # volume (HU), structure labels (k, j, i), region or None
CORONARY = np.isin(np.arange(256), sorted(CORONARY_CODES))  # lookup: label code → coronary
SLICE_EIGHT_CONNECTED = np.zeros((3, 3, 3), dtype=bool)
SLICE_EIGHT_CONNECTED[1] = True
BOOSTING = {"max_iter": 150, "max_depth": 3, "learning_rate": 0.1, "min_samples_leaf": 20, "l2_regularization": 1.0}


@dataclass
class CaseBlocks:
    """One case as training and evaluation need it: its scored blocks and its coronary voxels."""

    features: np.ndarray  # (N, F) float32
    blocks: np.ndarray  # (N, 3) k, block row, block column
    targets: np.ndarray  # (N,) bool: the block holds coronary calcium
    shape_kji: tuple[int, int, int]
    shrink: int
    pixel_mm: float
    voxels: np.ndarray  # (V, 3) k, j, i of coronary voxels
    lesion_3d: np.ndarray  # (V,) 3D component of each voxel
    lesion_2d: np.ndarray  # (V,) per-slice 2D component of each voxel
    feature_seconds: float

    @property
    def grid(self) -> tuple[int, int, int]:
        return (self.shape_kji[0], self.shape_kji[1] // self.shrink, self.shape_kji[2] // self.shrink)

    def score_map(self, trees: BoostedTrees) -> np.ndarray:
        """The same map as `acf.score_map`, from the stored features."""
        scores = np.zeros(self.grid, dtype=np.float32)
        scores[tuple(self.blocks.T)] = trees.score(self.features)
        return scores


def coronary_blocks(labels_slice: np.ndarray, shrink: int) -> np.ndarray:
    """(H // shrink, W // shrink) bool: blocks holding a coronary-labelled pixel."""
    rows, cols = labels_slice.shape[0] // shrink, labels_slice.shape[1] // shrink
    coronary = CORONARY[labels_slice[: rows * shrink, : cols * shrink]]
    return coronary.reshape(rows, shrink, cols, shrink).any(axis=(1, 3))


def case_blocks(volume: Volume, labels: np.ndarray, region, shrink: int) -> CaseBlocks:
    """Features and targets of every scored block of a case, and its coronary lesions."""
    pixel_mm = float(np.mean(volume.spacing[:2]))
    started = time.perf_counter()
    features, blocks, targets = [], [], []
    for k in range(volume.array.shape[0]):
        X, found = block_features(volume.array[k], pixel_mm, None if region is None else region[k], shrink)
        features.append(X)
        blocks.append(np.column_stack([np.full(len(found), k), found]))
        targets.append(coronary_blocks(labels[k], shrink)[found[:, 0], found[:, 1]])
    seconds = time.perf_counter() - started
    coronary = CORONARY[labels]
    lesions_3d = cc3d.connected_components(coronary, connectivity=26)
    lesions_2d, _ = ndimage.label(coronary, structure=SLICE_EIGHT_CONNECTED)
    voxels = np.argwhere(coronary)
    at = tuple(voxels.T)
    return CaseBlocks(
        np.concatenate(features),
        np.concatenate(blocks).astype(np.int64),
        np.concatenate(targets),
        tuple(labels.shape),
        shrink,
        pixel_mm,
        voxels,
        lesions_3d[at],
        lesions_2d[at],
        seconds,
    )


def keep_negatives(targets: np.ndarray, per_positive: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of all positives and at most `per_positive` random negatives per positive."""
    positives, negatives = np.flatnonzero(targets), np.flatnonzero(~targets)
    count = min(len(negatives), int(math.ceil(per_positive * max(len(positives), 1))))
    return np.sort(np.concatenate([positives, rng.choice(negatives, count, replace=False)]))


def trees_from_sklearn(model) -> BoostedTrees:
    """Export a fitted binary HistGradientBoostingClassifier to plain arrays."""
    nodes = [predictor.nodes for (predictor,) in model._predictors]
    sizes = np.array([len(tree) for tree in nodes])
    roots = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    stacked = np.concatenate(nodes)
    leaf = stacked["is_leaf"].astype(bool)
    offsets = np.repeat(roots, sizes)
    return BoostedTrees(
        features=np.where(leaf, -1, stacked["feature_idx"]).astype(np.int32),
        thresholds=np.where(leaf, 0.0, stacked["num_threshold"]),
        left=np.where(leaf, -1, stacked["left"].astype(np.int64) + offsets).astype(np.int32),
        right=np.where(leaf, -1, stacked["right"].astype(np.int64) + offsets).astype(np.int32),
        values=np.where(leaf, stacked["value"], 0.0),
        roots=roots.astype(np.int32),
        base_score=float(np.ravel(model._baseline_prediction)[0]),
    )


def fit_trees(X: np.ndarray, y: np.ndarray, seed: int = 0, **boosting) -> BoostedTrees:
    """Boosted shallow trees on block features, as plain arrays.

    No class weights: the negatives are already subsampled, the threshold is chosen for recall (not 0.5),
    and scikit-learn fitted ~40× slower with class_weight="balanced" on these features (measured).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    params = {**BOOSTING, **boosting}
    model = HistGradientBoostingClassifier(early_stopping=False, random_state=seed, **params)
    return trees_from_sklearn(model.fit(X, y))


def lesion_peaks(case: CaseBlocks, scores: np.ndarray, lesion_ids: np.ndarray) -> np.ndarray:
    """Per lesion (ids per coronary voxel: 3D or per-slice): its best block score (0 where none was scored)."""
    if len(case.voxels) == 0:
        return np.zeros(0)
    k, blocks = case.voxels[:, 0], case.voxels[:, 1:] // case.shrink
    inside = (blocks < scores.shape[1:]).all(axis=1)
    block_scores = np.zeros(len(k))
    block_scores[inside] = scores[k[inside], blocks[inside, 0], blocks[inside, 1]]
    return np.asarray(ndimage.maximum(block_scores, lesion_ids, np.unique(lesion_ids)), dtype=float)


def choose_threshold(peaks: np.ndarray, target_recall: float) -> float:
    """The highest threshold that keeps at least `target_recall` of the lesions' peak scores (never 0)."""
    if len(peaks) == 0:
        return 0.5
    needed = int(math.ceil(target_recall * len(peaks)))
    return float(max(np.sort(peaks)[::-1][needed - 1], 1e-6))


def window_mask(shape_kji, candidates: list[Candidate]) -> np.ndarray:
    """bool (k, j, i): pixels whose centres lie inside a candidate window of their slice."""
    mask = np.zeros(shape_kji, dtype=bool)
    for candidate in candidates:
        half = candidate.side_px / 2
        j0, i0 = np.ceil(np.subtract(candidate.center_ji, half + 0.5)).astype(int)
        j1, i1 = np.floor(np.add(candidate.center_ji, half - 0.5)).astype(int)
        mask[candidate.k, max(j0, 0) : j1 + 1, max(i0, 0) : i1 + 1] = True
    return mask


def case_recall(case: CaseBlocks, candidates: list[Candidate]) -> dict[str, int]:
    """Lesions (3D and per-slice 2D) with at least one voxel inside a window, and how many there are."""
    covered = window_mask(case.shape_kji, candidates)[tuple(case.voxels.T)]
    return {
        "lesions_3d": len(np.unique(case.lesion_3d)),
        "found_3d": len(np.unique(case.lesion_3d[covered])),
        "lesions_2d": len(np.unique(case.lesion_2d)),
        "found_2d": len(np.unique(case.lesion_2d[covered])),
    }


def evaluate(cases: list[CaseBlocks], trees: BoostedTrees, threshold: float) -> dict:
    """Lesion recall (3D, 2D), windows per slice, fraction of blocks scored, feature and tree time per slice."""
    totals = dict.fromkeys(("lesions_3d", "found_3d", "lesions_2d", "found_2d", "windows", "windows_slices"), 0)
    slices = blocks = scored = 0
    feature_seconds = tree_seconds = 0.0
    for case in cases:
        started = time.perf_counter()
        scores = case.score_map(trees)
        tree_seconds += time.perf_counter() - started
        candidates = windows_from_scores(scores, threshold, case.pixel_mm, case.shrink)
        for key, value in case_recall(case, candidates).items():
            totals[key] += value
        totals["windows"] += len(candidates)
        totals["windows_slices"] += len({c.k for c in candidates})
        slices += case.shape_kji[0]
        blocks += int(np.prod(case.grid))
        scored += len(case.blocks)
        feature_seconds += case.feature_seconds
    return {
        **totals,
        "recall_3d": totals["found_3d"] / totals["lesions_3d"] if totals["lesions_3d"] else None,
        "recall_2d": totals["found_2d"] / totals["lesions_2d"] if totals["lesions_2d"] else None,
        "windows_per_slice": totals["windows"] / max(slices, 1),
        "windows_per_slice_with_windows": totals["windows"] / max(totals["windows_slices"], 1),
        "fraction_blocks_scored": scored / max(blocks, 1),
        "feature_seconds_per_slice": feature_seconds / max(slices, 1),
        "tree_seconds_per_slice": tree_seconds / max(slices, 1),
    }


def fit_acf(
    cases: Iterable[Case],
    validation_cases: Iterable[Case] | None = None,
    shrink: int = DEFAULT_SHRINK,
    target_recall: float = 0.98,
    negatives_per_positive: float = 10.0,
    validation_every: int = 4,
    seed: int = 0,
    **boosting,
) -> tuple[BoostedTrees, float, dict]:
    """Fit the trees; choose the threshold for `target_recall` on the validation cases; return statistics.

    Without validation cases every `validation_every`-th case is held out for the threshold.
    """
    rng = np.random.default_rng(seed)
    features, targets, held_out = [], [], []
    for index, (volume, labels, region) in enumerate(cases):
        case = case_blocks(volume, labels, region, shrink)
        if validation_cases is None and index % validation_every == validation_every - 1:
            held_out.append(case)
            continue
        keep = keep_negatives(case.targets, negatives_per_positive, rng)
        features.append(case.features[keep])
        targets.append(case.targets[keep])
    X, y = np.concatenate(features), np.concatenate(targets)
    if not y.any() or y.all():
        raise ValueError(f"ACF training needs coronary and other blocks; got {int(y.sum())} of {len(y)} coronary.")
    validation = held_out if validation_cases is None else [case_blocks(*case, shrink) for case in validation_cases]
    started = time.perf_counter()
    trees = fit_trees(X, y, seed, **boosting)
    fit_seconds = time.perf_counter() - started
    scores = [case.score_map(trees) for case in validation]
    peaks_3d = [lesion_peaks(case, score, case.lesion_3d) for case, score in zip(validation, scores)]
    peaks_2d = [lesion_peaks(case, score, case.lesion_2d) for case, score in zip(validation, scores)]
    threshold = min(
        choose_threshold(np.concatenate(peaks_3d or [np.zeros(0)]), target_recall),
        choose_threshold(np.concatenate(peaks_2d or [np.zeros(0)]), target_recall),
    )
    stats = {
        "shrink": shrink,
        "train_blocks": len(y),
        "train_positives": int(y.sum()),
        "validation_cases": len(validation),
        "features": X.shape[1],
        "trees": len(trees.roots),
        "fit_seconds": fit_seconds,
        "threshold": threshold,
        "target_recall": target_recall,
        **evaluate(validation, trees, threshold),
    }
    return trees, threshold, stats


def save_acf(trees: BoostedTrees, threshold: float, path, shrink: int = DEFAULT_SHRINK) -> None:
    """Write the trees as safetensors, threshold and shrink in the metadata (read by `acf.load_acf`)."""
    from safetensors.numpy import save_file

    metadata = {"format": ACF_FORMAT, "threshold": repr(float(threshold)), "shrink": str(int(shrink))}
    save_file(trees.to_arrays(), str(path), metadata=metadata)


def synthetic_cases(seeds: Iterable[int], matrix: int):
    """Synthetic cases with the heart region found from anatomy, as the detector will see them."""
    from synthetic_cardiac_ct import make_case

    from LesionDetectLib.detectors.calcium.heart_region import find_heart_region

    for seed in seeds:
        case = make_case(seed, matrix=matrix)
        yield case.volume, case.labels, find_heart_region(case.volume).mask


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=12, help="synthetic training cases")
    parser.add_argument("--validation", type=int, default=4, help="synthetic validation cases")
    parser.add_argument("--matrix", type=int, default=512)
    parser.add_argument("--shrink", type=int, default=DEFAULT_SHRINK)
    parser.add_argument("--target-recall", type=float, default=0.98)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    trees, threshold, stats = fit_acf(
        synthetic_cases(range(args.train), args.matrix),
        synthetic_cases(range(10_000, 10_000 + args.validation), args.matrix),
        shrink=args.shrink,
        target_recall=args.target_recall,
    )
    save_acf(trees, threshold, args.out, args.shrink)
    print(json.dumps(stats, indent=2))


if __name__ == "__main__":
    main()

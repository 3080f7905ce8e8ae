"""Readers of real hemorrhage data: the head-CT PNG set (Kaggle "Head CT – hemorrhage", NeiderSmith/head_ct_dataset).

    head_ct/000.png … 199.png    one brain-windowed axial slice each, cropped to the head, no pixel size, no HU
    head_ct/labels.csv           "id, hemorrhage": 1 for ids 0–99, 0 for 100–199; no subtypes

Ids 70–99 and 170–199 are reserved for independent evaluation (../shared/DATA.md): this reader never opens
their files and drops their label rows unread. Of the project's own ids, HELD_OUT_IDS are its validation
split; each block starts where the image size changes, so the consecutive slices of one patient stay on one
side of the split.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OWN_IDS = frozenset([*range(0, 70), *range(100, 170)])
HELD_OUT_IDS = frozenset([*range(50, 70), *range(151, 170)])
TRAIN_IDS = OWN_IDS - HELD_OUT_IDS
SPLITS = {"train": TRAIN_IDS, "held_out": HELD_OUT_IDS, "own": OWN_IDS}


@dataclass
class PngSlice:
    image_id: int
    grey: np.ndarray  # (rows, cols) uint8, the PNG's brain-windowed grey values
    hemorrhage: int


def read_png_labels(root) -> dict[int, int]:
    """Id → hemorrhage label of the project's own ids (reserved rows dropped unread)."""
    path = _folder(root) / "labels.csv"
    labels = {}
    with open(path, newline="") as stream:
        rows = csv.reader(stream)
        header = [name.strip() for name in next(rows)]
        if header != ["id", "hemorrhage"]:
            raise ValueError(f"'{path}' is not the head-CT labels file: its header is {header}")
        for row in rows:
            image_id = int(row[0])
            if image_id in OWN_IDS:
                labels[image_id] = int(row[1])
    return labels


def read_png_set(root, split: str = "train") -> list[PngSlice]:
    """The slices of a split ("train", "held_out" or "own"), in id order, as grey arrays with their labels."""
    import imageio.v3 as iio

    ids = SPLITS[split]
    labels = read_png_labels(root)
    slices = []
    for image_id in sorted(ids):
        image = iio.imread(_folder(root) / f"{image_id:03d}.png")
        grey = image if image.ndim == 2 else image[..., :3].mean(axis=-1).round().astype(np.uint8)
        slices.append(PngSlice(image_id, grey, labels[image_id]))
    return slices


def _folder(root) -> Path:
    root = Path(root)
    return root / "head_ct" if (root / "head_ct").is_dir() else root

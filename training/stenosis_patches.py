"""The real stenosis patches of KarolAntczak/DeepStenosisDetection (`datasets natural/125x32x32 positive.pickle`:
125 real 32×32 stenosis-positive angiogram patches), read with an unpickler that admits numpy arrays only.

A pickle can run any code it names; this reader refuses every global except the three numpy needs to rebuild an
array (`ndarray`, `dtype`, `_reconstruct`), so a tampered file fails instead of running. Training-only: the
product never reads a pickle.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
}


class ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refused: the file names {module}.{name}, which is not a numpy array part")
        if name == "_reconstruct":
            import importlib

            return importlib.import_module(module).__dict__[name]  # numpy.core is numpy 1's name of numpy._core
        return getattr(np, name)


def read_patches(path) -> np.ndarray:
    """The patches as (n, 32, 32) float32, whatever array layout the file holds them in."""
    with open(Path(path), "rb") as stream:
        patches = ArraysOnlyUnpickler(stream).load()
    patches = np.asarray(patches, dtype=np.float32)
    if patches.ndim == 4 and 1 in (patches.shape[1], patches.shape[-1]):
        patches = patches.reshape(patches.shape[0], *[s for s in patches.shape[1:] if s != 1])
    if patches.ndim != 3:
        raise ValueError(f"'{path}' holds an array of shape {patches.shape}, not a stack of 2D patches")
    return patches

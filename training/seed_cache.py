"""Generated training inputs, one file per generator seed: made by spawned worker processes, kept in a folder.

Runs that compare models (backbones, with and without a module) then read the same generated data without
generating it again. Workers are spawned, not forked: a fork of a process that already runs torch's threads can
hang.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch


def cached_by_seed(make: Callable, seeds, arguments: tuple, file_name: Callable, cache: Path | None, workers: int):
    """`make(seed, *arguments)` for every seed, in seed order; each result saved in `cache / file_name(seed)`
    (torch's format, tensors and plain values only) and read from there when it exists."""
    seeds = list(seeds)
    missing = [seed for seed in seeds if cache is None or not (cache / file_name(seed)).is_file()]
    columns = [[argument] * len(missing) for argument in arguments]
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) if workers > 1 else None
    made = {}
    try:
        for seed, inputs in zip(missing, (pool.map if pool else map)(make, missing, *columns)):
            if cache:
                cache.mkdir(parents=True, exist_ok=True)
                torch.save(inputs, cache / file_name(seed))
            made[seed] = inputs
    finally:
        if pool:
            pool.shutdown()
    return [made[seed] if seed in made else torch.load(cache / file_name(seed), weights_only=True) for seed in seeds]

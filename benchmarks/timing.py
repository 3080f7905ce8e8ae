"""The benchmarks' one timing rule: after one warm-up run, the fastest of `repeats` runs counts."""

from __future__ import annotations

import time


def fastest(run, repeats: int):
    """(best seconds, the last result) of `repeats` calls of `run` after a warm-up call."""
    run()  # warm-up: first-call allocations and library initialisation
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result

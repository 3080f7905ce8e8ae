"""The benchmarks' one timing rule (after one warm-up run, the fastest of `repeats` runs counts) and the arguments of
those that time one synthetic case or a given input with torch on the CPU."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def case_arguments(description: str, what: str):
    """--seed (of the synthetic `what`), --input (a real one instead), --threads, --repeats; torch's threads set."""
    import torch

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seed", type=int, default=9001, help=f"generator seed of the synthetic {what}")
    parser.add_argument("--input", type=Path, help=f"a {what} to read instead of a synthetic one")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args


def fastest(run, repeats: int):
    """(best seconds, the last result) of `repeats` calls of `run` after a warm-up call."""
    run()  # warm-up: first-call allocations and library initialisation
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result

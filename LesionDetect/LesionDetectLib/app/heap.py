"""Cheaper large arrays on Linux: keep freed memory in the heap and skip transparent huge pages.

On these VMs each page handed back to the OS and faulted in again costs ≈ 2.5 µs, which made volume
reads and CNN passes 1.5–4× slower (see PLATFORM.md); and numpy's request for transparent huge pages
made the kernel compact memory synchronously: measured here, a detector run on a 512×512×300
volume took 0.55–0.9 s with it and 0.19–0.27 s without. A no-op off Linux/glibc.
"""

from __future__ import annotations

import ctypes
import sys

import numpy as np

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4


def keep_freed_memory() -> bool:
    """Serve large arrays from a never-trimmed glibc heap, without huge-page compaction; True if applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    multiarray = getattr(np, "_core", None) or np.core
    multiarray.multiarray._set_madvise_hugepage(False)
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))

"""Keep freed large arrays in the process heap instead of returning them to the OS.

On these VMs each page handed back and faulted in again costs ≈ 2.5 µs, which made volume reads
and CNN passes 1.5–4× slower (see PLATFORM.md). glibc only; a no-op elsewhere.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4


def keep_freed_memory() -> bool:
    """Tell glibc malloc to serve large arrays from the heap and never trim it; True if applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))

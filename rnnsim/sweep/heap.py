"""A sweep process's heap: keep what a run frees for the next run, hand it back where copying it would cost (glibc).

The backends call :func:`keep_heap` once per sweep process and :func:`trim_heap` in each forked pool worker;
:func:`libc_function` reaches the C library (also for the pool workers' parent-death signal).
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["keep_heap", "trim_heap", "libc_function", "HEAP_MMAP_THRESHOLD", "HEAP_TRIM_THRESHOLD"]


HEAP_MMAP_THRESHOLD = 64 << 20
HEAP_TRIM_THRESHOLD = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


def keep_heap() -> bool:
    """Keep freed memory in this process for the next run instead of handing it back to the kernel (glibc only).

    A run allocates and frees its arrays; with glibc's defaults the heap's top was trimmed and grown again, and
    larger arrays were mmap'ed and unmapped, so every sweep of `regimes` took ~51,000 fresh page faults (~0.1 s of
    system time in a 0.7 s sweep, more when two workers fault at once). With arrays up to 64 MiB served from the
    heap and up to 256 MiB of free heap kept, it takes tens. Called once per sweep process (the pool's workers
    inherit it through fork; Dask workers call it themselves). Returns whether the setting took effect."""
    mallopt = libc_function("mallopt")
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD))


def trim_heap() -> None:
    """Hand this process's free heap pages back to the kernel (glibc's malloc_trim).

    A forked pool worker calls it first (``_worker_init``): the free heap it inherited (what ``keep_heap`` kept in
    the parent) is shared with the parent until one of them writes a page, and that first write copies it. Dropped
    in the worker, the worker's arrays get fresh pages and the parent's pages are its own again (its first write is
    a cheap fault, no copy). Against trimming in the parent before the fork (which made the parent fault its arrays
    in again), `python -m benchmarks.ab_pool` gave per-round medians of 0.91-1.00 (six runs of 9-21 rounds): within
    the noise."""
    malloc_trim = libc_function("malloc_trim")
    if malloc_trim is not None:
        malloc_trim(0)


def libc_function(name: str) -> Any:
    """The C library's function ``name`` (errno kept) on Linux, or None (another system, or a C library without it:
    musl has no mallopt or malloc_trim)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None

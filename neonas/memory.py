"""Freed memory back to the operating system, between the candidates a worker process scores.

A search's Ray worker scores one candidate after another in the same process (Tune reuses its
actor and runs each trial in a new thread). The tensors of a candidate (weights, activations,
gradients) are freed when it is done, but glibc's malloc keeps freed memory in its heaps for
reuse instead of returning it, and threads are served from several heaps (arenas, up to 8 per
core), each keeping its own: a worker's resident memory then climbs with every trial, not
with what it holds. `malloc_trim(0)` returns the free pages of every heap (glibc 2.8 and
later). Measured in benchmarks/README.md, "Memory per evaluating worker".
"""

from __future__ import annotations

import ctypes
import functools
import gc
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim from the C library this process runs on; None on other C libraries
    (musl, macOS, Windows), which have no such call."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, TypeError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Collect unreachable objects, then hand the C heap's free pages back to the OS.

    Returns False where the C library cannot return them (then only the collection ran).
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True

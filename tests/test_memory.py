"""Handing freed heap memory back to the OS between candidates (neonas/memory.py)."""

from __future__ import annotations

import platform
import sys

import pytest

import neonas.memory as memory


def _anonymous_mb() -> float:
    with open("/proc/self/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Anonymous:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no Anonymous line in smaps_rollup")


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="malloc_trim and /proc/self/smaps_rollup exist on Linux with glibc only",
)
def test_freed_heap_pages_go_back_to_the_os() -> None:
    # 2000 blocks of 64 KiB (below malloc's mmap threshold: they live in the heap), then one
    # small block after them, so that free() alone cannot shrink the heap from its top.
    blocks = [bytearray(64 * 1024) for _ in range(2000)]
    pin = bytearray(64 * 1024)
    del blocks
    held = _anonymous_mb()
    assert memory.release_freed_memory() is True
    assert held - _anonymous_mb() > 60  # of the 125 MB freed
    del pin


def test_without_malloc_trim_only_the_collection_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)  # musl, macOS, Windows
    assert memory.release_freed_memory() is False

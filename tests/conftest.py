"""Fixtures shared by several test files."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole session (starting Ray takes seconds): 2 CPUs, no dashboard."""
    import ray

    started = not ray.is_initialized()
    if started:
        # address="local": always a fresh cluster of our own, never one left running on the machine.
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(autouse=True)
def no_ray_address(monkeypatch):
    """RAY_ADDRESS exported in the shell would send `search`, `train` and `supernet train` to
    that cluster (neonas/cluster.py): tests that want it set it themselves."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


@pytest.fixture
def benchmark_module(monkeypatch):
    """Imports a script of benchmarks/ by name: the scripts import each other by name, so their
    folder goes on sys.path for the test."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module

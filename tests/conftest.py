"""Fixtures shared by several test files."""

from __future__ import annotations

import pytest


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

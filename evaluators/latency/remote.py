"""Latency measured as a Ray task on the cluster node that has the target device.

A sweep's trials may run on CPU-only nodes; the measurement itself asks Ray for the device's
resource (`num_gpus` for CUDA, the "NPU" resource Ray registers for Ascend), so Ray places
it where the device is and makes exactly one device visible to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from torch import nn

from evaluators.latency.backends import MEASURED_KINDS
from evaluators.latency.result import LatencyResult
from neonas.errors import UserError


def ray_options(hw: str, threads: int | None = None) -> dict[str, Any]:
    """Ray task options that place a measurement for `hw` on a node with that device."""
    kind, _, index = hw.partition(":")
    if kind not in MEASURED_KINDS:
        raise UserError(f"cannot measure {hw!r} remotely: use cpu, cuda or npu")
    if index:
        raise UserError(f"remote measurement lets Ray pick the device: use --hw {kind}, not {hw!r}")
    if kind == "cpu":
        return {"num_cpus": threads or 1}
    if kind == "cuda":
        # Ray refuses {"GPU": 1} in `resources`; GPUs are requested with num_gpus.
        return {"num_cpus": 1, "num_gpus": 1}
    return {"num_cpus": 1, "resources": {"NPU": 1}}


def measure_latency_remote(
    model: nn.Module,
    input_shape: Sequence[int],
    hw: str = "cuda",
    dtype: str = "fp32",
    batch: int = 1,
    *,
    threads: int | None = None,
    **options: Any,
) -> LatencyResult:
    """`measure_latency` run as a Ray task that requests `hw`'s device (Ray must be reachable)."""
    task = _remote_measure().options(**ray_options(hw, threads))
    ref = task.remote(model, tuple(input_shape), hw, dtype, batch, threads, options)
    import ray

    return ray.get(ref)


@cache
def _remote_measure() -> Any:
    import ray

    return ray.remote(_measure_on_worker)


def _measure_on_worker(
    model: nn.Module,
    input_shape: tuple[int, ...],
    hw: str,
    dtype: str,
    batch: int,
    threads: int | None,
    options: dict[str, Any],
) -> LatencyResult:
    """Runs on the chosen node: Ray has made the one assigned device visible as index 0."""
    import dataclasses

    import ray

    from evaluators.latency.measure import measure_latency

    result = measure_latency(model, input_shape, hw, dtype, batch, threads=threads, **options)
    node = ray.get_runtime_context().get_node_id()
    return dataclasses.replace(result, settings={**result.settings, "ray_node": node})

"""Measuring stations: in a sweep, one Ray actor per device times every measurement, one at a time.

Concurrent trials that time on one device disturb each other (two forwards share the GPU or
NPU; on the CPU a measurement competes with the other trials' compute). A station is a named
Ray actor with `max_concurrency=1` that holds its device's Ray resource for its lifetime:
- `cuda`: `num_gpus=1`; `npu`: the custom resource "NPU" (what Ray registers for Ascend
  devices); Ray places the station on a node that has the device, so a driver without one
  still measures there, and nothing else Ray schedules gets that device;
- `cpu`: a dedicated measurement slot: the station reserves `threads` CPUs (default 1) that
  no trial can be given, and times there with that many torch threads. The other trials keep
  computing on the other CPUs (they are not paused): memory bandwidth and caches are still
  shared, which the result says (`settings["isolation"]`).
Every result records when it was measured (`measured_from`, `measured_to`, wall clock) and on
which node and station, so overlap can be checked afterwards.

The driver opens the stations before the trials start (`open_stations`), so that trials
cannot take every CPU first and leave a station waiting for one. When a reservation would
leave no node able to run a trial (a cluster that shrank, or one node with one CPU), the
driver reopens the station as a `shared_plan`: pinned to a node that runs trials, holding
nothing, it measures on the CPU (or device) of the trial that waits for the result
(neonas.search.capacity).
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Sequence
from typing import Any

from torch import nn

from evaluators.latency.backends import MEASURED_KINDS
from evaluators.latency.result import LatencyResult
from neonas.errors import UserError

NAME = "neonas-measure"
STATION_WAIT_S = 120.0  # how long a sweep's trial waits for its driver to reopen a station
NAME_RELEASE_S = 30.0  # how long close_stations waits for Ray to free a killed station's name
# Handles of the stations this process opened: a Ray actor (named or not, unless detached)
# is destroyed when its last handle goes, so the opener keeps them until close_stations.
_held: dict[str, Any] = {}


@dataclasses.dataclass(frozen=True)
class StationPlan:
    """How a device kind is measured in a sweep: how many stations and what each holds."""

    hw: str
    stations: int
    options: dict[str, Any]  # Ray actor resource options of one station
    isolation: str  # one line for users and for every result

    def name(self, index: int) -> str:
        return f"{NAME}-{self.hw}-{index}"


def station_plan(
    hw: str,
    threads: int | None = None,
    resource: str | None = None,
    cluster: dict[str, float] | None = None,
    max_stations: int | None = None,
) -> StationPlan:
    """Stations for `hw` ('cpu', 'cuda', 'npu'); `resource` replaces the device resource (a
    custom one standing in for a device in tests); `cluster` is ray.cluster_resources();
    `max_stations` caps their number (trials that need the device keep the others)."""
    kind, _, index = hw.partition(":")
    if kind not in MEASURED_KINDS:
        raise UserError(f"cannot measure {hw!r} in a sweep: use cpu, cuda or npu")
    if index:
        raise UserError(f"a sweep lets Ray pick the device: use --hw {kind}, not {hw!r}")
    cluster = cluster or {}
    if resource is not None:
        options: dict[str, Any] = {"num_cpus": 0, "resources": {resource: 1}}
        count, held = int(cluster.get(resource, 1)), f"the {resource} resource"
    elif kind == "cpu":
        options, count = {"num_cpus": threads or 1}, 1
        return StationPlan(
            kind,
            count,
            options,
            f"dedicated slot: {threads or 1} CPU(s) reserved for measuring, one measurement at "
            "a time; other trials keep running on the other CPUs (not paused)",
        )
    elif kind == "cuda":
        options = {"num_cpus": 0, "num_gpus": 1}  # Ray refuses {"GPU": 1} in `resources`
        count, held = int(cluster.get("GPU", 1)), "one GPU"
    else:
        options = {"num_cpus": 0, "resources": {"NPU": 1}}
        count, held = int(cluster.get("NPU", 1)), "one NPU"
    count = max(min(count, max_stations or count), 1)
    return StationPlan(
        kind,
        count,
        options,
        f"exclusive device: {count} station(s), each holding {held}, one measurement at a time",
    )


class MeasuringStation:
    """The actor: times one model at a time on its device (max_concurrency=1)."""

    def __init__(self, hw: str, isolation: str, threads: int | None = None) -> None:
        self.hw = hw
        self.isolation = isolation
        self.threads = threads

    def node_id(self) -> str:
        """The Ray node this station runs on (what it holds is held there)."""
        import ray

        return ray.get_runtime_context().get_node_id()

    def measure(
        self,
        model: nn.Module,
        input_shape: Sequence[int],
        dtype: str,
        batch: int,
        options: dict[str, Any],
    ) -> LatencyResult:
        import ray

        from evaluators.latency.measure import measure_latency

        start = time.time()
        result = measure_latency(
            model, input_shape, self.hw, dtype, batch, threads=self.threads, **options
        )
        end = time.time()
        context = ray.get_runtime_context()
        return dataclasses.replace(
            result,
            settings={
                **result.settings,
                "isolation": self.isolation,
                "measured_from": start,
                "measured_to": end,
                "ray_node": context.get_node_id(),
                "station": context.get_actor_name(),
            },
        )


def shared_plan(hw: str, node: str, threads: int | None = None) -> StationPlan:
    """One station for `hw` on `node` that reserves nothing: trials on that node may be given
    every CPU and device; the trial that measures waits (idle) while the station times."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    kind = hw.partition(":")[0]
    return StationPlan(
        kind,
        1,
        # No num_gpus: Ray 2.60 leaves CUDA_VISIBLE_DEVICES alone for an actor given no GPU
        # (unless RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO=1), so a cuda station sees the node's GPUs.
        {"num_cpus": 0, "scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=False)},
        f"shared slot: nothing reserved (the cluster has no room for a reservation beside a "
        f"trial); one measurement at a time, on the {'CPU' if kind == 'cpu' else 'device'} of "
        "the node that runs the trials, whose measuring trial waits; other trials there keep "
        "running (not paused)",
    )


def plan_holds(plan: StationPlan) -> dict[str, float]:
    """The Ray resources one station of `plan` holds, e.g. {"CPU": 1} or {"GPU": 1}."""
    held = {
        "CPU": float(plan.options.get("num_cpus", 0)),
        "GPU": float(plan.options.get("num_gpus", 0)),
        **{name: float(amount) for name, amount in plan.options.get("resources", {}).items()},
    }
    return {name: amount for name, amount in held.items() if amount > 0}


def open_stations(
    plan: StationPlan, threads: int | None = None, timeout: float | None = None
) -> list[Any]:
    """Create (or find) the plan's stations; the caller (the sweep's driver) owns them.

    With `timeout`, stations not placed by then are killed and GetTimeoutError raised (no
    node has room for them now)."""
    import ray

    actor = ray.remote(MeasuringStation)
    handles = []
    for index in range(plan.stations):
        handles.append(
            actor.options(
                name=plan.name(index), get_if_exists=True, max_concurrency=1, **plan.options
            ).remote(plan.hw, plan.isolation, threads)
        )
    try:
        ray.get([h.__ray_ready__.remote() for h in handles], timeout=timeout)  # placed, held
    except ray.exceptions.GetTimeoutError:
        for handle in handles:
            ray.kill(handle)
        raise
    _held.update({plan.name(index): h for index, h in enumerate(handles)})
    return handles


def close_stations(plan: StationPlan) -> None:
    """Kill the plan's stations (their devices and CPUs go back to Ray)."""
    import ray

    for index in range(plan.stations):
        _held.pop(plan.name(index), None)
        try:
            ray.kill(ray.get_actor(plan.name(index)))
        except ValueError:
            continue
        # The name is free once Ray has the actor dead; a station reopened under it before
        # then would be this dying one (get_if_exists).
        deadline = time.monotonic() + NAME_RELEASE_S
        while time.monotonic() < deadline:
            try:
                ray.get_actor(plan.name(index))
            except ValueError:
                break
            time.sleep(0.1)


def measure_latency_remote(
    model: nn.Module,
    input_shape: Sequence[int],
    hw: str = "cuda",
    dtype: str = "fp32",
    batch: int = 1,
    *,
    threads: int | None = None,
    open_missing: bool = True,
    **options: Any,
) -> LatencyResult:
    """`measure_latency` on a station of the Ray cluster (opened here if the driver opened none;
    it then lives as long as this process's Ray job). A sweep's trial passes
    `open_missing=False`: its driver owns the stations and reopens one that a lost node took
    with it, so the trial waits up to STATION_WAIT_S for it instead (a station opened by a
    trial could wait forever for a CPU that trials hold)."""
    import ray

    kind = hw.partition(":")[0]
    if not _station_count(kind):
        if open_missing:
            open_stations(station_plan(hw, threads, cluster=ray.cluster_resources()), threads)
        else:
            deadline = time.monotonic() + STATION_WAIT_S
            while not _station_count(kind) and time.monotonic() < deadline:
                time.sleep(0.5)
    return measure_on_station(model, input_shape, kind, dtype, batch, options)


def measure_on_station(
    model: nn.Module,
    input_shape: Sequence[int],
    hw: str,
    dtype: str,
    batch: int,
    options: dict[str, Any] | None = None,
    stations: int | None = None,
) -> LatencyResult:
    """Time `model` on one of the stations opened for `hw` (UserError if there is none)."""
    import ray

    kind = hw.partition(":")[0]
    count = stations or _station_count(kind)
    if not count:
        raise UserError(
            f"no measuring station for {kind} is open on this Ray cluster; the sweep's driver "
            "opens them (evaluators.latency.station.open_stations)"
        )
    handle = ray.get_actor(f"{NAME}-{kind}-{random.randrange(count)}")
    return ray.get(handle.measure.remote(model, tuple(input_shape), dtype, batch, options or {}))


def _station_count(kind: str) -> int:
    import ray

    count = 0
    while True:
        try:
            ray.get_actor(f"{NAME}-{kind}-{count}")
        except ValueError:
            return count
        count += 1

"""What a sweep's driver sets up so that measured latency is timed one trial at a time per device.

`SweepMeasurement.open(hw, cpus_per_trial, trial_need=...)` opens the measuring stations of a
measured target (evaluators.latency.station; nothing for predicted ones) before any trial
starts, and `wrap(evaluate)` makes every trial measure through them: inside the wrapped call,
`get_hw(hw)` without options returns a target with `remote=True`. The driver prints
`describe()`, counts `holds()` out of the trials' concurrency, lets the stations give up their
reservation (`release`) when the cluster has no room left for a trial beside them
(neonas.search.capacity), and calls `close()` when the sweep ends.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from evaluators.hardware import TargetOptions, default_target_options, get_hw
from evaluators.latency.station import (
    StationPlan,
    close_stations,
    open_stations,
    plan_holds,
    shared_plan,
    station_plan,
)
from neonas.errors import UserError


@dataclass(frozen=True)
class MeasuringTrial:
    """A trial's evaluate function that measures latency on the sweep's stations (picklable)."""

    evaluate: Callable[..., None]
    threads: int

    def __call__(
        self, config: Any, settings: Any, report: Callable[[dict[str, Any]], None]
    ) -> None:
        options = TargetOptions(remote=True, threads=self.threads, in_sweep=True)
        with default_target_options(options):
            self.evaluate(config, settings, report)


class SweepMeasurement:
    """The stations of one sweep (none for a predicted target), and where they hold what.

    A sweep whose cluster changes calls `release(nodes)` (neonas.search.capacity): the
    stations then give up their reservation and measure as one shared station on a node that
    runs trials; the same happens when a station's node has left the cluster (`lost`).
    """

    def __init__(self, plan: StationPlan | None, threads: int, nodes: list[str] | None = None):
        self.plan = plan
        self.threads = threads
        self.nodes = nodes or []  # the node of each station

    @classmethod
    def open(
        cls,
        hw: str,
        threads: int,
        resource: str | None = None,
        trial_need: dict[str, float] | None = None,
    ) -> SweepMeasurement:
        """Open the stations `hw` needs on the connected Ray cluster; `resource` stands in for
        the device resource (tests). With `trial_need` (a trial's resources), stations are
        opened without a reservation at once when no node could host them and a trial."""
        import ray

        target = get_hw(hw, TargetOptions(remote=True, threads=threads))
        if target.source != "measured":
            return cls(None, threads)
        device = getattr(target, "device_hw", hw)
        # Trials that need the device too get every device but one station's.
        shares = bool(trial_need) and any(
            (trial_need or {}).get(name, 0) > 0
            for name in plan_holds(station_plan(device, threads, resource))
        )
        plan = station_plan(
            device, threads, resource, ray.cluster_resources(), max_stations=1 if shares else None
        )
        measuring = cls(plan, threads)
        room = shared_station_nodes(plan, trial_need or {}, _alive_nodes())
        if room is None:
            try:
                measuring._open(plan, timeout=OPEN_TIMEOUT_S)
                return measuring
            except ray.exceptions.GetTimeoutError:
                room = list(_alive_nodes())
        measuring._open(shared_plan(plan.hw, _device_node(plan.hw, room), threads))
        return measuring

    def _open(self, plan: StationPlan, timeout: float | None = None) -> None:
        import ray

        handles = open_stations(plan, self.threads, timeout)
        self.plan = plan
        self.nodes = ray.get([handle.node_id.remote() for handle in handles])

    def holds(self) -> dict[str, dict[str, float]]:
        """Node id -> the Ray resources the stations hold there."""
        held: dict[str, dict[str, float]] = {}
        if self.plan is None:
            return held
        for node in self.nodes:
            for name, amount in plan_holds(self.plan).items():
                held.setdefault(node, {})[name] = held.get(node, {}).get(name, 0.0) + amount
        return held

    def lost(self, alive: Collection[str]) -> bool:
        """Whether a station's node has left the cluster (the station with it)."""
        return self.plan is not None and any(node not in alive for node in self.nodes)

    def release(self, nodes: Sequence[str]) -> None:
        """Reopen as one shared station (no reservation) on one of `nodes` (nodes that can run
        trials); a device kind picks one that has the device."""
        if self.plan is None:
            return
        close_stations(self.plan)
        self._open(shared_plan(self.plan.hw, _device_node(self.plan.hw, nodes), self.threads))

    def wrap(self, evaluate: Callable[..., None]) -> Callable[..., None]:
        """`evaluate` measuring on the stations (itself for a predicted target)."""
        return evaluate if self.plan is None else MeasuringTrial(evaluate, self.threads)

    def describe(self) -> str | None:
        """One line on how latency is measured in this sweep, or None when it is predicted."""
        return (
            None
            if self.plan is None
            else f"measuring latency on {self.plan.hw}: {self.plan.isolation}"
        )

    def close(self) -> None:
        if self.plan is not None:
            close_stations(self.plan)


# How long a reserved station may wait to be placed (a station actor starts a Python with
# torch: over a minute on a loaded machine) before it opens without a reservation.
OPEN_TIMEOUT_S = 300.0
DEVICE_RESOURCES = {"cuda": "GPU", "npu": "NPU"}


def _alive_nodes() -> dict[str, dict[str, float]]:
    import ray

    return {n["NodeID"]: dict(n.get("Resources", {})) for n in ray.nodes() if n["Alive"]}


def shared_station_nodes(
    plan: StationPlan, trial_need: dict[str, float], nodes: dict[str, dict[str, float]]
) -> list[str] | None:
    """Where a station without reservation should go: None when the plan's reserved station
    and one trial fit on the alive `nodes` together (or no trial need is known, or no trial
    fits anywhere: the driver then ends the session and says why); otherwise the nodes that
    could host a trial beside no station."""
    need = {name: amount for name, amount in trial_need.items() if amount > 0}
    if not need:
        return None
    hold = plan_holds(plan)

    def room(total: dict[str, float], taken: dict[str, float]) -> bool:
        return all(total.get(k, 0.0) - taken.get(k, 0.0) >= v - 1e-9 for k, v in need.items())

    for station_node, station_total in nodes.items():
        if not room_for_hold(station_total, hold):
            continue
        if any(room(total, hold if node == station_node else {}) for node, total in nodes.items()):
            return None  # Ray may still place the station elsewhere: the driver watches that
    free = [node for node, total in nodes.items() if room(total, {})]
    return free or None  # no trial fits at all: the driver ends the session and says so


def room_for_hold(total: dict[str, float], hold: dict[str, float]) -> bool:
    """Whether a node with `total` resources can hold a station's `hold` at all."""
    return all(total.get(name, 0.0) >= amount for name, amount in hold.items())


def _device_node(hw: str, nodes: Sequence[str]) -> str:
    """The first of `nodes` that has `hw`'s device (any node for cpu); else the first."""
    resource = DEVICE_RESOURCES.get(hw)
    if resource is not None:
        alive = _alive_nodes()
        with_device = [node for node in nodes if alive.get(node, {}).get(resource, 0) > 0]
        if with_device:
            return with_device[0]
    if not nodes:
        raise UserError(f"no node of the Ray cluster is left to measure {hw} on")
    return nodes[0]

"""What a sweep's driver sets up so that measured latency is timed one trial at a time per device.

`SweepMeasurement.open(hw, cpus_per_trial)` opens the measuring stations of a measured target
(evaluators.latency.station; nothing for predicted ones) before any trial starts, and
`wrap(evaluate)` makes every trial measure through them: inside the wrapped call, `get_hw(hw)`
without options returns a target with `remote=True`. The driver prints `describe()`, counts
`reserved_cpus` out of the trials' concurrency, and calls `close()` when the sweep ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evaluators.hardware import TargetOptions, default_target_options, get_hw
from evaluators.latency.station import StationPlan, close_stations, open_stations, station_plan


@dataclass(frozen=True)
class MeasuringTrial:
    """A trial's evaluate function that measures latency on the sweep's stations (picklable)."""

    evaluate: Callable[..., None]
    threads: int

    def __call__(
        self, config: Any, settings: Any, report: Callable[[dict[str, Any]], None]
    ) -> None:
        with default_target_options(TargetOptions(remote=True, threads=self.threads)):
            self.evaluate(config, settings, report)


@dataclass(frozen=True)
class SweepMeasurement:
    """The stations of one sweep (none for a predicted target)."""

    plan: StationPlan | None
    threads: int

    @classmethod
    def open(cls, hw: str, threads: int, resource: str | None = None) -> SweepMeasurement:
        """Open the stations `hw` needs on the connected Ray cluster; `resource` stands in for
        the device resource (tests)."""
        import ray

        target = get_hw(hw, TargetOptions(remote=True, threads=threads))
        if target.source != "measured":
            return cls(None, threads)
        device = getattr(target, "device_hw", hw)
        plan = station_plan(device, threads, resource, ray.cluster_resources())
        open_stations(plan, threads)
        return cls(plan, threads)

    @property
    def reserved_cpus(self) -> int:
        """CPUs the stations hold, which no trial can get."""
        return int(self.plan.options.get("num_cpus", 0)) * self.plan.stations if self.plan else 0

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

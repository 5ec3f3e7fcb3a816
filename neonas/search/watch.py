"""The capacity watch inside Ray Tune: a callback that looks at the cluster on every Tune step
while trials wait, and a stopper that ends the experiment when no trial can run
(neonas.search.capacity decides; this module only plugs it into Tune's public hooks)."""

from __future__ import annotations

from typing import Any

from ray.tune import Callback
from ray.tune.stopper import Stopper

from neonas.search.capacity import CapacityWatch


class CapacityCallback(Callback):
    """Tells the watch, after every Tune step, whether trials wait and whether one runs."""

    def __init__(self, watch: CapacityWatch) -> None:
        self.watch = watch

    def __getstate__(self) -> dict[str, Any]:
        return {"watch": None}  # Tune pickles its run config; the watch holds live handles

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if self.watch is None:
            return
        statuses = {trial.status for trial in trials}
        self.watch.check(waiting="PENDING" in statuses, running="RUNNING" in statuses)


class CapacityStop(Stopper):
    """Ends the Tune experiment (waiting trials included) once the watch gives up."""

    def __init__(self, watch: CapacityWatch) -> None:
        self.watch = watch

    def __getstate__(self) -> dict[str, Any]:
        return {"watch": None}

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.watch is not None and self.watch.stop_reason is not None

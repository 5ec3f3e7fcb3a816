"""What the search optimises: which registered metrics, in which direction (evaluators/metrics.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evaluators.metrics import goal

# "pareto": the accuracy signal up, latency down (multi-objective); "scalar": the MnasNet
# reward `reward` (trial.mnas_reward), one number up. Directions come from the registry.
OBJECTIVES: dict[str, tuple[str, ...]] = {
    "pareto": ("accuracy", "latency_ms"),
    "scalar": ("reward",),
}


def goals(objective: str) -> dict[str, str]:
    """Each metric of the objective -> 'max' or 'min', in the objective's order."""
    return {name: goal(name) for name in OBJECTIVES[objective]}


def study_directions(objective: str) -> list[str]:
    """Optuna directions in the order of the objective's metrics."""
    return ["maximize" if way == "max" else "minimize" for way in goals(objective).values()]


def oriented(metrics: dict[str, Any], objective: str = "pareto") -> tuple[float, ...]:
    """The objective's values signed so that larger is better on each (for dominance tests)."""
    return tuple(
        float(metrics[name]) if way == "max" else -float(metrics[name])
        for name, way in goals(objective).items()
    )


def best_first(by: str, objective: str = "pareto") -> Callable[[dict[str, Any]], tuple]:
    """A sort key over a trial's metrics: best first on `by`, ties broken by the objective's
    other metrics, each in its own direction (the Pareto front and `neonas export --by`)."""
    ways = goals(objective)
    names = (by, *(name for name in ways if name != by))
    signs = [-1.0 if goal(name) == "max" else 1.0 for name in names]
    return lambda metrics: tuple(
        sign * float(metrics[name]) for sign, name in zip(signs, names, strict=True)
    )


def objective_values(metrics: dict[str, Any], objective: str) -> list[float]:
    """The values to tell Optuna for a completed trial's metrics."""
    return [float(metrics[name]) for name in OBJECTIVES[objective]]


def ranking_metric(objective: str) -> tuple[str, str]:
    """The single metric (and mode) ASHA ranks trials by: accuracy, or the MnasNet reward."""
    name = "reward" if objective == "scalar" else "accuracy"
    return name, goal(name)

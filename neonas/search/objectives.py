"""What the search optimises: which registered metrics, in which direction (evaluators/metrics.py)."""

from __future__ import annotations

from typing import Any

from evaluators.metrics import goal

# "pareto": the accuracy signal up, latency down (multi-objective); "scalar": the MnasNet
# reward `score` (trial.mnas_reward), one number up. Directions come from the registry.
OBJECTIVES: dict[str, tuple[str, ...]] = {
    "pareto": ("accuracy", "latency_ms"),
    "scalar": ("score",),
}


def study_directions(objective: str) -> list[str]:
    """Optuna directions in the order of the objective's metrics."""
    return ["maximize" if goal(name) == "max" else "minimize" for name in OBJECTIVES[objective]]


def objective_values(metrics: dict[str, Any], objective: str) -> list[float]:
    """The values to tell Optuna for a completed trial's metrics."""
    return [float(metrics[name]) for name in OBJECTIVES[objective]]


def ranking_metric(objective: str) -> tuple[str, str]:
    """The single metric (and mode) ASHA ranks trials by: accuracy, or the scalar score."""
    name = "score" if objective == "scalar" else "accuracy"
    return name, goal(name)

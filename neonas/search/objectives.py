"""What the search optimises: metric names and directions for Optuna and Ray Tune."""

from __future__ import annotations

from typing import Any

# objective -> (metrics, modes). "pareto": accuracy proxy up, latency down (multi-objective);
# "scalar": the MnasNet reward `score` (evaluate.mnas_reward), one number up.
OBJECTIVES: dict[str, tuple[list[str], list[str]]] = {
    "pareto": (["accuracy", "latency_ms"], ["max", "min"]),
    "scalar": (["score"], ["max"]),
}


def tune_metric(objective: str) -> tuple[str | list[str], str | list[str]]:
    """(metric, mode) as OptunaSearch takes them: lists for several objectives, else strings."""
    metrics, modes = OBJECTIVES[objective]
    return (metrics, modes) if len(metrics) > 1 else (metrics[0], modes[0])


def study_directions(objective: str) -> list[str]:
    """Optuna directions in the order of the objective's metrics."""
    return ["maximize" if mode == "max" else "minimize" for mode in OBJECTIVES[objective][1]]


def objective_values(metrics: dict[str, Any], objective: str) -> list[float]:
    """The values to tell Optuna for a completed trial's metrics."""
    return [float(metrics[name]) for name in OBJECTIVES[objective][0]]


def ranking_metric(objective: str) -> tuple[str, str]:
    """The single metric (and mode) ASHA ranks trials by: accuracy, or the scalar score."""
    return ("score", "max") if objective == "scalar" else ("accuracy", "max")

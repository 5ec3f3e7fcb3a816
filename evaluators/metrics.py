"""The one registry of metric names: what each means, which way is better, where it is shown.

The evaluators compute the network metrics by name (`compute_metrics`); a search trial adds
the accuracy signal and the scalar reward. The search, its records (trials.csv, pareto.json,
the export index) and its objectives all read their names from `METRICS`, nowhere else.
Importing this module loads no torch: the evaluators are imported when first asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from neonas.errors import UserError

if TYPE_CHECKING:
    from torch import nn

    from evaluators.hardware import HardwareTarget


@dataclass(frozen=True)
class Metric:
    """One metric: its meaning, the better direction (if ranked), who computes it, if tabled."""

    meaning: str
    goal: str | None = None  # "max" or "min" when a search may rank by it
    network: bool = False  # computed from the network alone, by `compute_metrics`
    table: bool = False  # a column of trials.csv, pareto.json and the export index


# FLOPs and parameters are per image (batch 1), latency at the batch asked for.
METRICS: dict[str, Metric] = {
    "accuracy": Metric(
        "the run's accuracy signal (see accuracy_signal): top-1 % or a proxy score",
        "max",
        table=True,
    ),
    "accuracy_signal": Metric(
        "what produced `accuracy`, e.g. naswot or short-training top-1", table=True
    ),
    "latency_ms": Metric(
        "latency on the target hardware (median, or the prediction)", "min", True, True
    ),
    "latency_source": Metric("measured or predicted", network=True, table=True),
    "latency_spread": Metric(
        "coefficient of variation of the latency samples (0 when predicted)", network=True
    ),
    # When a measuring station timed the network (wall clock, seconds since the epoch; None
    # when predicted or measured inside the trial): a sweep's measurements can be checked
    # for overlap from the run folder alone (benchmarks/gpu_check.py does).
    "latency_measured_from": Metric("wall-clock start of the latency measurement", network=True),
    "latency_measured_to": Metric("wall-clock end of the latency measurement", network=True),
    "flops": Metric("multiply-adds as executed (fvcore convention), per image", "min", True, True),
    "flops_patchwise": Metric(
        "multiply-adds with NeoCell counted patch-wise, per image", "min", True
    ),
    "params": Metric("trainable and frozen parameters", "min", True, True),
    "matrix_efficiency": Metric(
        "useful / 16-fractal-padded multiply-adds, NeoCell tiled (ISyNet's MEM)", "max", True, True
    ),
    # The predicted latency's breakdown (Ascend model; None when measured): parts add up.
    "latency_cube_ms": Metric(
        "predicted time of operators bound by the cube (matrix unit)", network=True
    ),
    "latency_vector_ms": Metric(
        "predicted time of operators bound by the vector unit", network=True
    ),
    "latency_memory_ms": Metric("predicted time of operators bound by DRAM traffic", network=True),
    "latency_overhead_ms": Metric(
        "predicted launch/scheduling overhead, per fused operator", network=True
    ),
    "reward": Metric("MnasNet reward accuracy * (latency / target) ^ weight", "max", table=True),
    "epochs": Metric("epochs of short training behind `accuracy`", table=True),
    "val_loss": Metric("validation loss after the last epoch of short training", "min"),
    "signal_s": Metric("seconds spent computing the accuracy signal"),
}
TABLE_METRICS = tuple(name for name, metric in METRICS.items() if metric.table)
NETWORK_METRICS = tuple(name for name, metric in METRICS.items() if metric.network)
LATENCY_METRICS = tuple(name for name in NETWORK_METRICS if name.startswith("latency_"))


def goal(name: str) -> str:
    """'max' or 'min' for a metric a search may rank by; KeyError/ValueError otherwise."""
    direction = METRICS[name].goal
    if direction is None:
        raise ValueError(f"metric {name!r} has no direction to optimise")
    return direction


def compute_metrics(
    model: nn.Module,
    input_shape: Sequence[int],
    names: Sequence[str],
    hw: str | HardwareTarget = "cpu",
    batch: int = 1,
) -> dict[str, float | str | None]:
    """The named network metrics of `model` at (C, H, W); each evaluation runs at most once."""
    from evaluators.flops import count_flops
    from evaluators.hardware import get_hw
    from evaluators.matrix_efficiency import matrix_efficiency

    unknown = [name for name in names if name not in NETWORK_METRICS]
    if unknown:
        raise UserError(
            f"unknown metric(s) of a network: {', '.join(unknown)}: choose from "
            f"{', '.join(NETWORK_METRICS)}"
        )
    chw = tuple(input_shape)[-3:]
    values: dict[str, float | str | None] = {}
    if {"params", "flops", "flops_patchwise"} & set(names):
        count = count_flops(model, (1, *chw))
        values.update(params=count.params, flops=count.flops, flops_patchwise=count.flops_patchwise)
    if "matrix_efficiency" in names:
        values["matrix_efficiency"] = matrix_efficiency(model, chw)
    if set(LATENCY_METRICS) & set(names):
        target = get_hw(hw) if isinstance(hw, str) else hw
        result = target.latency(model, chw, batch)
        values.update(
            latency_ms=result.median_ms,
            latency_spread=result.spread,
            latency_source=result.source,
            latency_measured_from=result.settings.get("measured_from"),
            latency_measured_to=result.settings.get("measured_to"),
            **result.parts(),
        )
    return {name: values[name] for name in names}

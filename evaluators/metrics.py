"""Metrics by name, so a search asks for `["flops", "latency_ms"]` and gets numbers back."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from evaluators.flops import count_flops
from evaluators.hardware import HardwareTarget, get_hw
from evaluators.latency.result import LATENCY_PARTS
from evaluators.matrix_efficiency import matrix_efficiency
from neonas.errors import UserError

# name -> one-line meaning; FLOPs and parameters are per image (batch 1), latency at `batch`.
METRICS = {
    "params": "trainable and frozen parameters",
    "flops": "multiply-adds as executed (fvcore convention), per image",
    "flops_patchwise": "multiply-adds with NeoCell counted patch-wise, per image",
    "matrix_efficiency": "useful / 16-fractal-padded multiply-adds, NeoCell tiled (ISyNet's MEM)",
    "latency_ms": "latency on the target hardware (median, or the prediction)",
    "latency_spread": "coefficient of variation of the latency samples (0 when predicted)",
    # The predicted latency's breakdown (Ascend model; None when measured): parts add up.
    "latency_cube_ms": "predicted time of operators bound by the cube (matrix unit)",
    "latency_vector_ms": "predicted time of operators bound by the vector unit",
    "latency_memory_ms": "predicted time of operators bound by DRAM traffic",
    "latency_overhead_ms": "predicted launch/scheduling overhead, per fused operator",
}
LATENCY_METRICS = ("latency_ms", "latency_spread", *(f"latency_{p}_ms" for p in LATENCY_PARTS))


def compute_metrics(
    model: nn.Module,
    input_shape: Sequence[int],
    names: Sequence[str],
    hw: str | HardwareTarget = "cpu",
    batch: int = 1,
) -> dict[str, float | None]:
    """The named metrics of `model` at (C, H, W); each underlying evaluation runs at most once."""
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise UserError(f"unknown metric(s) {', '.join(unknown)}: choose from {', '.join(METRICS)}")
    chw = tuple(input_shape)[-3:]
    values: dict[str, float | None] = {}
    if {"params", "flops", "flops_patchwise"} & set(names):
        count = count_flops(model, (1, *chw))
        values.update(params=count.params, flops=count.flops, flops_patchwise=count.flops_patchwise)
    if "matrix_efficiency" in names:
        values["matrix_efficiency"] = matrix_efficiency(model, chw)
    if set(LATENCY_METRICS) & set(names):
        target = get_hw(hw) if isinstance(hw, str) else hw
        result = target.latency(model, chw, batch)
        values.update(latency_ms=result.median_ms, latency_spread=result.spread, **result.parts())
    return {name: values[name] for name in names}

"""Evaluators: FLOPs and parameters, latency (measured or predicted) per hardware target,
matrix efficiency, each usable alone and by name through `compute_metrics` and `get_hw`."""

from evaluators.flops import FlopCount, count_flops
from evaluators.hardware import HardwareTarget, TargetOptions, available_hw, get_hw, register_hw
from evaluators.latency import LatencyResult, measure_latency, measure_latency_remote
from evaluators.matrix_efficiency import (
    MatrixEfficiency,
    efficiency_spread,
    matrix_efficiency,
    matrix_efficiency_report,
)
from evaluators.metrics import METRICS, compute_metrics

__all__ = [
    "METRICS",
    "FlopCount",
    "HardwareTarget",
    "LatencyResult",
    "MatrixEfficiency",
    "TargetOptions",
    "available_hw",
    "compute_metrics",
    "count_flops",
    "efficiency_spread",
    "get_hw",
    "matrix_efficiency",
    "matrix_efficiency_report",
    "measure_latency",
    "measure_latency_remote",
    "register_hw",
]

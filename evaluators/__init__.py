"""Evaluators: FLOPs and parameters, latency (measured or predicted) per hardware target,
matrix efficiency, each usable alone and by name through `compute_metrics` and `get_hw`.

The names below are imported on first use (PEP 562), so that `import evaluators.metrics`
(the metric registry, which `neonas --help` reads) loads no torch.
"""

from __future__ import annotations

from neonas.lazy import lazy_getattr

_EXPORTS = {
    "FlopCount": "evaluators.flops",
    "count_flops": "evaluators.flops",
    "HardwareTarget": "evaluators.hardware",
    "TargetOptions": "evaluators.hardware",
    "available_hw": "evaluators.hardware",
    "get_hw": "evaluators.hardware",
    "register_hw": "evaluators.hardware",
    "LatencyResult": "evaluators.latency",
    "measure_latency": "evaluators.latency",
    "measure_latency_remote": "evaluators.latency",
    "MatrixEfficiency": "evaluators.matrix_efficiency",
    "efficiency_spread": "evaluators.matrix_efficiency",
    "matrix_efficiency": "evaluators.matrix_efficiency",
    "matrix_efficiency_report": "evaluators.matrix_efficiency",
    "METRICS": "evaluators.metrics",
    "compute_metrics": "evaluators.metrics",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)

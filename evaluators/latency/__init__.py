"""Latency: measured on a device (cpu, cuda, npu; locally or as a Ray task) or predicted
(the Ascend roofline model, a lookup table), always as a LatencyResult that says which."""

from evaluators.latency.ascend import ASCEND310, ASCEND910, AscendProfile, predict_latency
from evaluators.latency.backends import open_backend
from evaluators.latency.lut import LatencyTable
from evaluators.latency.measure import MeasureSettings, measure_latency
from evaluators.latency.remote import measure_latency_remote, ray_options
from evaluators.latency.result import LatencyResult, LayerLatency

__all__ = [
    "ASCEND310",
    "ASCEND910",
    "AscendProfile",
    "LatencyResult",
    "LatencyTable",
    "LayerLatency",
    "MeasureSettings",
    "measure_latency",
    "measure_latency_remote",
    "open_backend",
    "predict_latency",
    "ray_options",
]

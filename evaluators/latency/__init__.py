"""Latency: measured on a device (cpu, cuda, npu; locally or on a Ray measuring station) or predicted
(the Ascend roofline model, a lookup table), always as a LatencyResult that says which."""

from evaluators.latency.ascend import ASCEND310, ASCEND910, AscendProfile, predict_latency
from evaluators.latency.backends import open_backend
from evaluators.latency.lut import LatencyTable
from evaluators.latency.measure import MeasureSettings, measure_latency
from evaluators.latency.result import LatencyResult, LayerLatency
from evaluators.latency.station import measure_latency_remote, open_stations, station_plan

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
    "open_stations",
    "station_plan",
]

"""Targets measured on a device of this machine, or (`remote`, what a sweep sets) on the Ray
cluster's measuring station for that device (evaluators.latency.station)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from torch import nn

from evaluators.hardware import HardwareTarget, TargetOptions, inference_form, register_hw
from evaluators.latency.backends import open_backend
from evaluators.latency.measure import measure_latency
from evaluators.latency.result import LatencyResult
from evaluators.latency.station import measure_latency_remote, station_plan


class MeasuredTarget(HardwareTarget):
    """Latency timed on `device_hw` ('cpu', 'cuda:1', 'npu', ...), reported under `name`."""

    source = "measured"

    def __init__(self, name: str, device_hw: str, options: TargetOptions) -> None:
        self.name = name
        self.device_hw = device_hw
        self.options = options
        # Fail now, not in the middle of a search, when the device or its library is absent.
        if options.remote:
            station_plan(device_hw, options.threads)  # UserError for a device index
            self._backend = None
        else:
            self._backend = open_backend(
                device_hw, threads=options.threads, cuda_graphs=options.cuda_graphs
            )

    def latency(
        self, model: nn.Module, input_shape: Sequence[int], batch: int = 1, dtype: str | None = None
    ) -> LatencyResult:
        model = inference_form(model)
        dtype = dtype or "fp32"
        if self.options.remote:
            result = measure_latency_remote(
                model,
                input_shape,
                self.device_hw,
                dtype,
                batch,
                threads=self.options.threads,
                cuda_graphs=self.options.cuda_graphs,
                settings=self.options.measure,
                open_missing=not self.options.in_sweep,
            )
        else:
            result = measure_latency(
                model,
                input_shape,
                self.device_hw,
                dtype,
                batch,
                settings=self.options.measure,
                backend=self._backend,
            )
        return dataclasses.replace(result, hw=self.name)


@register_hw("cpu", "measured on this machine's CPU (--threads sets torch's thread count)")
def cpu_target(hw: str, argument: str | None, options: TargetOptions) -> HardwareTarget:
    """The CPU of this machine."""
    return MeasuredTarget(hw, hw, options)


@register_hw("cuda", "measured on an NVIDIA GPU with CUDA events", argument="N")
def cuda_target(hw: str, argument: str | None, options: TargetOptions) -> HardwareTarget:
    """CUDA device N (default 0)."""
    return MeasuredTarget(hw, hw, options)


@register_hw("npu", "measured on a Huawei Ascend NPU through torch_npu", argument="N")
def npu_target(hw: str, argument: str | None, options: TargetOptions) -> HardwareTarget:
    """Ascend device N (default 0), precompiled operators."""
    return MeasuredTarget(hw, hw, options)

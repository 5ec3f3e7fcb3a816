"""Measured latency: warm-up, then timed samples until they agree (CV under 5 %) or time is up.

The figure is the median of the last `window` samples; the samples before them count as an
extended warm-up (caches, clocks and allocators settle at their own pace). Each sample
times enough back-to-back forwards to last `min_sample_ms`, so that timer resolution and
call overhead do not dominate tiny models. The spread is reported with every figure.

Spread is the robust coefficient of variation, IQR / (1.349 * median): it equals std / mean
for Gaussian noise, but a few samples hit by another process's time slice (common on a
shared machine) do not inflate it, so the 5 % target stops the loop once the typical
sample has settled, which is also what the median reports.
"""

from __future__ import annotations

import copy
import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from evaluators.flops import batched_shape
from evaluators.latency.backends import Backend, open_backend, parse_dtype
from evaluators.latency.result import LatencyResult


@dataclass(frozen=True)
class MeasureSettings:
    """How long and how often to time; the defaults suit models of 1-100 ms."""

    warmup_runs: int = 5
    warmup_s: float = 0.2
    window: int = 20  # samples the figure is taken from
    target_cv: float = 0.05
    max_time_s: float = 10.0  # cap on the timed phase; the figure is then marked not stable
    min_sample_ms: float = 1.0


def measure_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    hw: str = "cpu",
    dtype: str = "fp32",
    batch: int = 1,
    *,
    threads: int | None = None,
    cuda_graphs: bool = False,
    settings: MeasureSettings | None = None,
    backend: Backend | None = None,
) -> LatencyResult:
    """Time one eval forward of `model` at `input_shape` ((C, H, W) plus `batch`) on `hw`."""
    settings = settings or MeasureSettings()
    shape = batched_shape(input_shape, batch)
    torch_dtype = parse_dtype(dtype)
    backend = backend or open_backend(hw, threads=threads, cuda_graphs=cuda_graphs)
    with backend:
        # The copy is moved outside inference mode: parameters made inside it are inference
        # tensors, which have no version counter, and NeoCell's operand cache reads it (a move
        # to the GPU or another dtype failed with "Inference tensors do not track version
        # counter", found by benchmarks/gpu_check.py --dry-run).
        runnable, restore = _prepare(model, backend.device, torch_dtype)
        try:
            with torch.inference_mode():
                example = torch.randn(shape, device=backend.device, dtype=torch_dtype)
                call = backend.runner(runnable, example)
                window, total, per_sample, stable = _sample(backend, call, settings)
        finally:
            restore()
        device = backend.device_name()
        backend_settings = backend.settings()
    quartiles = (
        statistics.quantiles(window, n=4, method="inclusive")
        if len(window) > 1
        else [window[0]] * 3
    )
    return LatencyResult(
        median_ms=statistics.median(window),
        min_ms=min(window),
        spread=_cv(window),
        iqr_ms=quartiles[2] - quartiles[0],
        runs=len(window) * per_sample,
        hw=hw,
        device=device,
        source="measured",
        batch=shape[0],
        dtype=dtype,
        stable=stable,
        settings={
            **backend_settings,
            **asdict(settings),
            "forwards_per_sample": per_sample,
            "samples": len(window),
            "samples_total": total,
        },
    )


def _prepare(
    model: nn.Module, device: torch.device, dtype: torch.dtype
) -> tuple[nn.Module, Callable[[], None]]:
    """The model in eval mode on `device` in `dtype`; a copy if it lives elsewhere."""
    tensors = [*model.parameters(), *model.buffers()]
    floating = [t for t in tensors if t.is_floating_point()]
    in_place = all(t.device == device for t in tensors) and all(t.dtype == dtype for t in floating)
    if not in_place:
        moved = copy.deepcopy(model).to(device=device, dtype=dtype).eval()
        return moved, lambda: None
    was_training = model.training
    model.eval()
    return model, lambda: model.train(was_training)


def _sample(
    backend: Backend, call: Callable[[], object], settings: MeasureSettings
) -> tuple[list[float], int, int, bool]:
    """(last window of per-forward ms, samples taken, forwards per sample, stable)."""
    warm_until = time.perf_counter() + settings.warmup_s
    runs = 0
    while runs < settings.warmup_runs or time.perf_counter() < warm_until:
        call()
        runs += 1
    backend.synchronize()
    single = backend.time_ms(call, 1)
    per_sample = max(1, math.ceil(settings.min_sample_ms / max(single, 1e-6)))
    samples: list[float] = []
    stable = False
    stop_at = time.perf_counter() + settings.max_time_s
    gc_enabled = gc.isenabled()
    gc.disable()  # a collection inside a sample is noise, not the model's latency
    try:
        while True:
            samples.append(backend.time_ms(call, per_sample) / per_sample)
            window = samples[-settings.window :]
            if len(window) == settings.window and _cv(window) < settings.target_cv:
                stable = True
                break
            if time.perf_counter() > stop_at and len(samples) >= min(3, settings.window):
                break
    finally:
        if gc_enabled:
            gc.enable()
    return window, len(samples), per_sample, stable


def _cv(values: Sequence[float]) -> float:
    """Robust coefficient of variation: IQR / (1.349 * median); 0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    quartiles = statistics.quantiles(values, n=4, method="inclusive")
    median = statistics.median(values)
    return (quartiles[2] - quartiles[0]) / (1.349 * median) if median > 0 else 0.0

"""One prepared GPU check of neonas: correctness, speed and the GPU paths of the commands.

A GPU is lent only now and then, and for minutes, so everything neonas should learn from one
is prepared here and runs as one command (under 8 minutes on one H200), writing
`gpu_check.json` and `gpu_check.md` to --out:

  environment       GPU, driver, torch, CUDA and cuDNN versions
  neocell_accuracy  every NeoCell impl (dense, patch, tiled, auto) on the device against the CPU
                    float64 result: inference forward, training forward and backward (input and
                    parameter gradients), float32 and bfloat16, NCHW and channels-last input
  neocell_speed     NeoCell forms against the 7x7 depthwise conv (cuDNN) at the NeoNeXt-T stage
                    shapes, batch 1/64/256, fp32 and bf16, NCHW and channels-last, forward and
                    forward+backward; CUDA events, warm-up, interleaved rounds, median. The
                    table says which form wins per shape: the CUDA rule of `auto` is to be set
                    from it (neonas/ops/functional.py choose_impl)
  models            NeoNeXt-T (BatchNorms folded for inference) against timm's ConvNeXt-T, images/s with
                    AMP (bf16 autocast), batch 1/64/256, NCHW and channels-last, interleaved
  profile           `neonas profile --hw cuda` on NeoNeXt-T: measured latency and its spread
  search            an 8-trial `neonas search --hw cuda` sweep; whether the station's
                    measurement intervals overlap, from what the run folder records
  train             `neonas train` of NeoNeXt-T, short, AMP, on a generated image folder:
                    images/s, peak memory (torch.cuda.max_memory_allocated), loss finite
  supernet          `neonas supernet train` of the neonext space, the same way
  models_compiled   the models section under torch.compile (or the exception that stopped it)

`--dry-run` runs the same code on the CPU with tiny sizes (small channel counts, batch 1-2, the
tiny search space, a 2-trial sweep, one tiny epoch), so the script does not fail for the first
time on the GPU; tests/test_gpu_check.py runs it in the default suite. Every section is
wrapped: one that raises is recorded as failed with its error and the rest still run. Exit
status 0 when every section ran and passed its checks, 1 otherwise, 2 for bad usage.

    python benchmarks/gpu_check.py --out results/gpu_check            # on the GPU machine
    python benchmarks/gpu_check.py --dry-run --out /tmp/gpu_check     # on a CPU

Timing here uses CUDA events (device time between two markers on the stream, launch gaps
included), not the wall-clock helpers of benchmarks/neocell.py and benchmarks/models.py, which
would time kernel launches rather than kernels on an asynchronous device; on the CPU it falls
back to perf_counter. The candidate modules come from benchmarks/neocell.py and the image
folders from benchmarks/supernet.py.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import datetime
import io
import json
import logging
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from benchmarks.neocell import STAGES, candidates, resolved_impl, stage_groups  # noqa: E402
from benchmarks.supernet import make_shapes_folder  # noqa: E402

SECTIONS = (
    "environment",
    "neocell_accuracy",
    "neocell_speed",
    "models",
    "profile",
    "search",
    "train",
    "supernet",
    "models_compiled",
)
IMPLS = ("dense", "patch", "tiled", "auto")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
LAYOUTS = ("nchw", "channels_last")
# Largest |result - CPU float64| over max |CPU float64|, per tensor (output, input gradient,
# every parameter gradient). fp32: products of 4-56 terms, a few ulp (1.2e-7) each, TF32 off
# for matmuls by default; bf16: 8-bit mantissa (eps 3.9e-3), inputs, weights and the
# intermediate product rounded, gradients accumulated over patches.
TOLERANCES = {"fp32": 1e-4, "bf16": 5e-2}
COMPILER_LOGGERS = ("torch", "torch._dynamo", "torch._inductor")
GPU_BUDGET_S = 420.0  # seconds after which no section starts (see --budget-s)
DEADLINE_MARGIN_S = 30.0  # after --budget-s: the compiled section stops starting work
AUTO_RULE_NOTE = (
    "The CUDA rule of NeoCell `auto` (neonas/ops/functional.py choose_impl: `dense` on any "
    "non-CPU device, unmeasured) is to be set from the 'fastest NeoCell form' column below; "
    "it is not changed until these numbers come from a GPU."
)


@dataclasses.dataclass(frozen=True)
class Plan:
    """Sizes of one run: the GPU check or its CPU dry run (the same code, smaller numbers)."""

    device: str
    accuracy_shapes: tuple[tuple[int, int], ...]
    accuracy_batch: int
    speed_shapes: tuple[tuple[int, int], ...]
    speed_batches: tuple[int, ...]
    speed_budget_s: float  # the speed section starts no new (dtype, batch, shape) after this
    rounds: int
    min_block_s: float
    neonext_kwargs: dict[str, Any]
    convnext_kwargs: dict[str, Any]
    model_batches: tuple[int, ...]
    compiled_batches: tuple[int, ...]
    model_rounds: int
    compile_backend: str
    profile_model: tuple[str, ...]  # --model NAME, or empty: --config of the dry-run model
    profile_time_cap: float
    search_space: str
    search_trials: int
    search_time_budget: str
    train_model: tuple[str, ...]  # --model NAME, or empty: --config of the dry-run model
    supernet_space: str
    images: tuple[int, int, int, int]  # classes, train and val images per class, pixels
    batch_size: int
    epochs: int
    workers: int


GPU_PLAN = Plan(
    device="cuda",
    accuracy_shapes=tuple(STAGES),
    accuracy_batch=4,
    speed_shapes=tuple(STAGES),
    # Batch 64 first: the training batch, the one the CUDA rule of auto matters most for. The
    # first H200 run (2026-12-04) did not finish this section in 500 s, so it has a budget.
    speed_batches=(64, 1, 256),
    speed_budget_s=150.0,
    rounds=15,
    min_block_s=0.003,
    neonext_kwargs={},
    convnext_kwargs={},
    model_batches=(1, 64, 256),
    compiled_batches=(1, 64, 256),
    model_rounds=10,
    compile_backend="inductor",
    profile_model=("--model", "neonext_tiny"),
    profile_time_cap=10.0,
    search_space="neonext",
    search_trials=8,
    search_time_budget="150s",
    train_model=("--model", "neonext_tiny"),
    supernet_space="neonext",
    images=(10, 96, 16, 64),
    batch_size=64,
    epochs=2,
    workers=8,
)

# NeoNeXt-T's stage structure (mixed shifted 4x4/7x7 cells, then 7x7) at 224 px, at tiny widths:
# the 7x7 cells need the real feature-map sizes, the CPU needs few channels.
TINY_WIDTHS = (16, 32, 64, 128)
DRY_PLAN = Plan(
    device="cpu",
    accuracy_shapes=((8, 28), (12, 14), (16, 7)),
    accuracy_batch=2,
    speed_shapes=((8, 28), (16, 7)),
    speed_batches=(1, 2),
    speed_budget_s=math.inf,
    rounds=2,
    min_block_s=0.0,
    neonext_kwargs={"depths": (1, 1, 1, 1), "widths": TINY_WIDTHS},
    convnext_kwargs={"depths": (1, 1, 1, 1), "dims": TINY_WIDTHS},
    model_batches=(1, 2),
    compiled_batches=(1,),  # each new batch size is one more (slow, on a CPU) compilation
    model_rounds=2,
    compile_backend="eager",  # Dynamo's tracing and graph breaks without inductor's codegen
    profile_model=(),
    profile_time_cap=0.5,
    search_space="tiny",
    search_trials=2,
    search_time_budget="600s",  # a safety net only: a loaded CPU is slow
    train_model=(),
    supernet_space="tiny",
    images=(3, 8, 4, 32),
    batch_size=8,
    epochs=1,
    workers=0,
)


class SectionChecks:
    """What a section found: named pass/fail checks and findings (facts worth a look)."""

    def __init__(self) -> None:
        self.checks: dict[str, bool | None] = {}
        self.findings: list[str] = []

    def check(self, name: str, passed: bool | None) -> None:
        """Record a check; None: it could not be decided (say why in a finding)."""
        self.checks[name] = None if passed is None else bool(passed)


# ----------------------------------------------------------------------------- timing


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Marker:
    """A point in time on the device: a CUDA event on a GPU, perf_counter on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.event = torch.cuda.Event(enable_timing=True) if device.type == "cuda" else None
        self.time = 0.0

    def record(self) -> None:
        if self.event is not None:
            self.event.record()
        else:
            self.time = time.perf_counter()

    def seconds_until(self, other: Marker) -> float:
        """Seconds from this marker to `other` (both recorded and synchronised)."""
        if self.event is not None and other.event is not None:
            return self.event.elapsed_time(other.event) / 1e3
        return other.time - self.time


def interleaved_times(
    calls: dict[str, Callable[[], object]],
    device: torch.device,
    rounds: int,
    min_block_s: float,
    warmup: int = 3,
) -> dict[str, list[float]]:
    """Seconds per call of every candidate: `warmup` untimed calls each, then `rounds` rounds
    in which every candidate runs a block of calls (sized to about min_block_s) between two
    markers, so a change of clock or load hits all candidates alike."""
    inner: dict[str, int] = {}
    for name, call in calls.items():
        for _ in range(warmup):
            call()
        synchronize(device)
        start = time.perf_counter()
        call()
        synchronize(device)
        elapsed = max(time.perf_counter() - start, 1e-6)
        inner[name] = max(1, min(1000, int(min_block_s / elapsed)))
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        marks = []
        for name, call in calls.items():
            begin, end = Marker(device), Marker(device)
            begin.record()
            for _ in range(inner[name]):
                call()
            if device.type != "cuda":
                synchronize(device)
            end.record()
            marks.append((name, begin, end))
        synchronize(device)
        for name, begin, end in marks:
            times[name].append(begin.seconds_until(end) / inner[name])
    return times


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


# ----------------------------------------------------------------------------- sections


def section_environment(plan: Plan, device: torch.device, context: dict[str, Any]) -> dict:
    """Versions and the device: the figures of every other section depend on them."""
    import timm

    info: dict[str, Any] = {
        "dry_run": device.type != "cuda",
        "device": str(device),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "git_commit": _git_commit(),
        "cuda_available": torch.cuda.is_available(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu=torch.cuda.get_device_name(device),
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            compute_capability=f"{props.major}.{props.minor}",
            driver=_nvidia_smi("driver_version"),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            matmul_tf32=torch.backends.cuda.matmul.allow_tf32,
            cudnn_tf32=torch.backends.cudnn.allow_tf32,
        )
    checks = SectionChecks()
    checks.check("device_available", device.type == plan.device)
    return {"info": info, **_result(checks)}


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _nvidia_smi(field: str) -> str | None:
    try:
        done = subprocess.run(
            ["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else None


def relative_error(result: torch.Tensor, reference: torch.Tensor) -> float:
    """max |result - reference| / max |reference| (reference float64 on the CPU)."""
    scale = reference.abs().max().item() or 1.0
    return (result.detach().to("cpu", torch.float64) - reference).abs().max().item() / scale


def section_neocell_accuracy(plan: Plan, device: torch.device, context: dict[str, Any]) -> dict:
    """Every impl, both dtypes and layouts on the device against the CPU float64 dense form."""
    from neonas.ops import NeoCell

    checks = SectionChecks()
    cases = []
    for channels, height in plan.accuracy_shapes:
        torch.manual_seed(0)
        groups = stage_groups(height)
        reference = NeoCell(channels, groups, bias=True, impl="dense").double()
        with torch.no_grad():
            for bias in reference.bias:
                bias.normal_(0.0, 0.1)  # zero at init: give the bias gradients something to do
        x = torch.randn(plan.accuracy_batch, channels, height, height, dtype=torch.float64)
        x_ref = x.clone().requires_grad_()
        y_ref = reference(x_ref)
        upstream = torch.randn_like(y_ref)
        y_ref.backward(upstream)
        grads_ref = [x_ref.grad, *(p.grad for p in reference.parameters())]
        expected = (y_ref.detach(), grads_ref, upstream)
        for impl in IMPLS:
            for dtype_name in DTYPES:
                for layout in LAYOUTS:
                    case = {"shape": [channels, height], "impl": impl}
                    case.update(dtype=dtype_name, layout=layout)
                    try:  # one case that raises is recorded; the others still run
                        case.update(
                            _accuracy_case(reference, x, expected, impl, dtype_name, layout, device)
                        )
                    except Exception as err:
                        case.update(error=_error_text(err), passed=False)
                    cases.append(case)
                    checks.check(
                        f"{channels}x{height} {impl} {dtype_name} {layout}", case["passed"]
                    )
    return {
        "tolerances": TOLERANCES,
        "batch": plan.accuracy_batch,
        "cases": cases,
        **_result(checks),
    }


def _accuracy_case(
    reference: torch.nn.Module,
    x: torch.Tensor,
    expected: tuple[torch.Tensor, list[torch.Tensor], torch.Tensor],
    impl: str,
    dtype_name: str,
    layout: str,
    device: torch.device,
) -> dict[str, Any]:
    """One impl, dtype and layout on the device against the float64 reference's results."""
    from neonas.ops import NeoCell

    y_ref, grads_ref, upstream = expected
    dtype = DTYPES[dtype_name]
    module = NeoCell(reference.channels, reference.groups, bias=True, impl=impl)
    module.load_state_dict(reference.state_dict())
    module.to(device=device, dtype=dtype)
    x_dev = x.to(device=device, dtype=dtype)
    if layout == "channels_last":
        x_dev = x_dev.contiguous(memory_format=torch.channels_last)
    module.eval()
    with torch.no_grad():
        inference = module(x_dev)
    resolved = resolved_impl(module, x_dev)
    module.train()
    x_train = x_dev.clone().requires_grad_()
    y = module(x_train)
    y.backward(upstream.to(device=device, dtype=dtype))
    grads = [x_train.grad, *(p.grad for p in module.parameters())]
    errors = {
        "inference": relative_error(inference, y_ref),
        "forward": relative_error(y, y_ref),
        "backward": max(relative_error(g, r) for g, r in zip(grads, grads_ref, strict=True)),
    }
    tolerance = TOLERANCES[dtype_name]
    return {
        "resolved": resolved,
        **{f"{key}_error": value for key, value in errors.items()},
        "tolerance": tolerance,
        "passed": all(error <= tolerance for error in errors.values()),
    }


def section_neocell_speed(plan: Plan, device: torch.device, context: dict[str, Any]) -> dict:
    """NeoCell forms against the depthwise conv, per stage shape, batch, dtype and mode."""
    checks = SectionChecks()
    rows: list[dict[str, Any]] = []
    torch.backends.cudnn.benchmark = True  # cuDNN picks its fastest depthwise kernel
    errors: list[dict[str, str]] = []
    untimed: list[str] = []
    start = time.perf_counter()
    groups = [
        (batch, dtype_name, shape)
        for batch in plan.speed_batches
        for dtype_name in DTYPES
        for shape in plan.speed_shapes
    ]
    for index, (batch, dtype_name, (channels, height)) in enumerate(groups):
        where = f"{dtype_name} batch {batch} ({channels}, {height})"
        if index and time.perf_counter() - start > plan.speed_budget_s:  # the first always runs
            untimed.append(where)
            continue
        began = time.perf_counter()
        try:  # one shape that raises is recorded; the others still run
            rows += _speed_at(plan, device, dtype_name, DTYPES[dtype_name], batch, channels, height)
        except Exception as err:
            errors.append({"where": where, "error": _error_text(err)})
            checks.findings.append(f"{where}: {_error_text(err)[:300]}")
        print(f"gpu_check:   {where}: {time.perf_counter() - began:.1f} s", file=sys.stderr)
        partial = {"protocol": _speed_protocol(plan), "rows": rows, "winners": speed_winners(rows)}
        context["save_partial"]({**partial, "errors": errors})  # a killed run keeps these
    if untimed:
        checks.findings.append(
            f"{len(untimed)} of {len(groups)} (dtype, batch, shape) groups not timed: the "
            f"section's budget of {plan.speed_budget_s:g} s was spent (first: {untimed[0]})"
        )
    winners = speed_winners(rows)
    checks.check("every_shape_timed", None if untimed and not errors else not errors)
    checks.check("every_candidate_timed", all(math.isfinite(r["median_ms"]) for r in rows))
    return {
        "protocol": _speed_protocol(plan),
        "auto_rule_note": AUTO_RULE_NOTE,
        "rows": rows,
        "winners": winners,
        "errors": errors,
        "untimed": untimed,
        **_result(checks),
    }


def _speed_protocol(plan: Plan) -> str:
    return (
        f"{plan.rounds} interleaved rounds after 3 warm-up calls, blocks of at least "
        f"{plan.min_block_s * 1e3:g} ms (one call at least) between CUDA events "
        "(perf_counter on a CPU), median per call; fwd: eval, no_grad (dense operators "
        "cached); fwd+bwd: train mode, gradients of input and weights; cudnn.benchmark on; "
        "x dwconv = the faster conv layout's time / the NeoCell form's (above 1: NeoCell "
        "faster)"
    )


def _speed_at(
    plan: Plan,
    device: torch.device,
    dtype_name: str,
    dtype: torch.dtype,
    batch: int,
    channels: int,
    height: int,
) -> list[dict[str, Any]]:
    torch.manual_seed(0)
    base = candidates(channels, height, list(IMPLS), single7=False)
    x = torch.randn(batch, channels, height, height, device=device, dtype=dtype)
    inputs = {"nchw": x, "channels_last": x.contiguous(memory_format=torch.channels_last)}
    modules: dict[tuple[str, str], torch.nn.Module] = {}
    for name, module in base.items():
        for layout in LAYOUTS:
            copy_ = copy.deepcopy(module).to(device=device, dtype=dtype)
            if layout == "channels_last":
                copy_ = copy_.to(memory_format=torch.channels_last)
            modules[(name, layout)] = copy_
    # The upstream gradient in the input's layout, as the next layer of a network would give it.
    grads = {layout: torch.randn_like(tensor) for layout, tensor in inputs.items()}
    rows = []
    for mode in ("fwd", "fwd+bwd"):
        calls: dict[str, Callable[[], object]] = {}
        for (name, layout), module in modules.items():
            module.train(mode == "fwd+bwd")
            calls[f"{name}|{layout}"] = _speed_call(module, inputs[layout], grads[layout], mode)
        times = interleaved_times(calls, device, plan.rounds, plan.min_block_s)
        for (name, layout), module in modules.items():
            samples = times[f"{name}|{layout}"]
            with torch.set_grad_enabled(mode == "fwd+bwd"):
                resolved = resolved_impl(module, inputs[layout])
            rows.append(
                {
                    "dtype": dtype_name,
                    "mode": mode,
                    "batch": batch,
                    "shape": [channels, height],
                    "module": name,
                    "layout": layout,
                    "resolved": resolved,
                    "median_ms": median_ms(samples),
                    "min_ms": min(samples) * 1e3,
                }
            )
    return rows


def _speed_call(
    module: torch.nn.Module, x: torch.Tensor, grad: torch.Tensor, mode: str
) -> Callable[[], object]:
    if mode == "fwd":

        def forward() -> object:
            with torch.no_grad():
                return module(x)

        return forward
    x_train = x.detach().clone().requires_grad_()

    def train_step() -> object:
        module(x_train).backward(grad)
        return None

    return train_step


def speed_winners(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per dtype, mode, batch and shape: the fastest concrete NeoCell form and layout, the
    fastest depthwise conv, the ratio, and what `auto` runs now."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["dtype"], row["mode"], row["batch"], tuple(row["shape"]))
        groups.setdefault(key, []).append(row)
    winners = []
    for (dtype, mode, batch, shape), group in groups.items():
        forms = [r for r in group if r["module"].startswith("stage/") and "auto" not in r["module"]]
        convs = [r for r in group if r["module"] == "dwconv7"]
        autos = [r for r in group if r["module"] == "stage/auto"]
        best = min(forms, key=lambda r: r["median_ms"])
        conv = min(convs, key=lambda r: r["median_ms"])
        auto = min(autos, key=lambda r: r["median_ms"]) if autos else None
        winners.append(
            {
                "dtype": dtype,
                "mode": mode,
                "batch": batch,
                "shape": list(shape),
                "fastest_form": best["module"].removeprefix("stage/"),
                "fastest_form_layout": best["layout"],
                "fastest_form_ms": best["median_ms"],
                "dwconv_layout": conv["layout"],
                "dwconv_ms": conv["median_ms"],
                "speedup_over_dwconv": conv["median_ms"] / best["median_ms"],
                "auto_runs": None if auto is None else auto["resolved"],
                "auto_ms": None if auto is None else auto["median_ms"],
            }
        )
    return winners


def build_model_pair(plan: Plan) -> dict[str, torch.nn.Module]:
    """NeoNeXt-T folded for inference and timm's ConvNeXt-T (tiny widths in the dry run)."""
    import timm

    import neonas.models  # noqa: F401 (registers the NeoNeXt family with timm)
    from neonas.models import fold_for_inference

    torch.manual_seed(0)
    neonext = timm.create_model("neonext_tiny", **plan.neonext_kwargs).eval()
    return {
        "NeoNeXt-T folded": fold_for_inference(neonext).eval(),
        "ConvNeXt-T (timm)": timm.create_model("convnext_tiny", **plan.convnext_kwargs).eval(),
    }


def _inference_call(
    model: torch.nn.Module, x: torch.Tensor, device: torch.device
) -> Callable[[], object]:
    def call() -> object:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16):
            return model(x)

    return call


def _images_per_s_rows(
    times: dict[str, list[float]], batch: int, baseline: str
) -> list[dict[str, Any]]:
    base = statistics.median(times[baseline])
    rows = []
    for name, samples in times.items():
        model, _, variant = name.partition("|")
        rows.append(
            {
                "model": model,
                "variant": variant,
                "batch": batch,
                "median_ms": median_ms(samples),
                "images_per_s": batch / statistics.median(samples),
                "vs_convnext": base / statistics.median(samples),
            }
        )
    return rows


def section_models(plan: Plan, device: torch.device, context: dict[str, Any]) -> dict:
    """Inference images/s, AMP bf16, both layouts, all candidates interleaved per batch."""
    checks = SectionChecks()
    torch.backends.cudnn.benchmark = True
    models = build_model_pair(plan)
    variants = {}
    for name, model in models.items():
        variants[f"{name}|nchw"] = model.to(device)
        variants[f"{name}|channels_last"] = copy.deepcopy(model).to(
            device, memory_format=torch.channels_last
        )
    rows = []
    for batch in plan.model_batches:
        x = torch.randn(batch, 3, 224, 224, device=device)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        calls = {
            name: _inference_call(model, x_cl if name.endswith("channels_last") else x, device)
            for name, model in variants.items()
        }
        times = interleaved_times(calls, device, plan.model_rounds, plan.min_block_s * 5)
        rows += _images_per_s_rows(times, batch, "ConvNeXt-T (timm)|channels_last")
    checks.check("all_finite", all(math.isfinite(r["images_per_s"]) for r in rows))
    return {
        "protocol": (
            f"224 px, inference_mode, bf16 autocast, {plan.model_rounds} interleaved rounds, "
            "median; vs_convnext: ConvNeXt-T channels-last time / this time"
        ),
        "params": {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()},
        "rows": rows,
        **_result(checks),
    }


class _WarningLog(logging.Handler):
    """Keeps the warnings torch logs while compiling (recompile limits, graph breaks)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.messages) < 20:
            self.messages.append(record.getMessage().splitlines()[0][:300])


def section_models_compiled(plan: Plan, device: torch.device, context: dict[str, Any]) -> dict:
    """torch.compile of both models (channels-last), interleaved with their eager form."""
    checks = SectionChecks()
    torch.backends.cudnn.benchmark = True
    models = {
        name: model.to(device, memory_format=torch.channels_last)
        for name, model in build_model_pair(plan).items()
    }
    compiled: dict[str, Any] = {}
    compile_info: dict[str, dict[str, Any]] = {}
    log = _WarningLog()
    # torch's compiler loggers do not propagate to "torch": listen to them by name.
    loggers = [logging.getLogger(name) for name in COMPILER_LOGGERS]
    for logger in loggers:
        logger.addHandler(log)
    try:
        for name, model in models.items():
            if time.perf_counter() > context["deadline"]:
                checks.findings.append(f"{name} not compiled: the time budget was spent")
                continue
            x = torch.randn(plan.compiled_batches[0], 3, 224, 224, device=device)
            x = x.contiguous(memory_format=torch.channels_last)
            start = time.perf_counter()
            try:
                candidate = torch.compile(model, backend=plan.compile_backend)
                _inference_call(candidate, x, device)()
                synchronize(device)
            except Exception as err:  # the reason it does not compile is the finding
                compile_info[name] = {"compiled": False, "reason": _error_text(err)}
                checks.findings.append(f"{name} does not compile: {_error_text(err)[:300]}")
                continue
            compiled[name] = candidate
            compile_info[name] = {
                "compiled": True,
                "first_call_s": round(time.perf_counter() - start, 2),
            }
        rows = []
        errors = []
        for batch in plan.compiled_batches:
            if time.perf_counter() > context["deadline"]:
                checks.findings.append(f"batch {batch} not timed: the time budget was spent")
                continue
            x = torch.randn(batch, 3, 224, 224, device=device)
            x = x.contiguous(memory_format=torch.channels_last)
            calls = {}
            for name, model in models.items():
                calls[f"{name}|eager"] = _inference_call(model, x, device)
                if name in compiled:
                    calls[f"{name}|compiled"] = _inference_call(compiled[name], x, device)
            try:  # a new batch size recompiles (in the warm-up calls), which may fail
                times = interleaved_times(calls, device, plan.model_rounds, plan.min_block_s * 5)
            except Exception as err:
                errors.append({"batch": batch, "error": _error_text(err)})
                checks.findings.append(f"batch {batch}: {_error_text(err)[:300]}")
                continue
            rows += _images_per_s_rows(times, batch, "ConvNeXt-T (timm)|eager")
    finally:
        for logger in loggers:
            logger.removeHandler(log)
    checks.check("every_batch_timed", not errors)
    if log.messages:
        checks.findings.append(f"torch logged {len(log.messages)} warning(s) while compiling")
    checks.check("all_finite", all(math.isfinite(r["images_per_s"]) for r in rows))
    return {
        "protocol": (
            f"torch.compile(backend={plan.compile_backend!r}), channels-last, bf16 autocast, "
            f"inference_mode, {plan.model_rounds} interleaved rounds with the eager models, "
            "median; first_call_s includes the compilation at the first batch size"
        ),
        "compile": compile_info,
        "compile_warnings": log.messages,
        "errors": errors,
        "rows": rows,
        **_result(checks),
    }


def _error_text(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}".strip()
    return text[:2000]


# ----------------------------------------------------------------------------- the commands


def run_cli(argv: list[str]) -> str:
    """`neonas ARGV` in this process; its stdout, or RuntimeError with the end of stderr."""
    from neonas.cli import main

    out, err = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(argv)
    finally:
        torch.set_num_threads(threads)  # `search` sets one thread for its driver
    if status != 0:
        raise RuntimeError(
            f"neonas {' '.join(argv[:2])} exited with {status}: {err.getvalue().strip()[-1500:]}"
        )
    return out.getvalue()


def dry_model_config(context: dict[str, Any]) -> Path:
    """A YAML ArchConfig of the dry run's NeoNeXt-T-shaped tiny model (written once)."""
    path = context["work"] / "neonext_tiny_dry.yaml"
    if not path.exists():
        model = build_model_pair(context["plan"])["NeoNeXt-T folded"]
        path.write_text(model.config.to_yaml())
    return path


def model_args(plan: Plan, chosen: tuple[str, ...], context: dict[str, Any]) -> list[str]:
    return list(chosen) if chosen else ["--config", str(dry_model_config(context))]


def image_folder(plan: Plan, context: dict[str, Any]) -> Path:
    """The generated image folder the training sections share (made once)."""
    root = context["work"] / "images"
    if not root.exists():
        classes, train, val, size = plan.images
        make_shapes_folder(root, classes, train, val, size)
    return root


def section_profile(plan: Plan, device: torch.device, context: dict[str, Any]) -> dict:
    """`neonas profile --hw <device>` on NeoNeXt-T in fp32 and bf16."""
    checks = SectionChecks()
    reports = {}
    for dtype in ("fp32", "bf16"):
        argv = [
            "profile",
            *model_args(plan, plan.profile_model, context),
            "--hw",
            device.type,
            "--dtype",
            dtype,
            "--time-cap",
            str(plan.profile_time_cap),
            "--json",
        ]
        report = json.loads(run_cli(argv).strip().splitlines()[-1])
        keep = (
            "model",
            "hw",
            "device",
            "dtype",
            "batch",
            "latency_ms",
            "latency_source",
            "latency_spread",
            "latency_iqr_ms",
            "latency_runs",
            "latency_stable",
            "params",
            "flops",
        )
        reports[dtype] = {key: report.get(key) for key in keep}
        checks.check(f"{dtype}_measured", report.get("latency_source") == "measured")
        checks.check(f"{dtype}_positive", (report.get("latency_ms") or 0) > 0)
        if report.get("latency_stable") is False:
            checks.findings.append(f"{dtype}: latency did not settle under 5 % spread")
    return {
        "command": "neonas profile ... --hw " + device.type,
        "reports": reports,
        **_result(checks),
    }


def find_keys(value: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The first value of each of `names` found anywhere in nested dicts/lists."""
    found: dict[str, Any] = {}
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                for name in names:
                    if key.endswith(name) and name not in found:
                        found[name] = inner
                stack.append(inner)
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found


def measurement_overlaps(intervals: list[tuple[float, float]]) -> int:
    """How many consecutive pairs (by start) of measurement intervals overlap."""
    ordered = sorted(intervals)
    return sum(1 for a, b in zip(ordered, ordered[1:], strict=False) if b[0] < a[1])


def section_search(plan: Plan, device: torch.device, context: dict[str, Any]) -> dict:
    """An N-trial `neonas search --hw <device>` sweep; measurement intervals from its records."""
    from neonas.search.study import load_trials

    checks = SectionChecks()
    results_dir = context["work"] / "runs"
    name = "gpu-check-search"
    argv = [
        "search",
        "--space",
        plan.search_space,
        "--hw",
        device.type,
        "--trials",
        str(plan.search_trials),
        "--time-budget",
        plan.search_time_budget,
        "--name",
        name,
        "--results-dir",
        str(results_dir),
    ]
    start = time.perf_counter()
    run_cli(argv)
    seconds = time.perf_counter() - start
    table = load_trials(results_dir / name)
    completed = table.with_status("completed")
    statuses = {status: table.count(status) for status in ("completed", "failed", "rejected")}
    checks.check("completed_all_trials", len(completed) >= plan.search_trials)
    intervals = []
    trials = []
    for record in completed:
        keys = find_keys(record.metrics, ("measured_from", "measured_to"))
        interval = None
        if "measured_from" in keys and "measured_to" in keys:
            interval = (float(keys["measured_from"]), float(keys["measured_to"]))
            intervals.append(interval)
        trials.append(
            {
                "number": record.number,
                "latency_ms": record.metrics.get("latency_ms"),
                "latency_spread": record.metrics.get("latency_spread"),
                "latency_source": record.metrics.get("latency_source"),
                "trial_started": record.started,
                "trial_finished": record.finished,
                "measured": interval,
            }
        )
    spans = sorted((t["trial_started"], t["trial_finished"] or t["trial_started"]) for t in trials)
    concurrent = measurement_overlaps(spans)
    if completed and len(intervals) == len(completed):
        overlaps = measurement_overlaps(intervals)
        checks.check("measurements_do_not_overlap", overlaps == 0)
    else:
        overlaps = None
        checks.check("measurements_do_not_overlap", None)
        checks.findings.append(
            f"{len(completed) - len(intervals)} completed trial(s) have no measurement interval "
            "(latency_measured_from/_to): their latency was not timed by a measuring station"
        )
    if concurrent == 0 and len(trials) > 1:
        checks.findings.append("no two trials ran at the same time: overlap was not exercised")
    checks.check(
        "latency_measured",
        bool(completed) and all(t["latency_source"] == "measured" for t in trials),
    )
    return {
        "command": " ".join(["neonas", *argv[:7]]),
        "seconds": round(seconds, 1),
        "statuses": statuses,
        "trials": trials,
        "intervals_recorded": len(intervals),
        "measurement_overlaps": overlaps,
        "trials_running_concurrently": concurrent,
        **_result(checks),
    }


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def _epoch_rows(folder: Path) -> list[dict[str, float]]:
    """The per-epoch rows of a training folder's metrics.csv, numbers as floats."""
    import csv

    with (folder / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return [{k: float(v) for k, v in row.items() if _is_number(v)} for row in rows]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _training_result(
    checks: SectionChecks, argv: list[str], rows: list[dict[str, float]], device: torch.device
) -> dict[str, Any]:
    losses = [row.get("train_loss", math.nan) for row in rows]
    checks.check("epochs_ran", bool(rows))
    checks.check("loss_finite", bool(losses) and all(math.isfinite(v) for v in losses))
    return {
        "command": " ".join(["neonas", *argv]),
        "epochs": [
            {
                key: row.get(key)
                for key in ("epoch", "train_loss", "images_per_s", "train_time_s", "val_top1")
            }
            for row in rows
        ],
        "images_per_s_last_epoch": rows[-1].get("images_per_s") if rows else None,
        "peak_memory_mib": _peak_mib(device),
        "note": "short run on a generated folder: the first epoch includes warm-up and cuDNN "
        "autotuning, and data loading may bound the speed",
    }


def training_args(
    plan: Plan, device: torch.device, context: dict[str, Any], output: Path
) -> list[str]:
    """The options `train` and `supernet train` share here: data, output, a short AMP run."""
    return [
        "--data",
        str(image_folder(plan, context)),
        "--output",
        str(output),
        "--epochs",
        str(plan.epochs),
        "--batch-size",
        str(plan.batch_size),
        "--device",
        device.type,
        "--amp",
        "bf16",
        "--workers",
        str(plan.workers),
        "--no-progress",
    ]


def section_train(plan: Plan, device: torch.device, context: dict[str, Any]) -> dict:
    """`neonas train` for a short run with AMP (bf16) on the generated image folder."""
    checks = SectionChecks()
    output = context["work"] / "train"
    argv = [
        "train",
        *model_args(plan, plan.train_model, context),
        *training_args(plan, device, context, output),
        "--json",
    ]
    _reset_peak(device)
    summary = json.loads(run_cli(argv))
    result = _training_result(checks, argv, _epoch_rows(output), device)
    result["summary"] = {
        key: summary.get(key)
        for key in ("model", "images_per_s", "train_loss", "val_top1", "device", "device_batch")
    }
    return {**result, **_result(checks)}


def section_supernet(plan: Plan, device: torch.device, context: dict[str, Any]) -> dict:
    """`neonas supernet train` for a short run with AMP (bf16) on the generated image folder."""
    checks = SectionChecks()
    output = context["work"] / "supernet"
    argv = [
        "supernet",
        "train",
        "--space",
        plan.supernet_space,
        *training_args(plan, device, context, output),
    ]
    _reset_peak(device)
    run_cli(argv)
    result = _training_result(checks, argv, _epoch_rows(output), device)
    return {**result, **_result(checks)}


SECTION_FUNCTIONS: dict[str, Callable[[Plan, torch.device, dict[str, Any]], dict]] = {
    "environment": section_environment,
    "neocell_accuracy": section_neocell_accuracy,
    "neocell_speed": section_neocell_speed,
    "models": section_models,
    "profile": section_profile,
    "search": section_search,
    "train": section_train,
    "supernet": section_supernet,
    "models_compiled": section_models_compiled,
}


def _result(checks: SectionChecks) -> dict[str, Any]:
    return {"checks": checks.checks, "findings": checks.findings}


# ----------------------------------------------------------------------------- running


def run_section(
    name: str, plan: Plan, device: torch.device, context: dict[str, Any]
) -> dict[str, Any]:
    """One section, never raising: status ok, check_failed (a check is False) or failed."""
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        result = SECTION_FUNCTIONS[name](plan, device, context)
    except Exception as err:  # recorded; the other sections still run
        return {
            "status": "failed",
            "seconds": round(time.perf_counter() - start, 1),
            "error": _error_text(err),
            "traceback": traceback.format_exc()[-4000:],
        }
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    failed = [check for check, passed in result.get("checks", {}).items() if passed is False]
    status = "check_failed" if failed else "ok"
    return {
        "status": status,
        "seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu_start, 1),  # this process's threads
        **({"failed_checks": failed} if failed else {}),
        **result,
    }


def run_check(
    plan: Plan, out: Path, sections: tuple[str, ...], budget_s: float, keep_work: bool
) -> dict[str, Any]:
    """Every section in order, the report rewritten after each (a killed run keeps what ran)."""
    device = torch.device(plan.device)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    report: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "dry_run": plan.device != "cuda",
        "plan": dataclasses.asdict(plan),
        "sections": {},
    }
    start = time.perf_counter()
    # Sections start until budget_s; inside the last one, compilation and timing stop at the
    # deadline (a compilation under way cannot be cut short).
    context = {"plan": plan, "work": work, "deadline": start + budget_s + DEADLINE_MARGIN_S}
    try:
        for name in SECTIONS:
            if name not in sections:
                report["sections"][name] = {"status": "skipped", "reason": "not asked for"}
            elif time.perf_counter() - start > budget_s:
                report["sections"][name] = {
                    "status": "skipped",
                    "reason": f"the time budget of {budget_s:g} s was spent",
                }
            else:
                print(f"gpu_check: {name} ...", file=sys.stderr, flush=True)
                context["save_partial"] = _partial_saver(report, name, out)
                report["sections"][name] = run_section(name, plan, device, context)
                print(
                    f"gpu_check: {name} {report['sections'][name]['status']} "
                    f"({report['sections'][name]['seconds']} s)",
                    file=sys.stderr,
                    flush=True,
                )
            report["seconds"] = round(time.perf_counter() - start, 1)
            write_report(report, out)
    finally:
        if keep_work:
            print(f"gpu_check: work files kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return report


def _partial_saver(
    report: dict[str, Any], name: str, out: Path
) -> Callable[[dict[str, Any]], None]:
    """A function a long section calls with what it has measured so far: written to the
    report as status 'interrupted', which the section's own result replaces when it ends."""

    def save(partial: dict[str, Any]) -> None:
        report["sections"][name] = {"status": "interrupted", **partial}
        write_report(report, out)

    return save


def write_report(report: dict[str, Any], out: Path) -> None:
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "gpu_check.md").write_text(markdown(report))


# ----------------------------------------------------------------------------- markdown


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables for benchmarks/README.md."""
    sections = report["sections"]
    info = sections.get("environment", {}).get("info", {})
    mode = "CPU dry run (tiny sizes: figures test the script, not the device)"
    if not report["dry_run"]:
        mode = (
            f"{info.get('gpu')}, driver {info.get('driver')}, torch {info.get('torch')}, "
            f"CUDA {info.get('cuda')}, cuDNN {info.get('cudnn')}"
        )
    lines = [f"# neonas GPU check, {report['started']}", "", mode, ""]
    lines += ["| section | status | seconds | checks failed | findings / error |"]
    lines += ["|---|---|---|---|---|"]
    for name, section in sections.items():
        note = (
            section.get("error") or section.get("reason") or "; ".join(section.get("findings", []))
        )
        failed = ", ".join(section.get("failed_checks", [])) or "-"
        lines.append(
            f"| {name} | {section['status']} | {section.get('seconds', '-')} | {failed} "
            f"| {_cell(note)} |"
        )
    lines += _accuracy_md(sections.get("neocell_accuracy", {}))
    lines += _speed_md(sections.get("neocell_speed", {}))
    for key, title in (("models", "NeoNeXt-T vs ConvNeXt-T"), ("models_compiled", "compiled")):
        lines += _models_md(sections.get(key, {}), title)
    lines += _commands_md(sections)
    return "\n".join(lines) + "\n"


def _cell(text: Any) -> str:
    return str(text).replace("|", "/").replace("\n", " ")[:400] or "-"


def _accuracy_md(section: dict[str, Any]) -> list[str]:
    if not section.get("cases"):
        return []
    lines = [
        "",
        "## NeoCell accuracy against CPU float64",
        "",
        f"Error = max |x - ref| / max |ref|; tolerances {section['tolerances']}.",
        "",
        "| C, H | impl (runs) | dtype | layout | inference | forward | backward | pass |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in section["cases"]:
        if "error" in c:
            lines.append(
                f"| {c['shape'][0]}, {c['shape'][1]} | {c['impl']} | {c['dtype']} | {c['layout']} "
                f"| {_cell(c['error'])} | | | NO |"
            )
            continue
        lines.append(
            f"| {c['shape'][0]}, {c['shape'][1]} | {c['impl']} ({c['resolved']}) | {c['dtype']} "
            f"| {c['layout']} | {c['inference_error']:.1e} | {c['forward_error']:.1e} "
            f"| {c['backward_error']:.1e} | {'yes' if c['passed'] else 'NO'} |"
        )
    return lines


def _speed_md(section: dict[str, Any]) -> list[str]:
    if not section.get("winners"):
        return []
    lines = [
        "",
        "## NeoCell against the 7x7 depthwise conv",
        "",
        section["protocol"] + ".",
        "",
        AUTO_RULE_NOTE,
        "",
        "| dtype | mode | batch | C, H | fastest NeoCell form | ms | dwconv ms | x dwconv "
        "| auto runs | auto ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in section["winners"]:
        auto_ms = "-" if w["auto_ms"] is None else f"{w['auto_ms']:.3f}"
        lines.append(
            f"| {w['dtype']} | {w['mode']} | {w['batch']} | {w['shape'][0]}, {w['shape'][1]} "
            f"| {w['fastest_form']} ({w['fastest_form_layout']}) | {w['fastest_form_ms']:.3f} "
            f"| {w['dwconv_ms']:.3f} ({w['dwconv_layout']}) | {w['speedup_over_dwconv']:.2f} "
            f"| {w['auto_runs']} | {auto_ms} |"
        )
    lines += ["", "All candidates (median ms per call, min in parentheses):", ""]
    lines += [
        "| dtype | mode | batch | C, H | module | layout | ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in section["rows"]:
        name = (
            r["module"]
            if r["resolved"] in ("-", r["module"])
            else f"{r['module']} (= {r['resolved']})"
        )
        lines.append(
            f"| {r['dtype']} | {r['mode']} | {r['batch']} | {r['shape'][0]}, {r['shape'][1]} "
            f"| {name} | {r['layout']} | {r['median_ms']:.3f} ({r['min_ms']:.3f}) |"
        )
    return lines


def _models_md(section: dict[str, Any], title: str) -> list[str]:
    if not section.get("rows"):
        return []
    lines = ["", f"## {title}", "", section["protocol"] + ".", ""]
    for name, info in section.get("compile", {}).items():
        state = (
            f"compiled, first call {info['first_call_s']} s"
            if info["compiled"]
            else f"does not compile: {_cell(info['reason'])}"
        )
        lines.append(f"- {name}: {state}")
    lines += [
        "",
        "| model | variant | batch | ms | images/s | x ConvNeXt |",
        "|---|---|---|---|---|---|",
    ]
    for r in section["rows"]:
        lines.append(
            f"| {r['model']} | {r['variant']} | {r['batch']} | {r['median_ms']:.2f} "
            f"| {r['images_per_s']:.1f} | {r['vs_convnext']:.2f} |"
        )
    return lines


def _commands_md(sections: dict[str, Any]) -> list[str]:
    lines = ["", "## Commands", ""]
    profile = sections.get("profile", {})
    for dtype, r in profile.get("reports", {}).items():
        lines.append(
            f"- profile {r['model']} {dtype} on {r['device']}: {r['latency_ms']:.3f} ms, spread "
            f"{(r['latency_spread'] or 0) * 100:.1f} %, IQR {r['latency_iqr_ms']:.3f} ms, "
            f"{r['latency_runs']} runs, stable {r['latency_stable']}"
        )
    search = sections.get("search", {})
    if "statuses" in search:
        lines.append(
            f"- search: {search['statuses']} in {search['seconds']} s; measurement intervals "
            f"recorded for {search['intervals_recorded']} trial(s), overlapping pairs "
            f"{search['measurement_overlaps']}, trials running concurrently "
            f"{search['trials_running_concurrently']}"
        )
    for key in ("train", "supernet"):
        run = sections.get(key, {})
        if "epochs" in run:
            epochs = ", ".join(
                f"epoch {int(e['epoch'] or 0)}: loss {e['train_loss']:.3f}, "
                f"{e['images_per_s']:.0f} img/s"
                for e in run["epochs"]
            )
            peak = run["peak_memory_mib"]
            memory = "n/a (CPU)" if peak is None else f"{peak:.0f} MiB"
            lines.append(f"- {key}: {epochs}; peak memory {memory}")
    return lines


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default="results/gpu_check", help="folder for gpu_check.json and gpu_check.md"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="the same code on the CPU with tiny sizes"
    )
    parser.add_argument(
        "--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="default: all"
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        help="start no section after this many seconds, and no compilation 30 s later "
        f"(default {GPU_BUDGET_S:g} on the GPU: under 8 minutes in all; none with --dry-run)",
    )
    parser.add_argument("--keep-work", action="store_true", help="keep the generated files")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print(
            "gpu_check: error: no CUDA device here; run with --dry-run to check the script on "
            "the CPU",
            file=sys.stderr,
        )
        return 2
    plan = DRY_PLAN if args.dry_run else GPU_PLAN
    out = Path(args.out)
    budget = args.budget_s or (math.inf if args.dry_run else GPU_BUDGET_S)
    report = run_check(plan, out, tuple(args.sections), budget, args.keep_work)
    bad = {
        name: section["status"]
        for name, section in report["sections"].items()
        if section["status"] != "ok" and section.get("reason") != "not asked for"
    }
    print(f"gpu_check: wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")
    if bad:
        print(f"gpu_check: not ok: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

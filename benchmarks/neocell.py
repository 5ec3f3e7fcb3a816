"""NeoCell implementations against the 7x7 depthwise convolution they replace: time and memory.

At the NeoNeXt-T stage shapes (C, H) = (96, 56), (192, 28), (384, 14), (768, 7) this times
forward (inference: eval mode, no_grad, so the dense operators are cached) and
forward+backward (training mode, operators rebuilt, gradients of input and weights) of

  * dwconv7   nn.Conv2d(C, C, 7, padding=3, groups=C), the ConvNeXt token mixer;
  * stage     NeoCell as NeoNeXt-T uses it (stages 1-3: half the channels 4x4, half 7x7,
              shifts on in both; stage 4: 7x7 on all channels, no shift), once per impl;
  * single7   one plain 7x7 group, once per impl.

Timing: all candidates of one shape are run in interleaved rounds (A, B, C, A, B, C, ...); the
minimum per call and the median are printed, and `--by` picks which one the speed-ups use (the
minimum by default: noise only ever adds time; the median on a loaded machine, where the
minimum of the few-op conv is the luckier one). `--grad channels-last` hands the backward a
channels-last gradient, as a channels-last consumer of the cell would.
Memory: on CUDA the peak of torch.cuda.max_memory_allocated above the inputs; on CPU the peak
of the running sum of the allocations the torch profiler records (profile_memory=True), which
nets out temporaries allocated and freed inside one operator. `saved` is the bytes of the
tensors autograd saves for backward (the training activation cost of the layer).

    python benchmarks/neocell.py                                   # CPU, float32, batch 8
    python benchmarks/neocell.py --device cuda --dtype bf16 --batch 64

    python benchmarks/neocell.py --threads 2 --batch 8 --train-only --no-single7 \
        --impls auto dense patch --by median                     # training rows (issue 17)

The fused CPU kernel (impl "fused", neonas.ops.native) runs where `neonas build-native` built it
(the header says whether it is available; NEONAS_NATIVE=0 turns it off).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from neonas.ops import CellGroup, NeoCell, native
from neonas.ops.functional import IMPLS

STAGES = [(96, 56), (192, 28), (384, 14), (768, 7)]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Result:
    """One candidate at one shape."""

    shape: tuple[int, int]
    batch: int
    name: str
    forward_ms: float | None  # None with --train-only
    forward_median_ms: float | None
    resolved: str
    train_ms: float | None = None  # None with --forward-only
    train_median_ms: float | None = None
    forward_peak_mb: float | None = None
    saved_mb: float | None = None


def stage_groups(height: int) -> list[CellGroup] | CellGroup:
    """NeoNeXt-T: stages 1-3 mixed 4x4 / 7x7 with shifts, stage 4 (7x7 map) 7x7 without."""
    if height <= 7:
        return CellGroup(7)
    return [CellGroup(4, share=0.5, shift=True), CellGroup(7, share=0.5, shift=True)]


def candidates(
    channels: int, height: int, impls: list[str], single7: bool = True
) -> dict[str, nn.Module]:
    """Every module to compare at one stage shape."""
    modules: dict[str, nn.Module] = {
        "dwconv7": nn.Conv2d(channels, channels, 7, padding=3, groups=channels)
    }
    for impl in impls:
        modules[f"stage/{impl}"] = NeoCell(channels, stage_groups(height), impl=impl)
    if single7:
        for impl in impls:
            modules[f"single7/{impl}"] = NeoCell(channels, 7, impl=impl)
    return modules


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(
    calls: dict[str, Callable[[], object]],
    device: torch.device,
    rounds: int,
    min_seconds: float,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Seconds per call of every candidate, measured in interleaved rounds."""
    inner: dict[str, int] = {}
    for name, call in calls.items():  # warm up and size the inner loop to ~min_seconds
        call()
        synchronize(device)
        start = time.perf_counter()
        call()
        synchronize(device)
        inner[name] = max(1, int(min_seconds / max(time.perf_counter() - start, 1e-6)))
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            synchronize(device)
            start = clock()
            for _ in range(inner[name]):
                call()
            synchronize(device)
            times[name].append((clock() - start) / inner[name])
    return times


def forward_peak_bytes(module: nn.Module, x: torch.Tensor) -> int:
    """Peak bytes allocated by one inference forward (see the module docstring for how)."""
    with torch.no_grad():
        module(x)  # build caches first: the steady state is what inference sees
        if x.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            module(x)
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - base
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            module(x)
    deltas = sorted(
        (event.time_range.start, event.self_cpu_memory_usage)
        for event in prof.events()
        if event.self_cpu_memory_usage
    )
    running = peak = 0
    for _, delta in deltas:
        running += delta
        peak = max(peak, running)
    return peak


def saved_bytes(module: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct tensors autograd saves for backward in one training forward."""
    seen: dict[tuple[int, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.data_ptr() != x.data_ptr() and not isinstance(tensor, nn.Parameter):
            storage = tensor.untyped_storage()
            seen[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x.requires_grad_())
    return sum(seen.values())


def resolved_impl(module: nn.Module, x: torch.Tensor) -> str:
    """What 'auto' runs for inference / for training ("-" for the convolution)."""
    if not isinstance(module, NeoCell):
        return "-"
    with torch.no_grad():
        inference = module.resolved_impl(x)
    training = module.resolved_impl(x)
    return inference if inference == training else f"{inference}/{training}"


def run_shape(
    channels: int, height: int, batch: int, args: argparse.Namespace, device: torch.device
) -> list[Result]:
    """All candidates at one stage shape and batch size."""
    dtype = DTYPES[args.dtype]
    torch.manual_seed(0)
    modules = {
        name: module.to(device=device, dtype=dtype)
        for name, module in candidates(channels, height, args.impls, not args.no_single7).items()
    }
    x = torch.randn(batch, channels, height, height, device=device, dtype=dtype)
    x_train = x.clone().requires_grad_()
    layout = torch.channels_last if args.grad == "channels-last" else torch.contiguous_format
    grad = torch.randn_like(x).contiguous(memory_format=layout)

    def forward(module: nn.Module) -> Callable[[], object]:
        def call() -> object:
            with torch.no_grad():
                return module(x)

        return call

    def train_step(module: nn.Module) -> Callable[[], object]:
        def call() -> object:
            module(x_train).backward(grad)
            return None

        return call

    for module in modules.values():
        module.eval()
    clock = time.thread_time if args.clock == "thread" else time.perf_counter
    forward_times = (
        {name: [] for name in modules}
        if args.train_only
        else interleaved_times(
            {n: forward(m) for n, m in modules.items()},
            device,
            args.rounds,
            args.min_seconds,
            clock,
        )
    )
    results = [
        Result(
            shape=(channels, height),
            batch=batch,
            name=name,
            forward_ms=min(forward_times[name]) * 1e3 if forward_times[name] else None,
            forward_median_ms=statistics.median(forward_times[name]) * 1e3
            if forward_times[name]
            else None,
            resolved=resolved_impl(module, x),
        )
        for name, module in modules.items()
    ]
    if args.forward_only:
        return results
    for module in modules.values():
        module.train()
    train_times = interleaved_times(
        {n: train_step(m) for n, m in modules.items()},
        device,
        args.rounds,
        args.min_seconds,
        clock,
    )
    for result, module in zip(results, modules.values(), strict=True):
        module.eval()
        result.forward_peak_mb = forward_peak_bytes(module, x) / 2**20
        module.train()
        result.saved_mb = saved_bytes(module, x.detach().clone()) / 2**20
        result.train_ms = min(train_times[result.name]) * 1e3
        result.train_median_ms = statistics.median(train_times[result.name]) * 1e3
    return results


def markdown(results: list[Result], by: str = "min") -> str:
    """A table with the speed-up over dwconv7 of the same shape and batch (>1: NeoCell faster),
    from the minima or the medians (`by`)."""
    baseline = {(r.shape, r.batch): r for r in results if r.name == "dwconv7"}
    forward = results[0].forward_ms is not None
    train = results[0].train_ms is not None
    median = by == "median"
    lines = [
        "| C, H | batch | module |"
        + (" fwd ms (median) | x dwconv |" if forward else "")
        + (" fwd+bwd ms (median) | x dwconv | fwd peak MB | saved MB |" if train else ""),
        "|---|---|---|" + ("---|---|" if forward else "") + ("---|---|---|---|" if train else ""),
    ]
    for r in results:
        base = baseline[(r.shape, r.batch)]
        name = (
            r.name if r.resolved in ("-", r.name.split("/")[-1]) else f"{r.name} (= {r.resolved})"
        )
        line = f"| {r.shape[0]}, {r.shape[1]} | {r.batch} | {name} |"
        if forward:
            ratio = (
                base.forward_median_ms / r.forward_median_ms
                if median
                else base.forward_ms / r.forward_ms
            )
            line += f" {r.forward_ms:.3f} ({r.forward_median_ms:.3f}) | {ratio:.2f} |"
        if train:
            ratio = (
                base.train_median_ms / r.train_median_ms if median else base.train_ms / r.train_ms
            )
            line += (
                f" {r.train_ms:.2f} ({r.train_median_ms:.2f}) | {ratio:.2f} "
                f"| {r.forward_peak_mb:.1f} | {r.saved_mb:.1f} |"
            )
        lines.append(line)
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    parser.add_argument("--batch", type=int, nargs="+", default=[8], help="one or more batch sizes")
    parser.add_argument(
        "--forward-only", action="store_true", help="inference only: skip fwd+bwd and memory"
    )
    parser.add_argument(
        "--train-only", action="store_true", help="training only: skip the inference timing"
    )
    parser.add_argument(
        "--grad",
        default="nchw",
        choices=["nchw", "channels-last"],
        help="memory layout of the gradient handed to the backward (default nchw)",
    )
    parser.add_argument(
        "--by",
        default="min",
        choices=["min", "median"],
        help="speed-ups from the minimum (default) or the median time per call",
    )
    parser.add_argument("--no-single7", action="store_true", help="skip the single7 candidates")
    parser.add_argument(
        "--clock",
        default="wall",
        choices=["wall", "thread"],
        help="wall: perf_counter; thread: CPU time of this thread, robust to other jobs on a "
        "loaded machine (only meaningful with --threads 1 on CPU)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: keep)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--min-seconds", type=float, default=0.05, help="per timed block")
    parser.add_argument(
        "--impls", nargs="+", default=[i for i in IMPLS], choices=IMPLS, help="NeoCell impls"
    )
    parser.add_argument("--stages", nargs="+", type=int, default=[1, 2, 3, 4], choices=[1, 2, 3, 4])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.forward_only and args.train_only:
        print("error: --forward-only and --train-only exclude each other", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "thread" and (device.type != "cpu" or torch.get_num_threads() != 1):
        print("error: --clock thread needs --device cpu --threads 1", file=sys.stderr)
        return 2
    print(
        f"# torch {torch.__version__}, device {device}, dtype {args.dtype}, batch {args.batch}, "
        f"threads {torch.get_num_threads()}, clock {args.clock}, grad {args.grad}, "
        f"fused kernel {'available' if native.available() else 'unavailable'}, "
        f"load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    results: list[Result] = []
    for batch in args.batch:
        for stage in args.stages:
            channels, height = STAGES[stage - 1]
            shape_results = run_shape(channels, height, batch, args, device)
            results += shape_results
            for r in shape_results:
                train = (
                    ""
                    if r.train_ms is None
                    else f"fwd+bwd {r.train_ms:8.2f} ms  peak {r.forward_peak_mb:6.1f} MB  "
                    f"saved {r.saved_mb:6.1f} MB  "
                )
                fwd = "" if r.forward_ms is None else f"fwd {r.forward_ms:8.3f} ms  "
                print(
                    f"{channels:4d} {height:3d} b{batch:<3d} {r.name:16s} {fwd}{train}[{r.resolved}]",
                    flush=True,
                )
    print(f"\n# load average at the end {os.getloadavg()[0]:.1f}\n")
    print(markdown(results, args.by))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training throughput (images/s) of a model with the `full` recipe's update step.

Runs `neonas.train.epoch.train_one_epoch` (Mixup/CutMix, soft-target loss, AdamW, cosine
schedule, AMP, channels-last) on synthetic batches already on the device, so the figure is
the model + optimiser speed without data loading. One untimed pass warms up (cuDNN autotune,
allocator), then a timed pass.

    python benchmarks/train.py --model neonext_tiny --batch-size 128            # a GPU
    python benchmarks/train.py --model neonext_tiny --batch-size 16 --steps 3   # a CPU

`--profile N` then runs N more steps under torch.profiler and adds the operators that took the
most time of their own (device time on a GPU, CPU time on a CPU): where a slow step goes
(`neonas train --amp bf16` ran 1 s per update on an H200, benchmarks/README.md "GPU check").
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exit_status import reports_user_errors  # noqa: E402


def measure(
    model_name: str,
    *,
    batch_size: int,
    resolution: int,
    steps: int,
    warmup_steps: int,
    device: str,
    amp: str,
    channels_last: bool | None,
    profile_steps: int = 0,
    top: int = 15,
) -> dict:
    """Images/s of `steps` training updates after `warmup_steps` untimed ones; with
    `profile_steps`, the `top` operators of that many more steps under torch.profiler."""
    import torch

    from neonas.models import resolve_model
    from neonas.train.augment import build_mixup, train_loss
    from neonas.train.distributed import DistContext, resolve_device
    from neonas.train.engine import resolve_amp
    from neonas.train.epoch import TrainStep, train_one_epoch
    from neonas.train.optim import build_optimizer, build_scheduler
    from neonas.train.recipe import get_recipe

    target = resolve_device(device)
    context = DistContext(rank=0, world_size=1, local_rank=0, device=target)
    recipe = get_recipe("full", {"batch_size": batch_size})
    model, _ = resolve_model(model_name, num_classes=1000, input_size=resolution)
    use_channels_last = target.type == "cuda" if channels_last is None else channels_last
    model.to(target)
    if use_channels_last:
        model.to(memory_format=torch.channels_last)
    amp_dtype = resolve_amp(amp, target)
    optimizer = build_optimizer(model, recipe)
    step = TrainStep(
        model=model,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, recipe, updates_per_epoch=max(steps, warmup_steps)),
        loss_fn=train_loss(recipe),
        scaler=torch.amp.GradScaler(target.type, enabled=amp_dtype == torch.float16),
        mixup=build_mixup(recipe, num_classes=1000),
        amp_dtype=amp_dtype,
        channels_last=use_channels_last,
    )
    images = torch.randn(batch_size, 3, resolution, resolution, device=target)
    labels = torch.randint(0, 1000, (batch_size,), device=target)
    train_one_epoch(step, [(images, labels)] * warmup_steps, epoch=0, context=context)
    stats = train_one_epoch(step, [(images, labels)] * steps, epoch=0, context=context)
    profiled = None
    if profile_steps:
        profiled = top_operators(
            lambda: train_one_epoch(
                step, [(images, labels)] * profile_steps, epoch=0, context=context
            ),
            target,
            profile_steps,
            top,
        )
    return {
        "model": model_name,
        "params": sum(p.numel() for p in model.parameters()),
        "resolution": resolution,
        "batch_size": batch_size,
        "steps": steps,
        "device": torch.cuda.get_device_name(target)
        if target.type == "cuda"
        else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "amp": str(amp_dtype).removeprefix("torch.") if amp_dtype else "none",
        "channels_last": use_channels_last,
        "images_per_s": round(stats["images_per_s"], 1),
        "ms_per_step": round(1000 * stats["train_time_s"] / steps, 1),
        "torch": torch.__version__,
        **({"profile": profiled} if profiled is not None else {}),
    }


def top_operators(run: Callable[[], object], device: Any, steps: int, top: int) -> dict:
    """The `top` operators by their own time per step while `run()` trains `steps` steps:
    device (kernel) time on a GPU, CPU time on a CPU, with calls per step and share.

    Only operators are ranked (events recorded on the CPU side): on a GPU each one carries the
    time of the kernels it launched, which the profiler also lists as events of their own, so
    counting both would count every kernel twice."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    on_gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with profile(activities=activities) as prof:
        run()
        if on_gpu:
            torch.cuda.synchronize(device)
    events = [event for event in prof.key_averages() if event.device_type == DeviceType.CPU]

    def own_us(event: Any) -> float:
        return event.self_device_time_total if on_gpu else event.self_cpu_time_total

    total = sum(own_us(event) for event in events) or 1.0
    ranked = sorted(events, key=own_us, reverse=True)[:top]
    return {
        "time": "device" if on_gpu else "cpu",
        "steps": steps,
        "total_ms_per_step": round(total / 1e3 / steps, 3),
        "operators": [
            {
                "name": event.key,
                "calls_per_step": event.count / steps,
                "ms_per_step": round(own_us(event) / 1e3 / steps, 3),
                "share": round(own_us(event) / total, 4),
            }
            for event in ranked
        ],
    }


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="neonext_tiny")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--res", type=int, default=224)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", default="auto", choices=("auto", "none", "bf16", "fp16"))
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="profile N more steps (default 0)"
    )
    parser.add_argument("--top", type=int, default=15, help="operators to list (default 15)")
    args = parser.parse_args(argv)
    result = measure(
        args.model,
        batch_size=args.batch_size,
        resolution=args.res,
        steps=args.steps,
        warmup_steps=args.warmup_steps,
        device=args.device,
        amp=args.amp,
        channels_last=args.channels_last,
        profile_steps=args.profile,
        top=args.top,
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""NeoNeXt-T (unfused and fused) against timm's ConvNeXt-T, same machine, same run.

Inference images/s at batch 1 and 32 and the time of one training step (forward, backward,
AdamW step) at 224 px. Prints a Markdown table for benchmarks/README.md.

    python benchmarks/models.py [--device cpu|cuda] [--dtype fp32|bf16] [--train-batch 8]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import timm
import torch

from neonas.models import build_model, fuse_for_inference, variant_config

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def timed(fn: Callable[[], object], device: str, repeats: int, warmup: int = 2) -> float:
    """Median seconds of `fn` after warm-up, synchronising CUDA around each call."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def models(device: str) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    neonext = build_model(variant_config("neonext_tiny")).to(device)
    convnext = timm.create_model("convnext_tiny", pretrained=False).to(device)
    return {
        "NeoNeXt-T": neonext,
        "NeoNeXt-T fused": fuse_for_inference(neonext.eval()),
        "ConvNeXt-T": convnext,
    }


def train_step_seconds(
    model: torch.nn.Module, args: argparse.Namespace, autocast: torch.autocast
) -> float:
    """Median seconds of one forward + backward + AdamW step on a random batch."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(args.train_batch, 3, 224, 224, device=args.device)
    target = torch.randint(0, 1000, (args.train_batch,), device=args.device)

    def step() -> None:
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(x), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return timed(step, args.device, max(2, args.repeats // 2), warmup=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=DTYPES)
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    dtype = DTYPES[args.dtype]
    autocast = torch.autocast(args.device, dtype=dtype, enabled=dtype != torch.float32)
    rows = []
    for name, model in models(args.device).items():
        row = {"model": name}
        model.eval()
        for batch in (int(b) for b in args.batches.split(",")):
            x = torch.randn(batch, 3, 224, 224, device=args.device)
            with torch.no_grad(), autocast:
                seconds = timed(lambda m=model, x=x: m(x), args.device, args.repeats)
            row[f"infer b{batch} img/s"] = f"{batch / seconds:.1f}"
        seconds = None if "fused" in name else train_step_seconds(model, args, autocast)
        row[f"train step b{args.train_batch} (s)"] = "-" if seconds is None else f"{seconds:.3f}"
        rows.append(row)
        print(row, flush=True)
    where = (
        torch.cuda.get_device_name()
        if args.device == "cuda"
        else platform.processor() or platform.machine()
    )
    print(
        f"\n{where}, {torch.get_num_threads()} threads, torch {torch.__version__}, {args.dtype}\n"
    )
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(row[k] for k in keys) + " |")


if __name__ == "__main__":
    main()

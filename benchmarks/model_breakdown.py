"""Where folded NeoNeXt-T and timm's ConvNeXt-T spend their inference time on CPU, by kind of op.

The model table (benchmarks/models.py) says which network is faster; this says why. Each round
profiles one forward call of each model in turn (interleaved, eval, `no_grad`, fp32, 224 px),
sums torch.profiler's self CPU time per op category, and reports the median over rounds per
category and model. Profiling adds a little overhead per op to both models alike.

`--linear` also times the block MLP's first layer the two ways it can receive NeoCell output,
interleaved, minimum per call: F.linear on the channels-last *view* of an NCHW tensor (what
`ChannelsLastPointwise` did before), and on a contiguous channels-last copy (what it does now),
at NeoNeXt-T's four stage shapes. Prints Markdown tables for benchmarks/README.md.

    python benchmarks/model_breakdown.py [--rounds 5] [--batches 1,32] [--threads 2] [--linear]
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections import defaultdict

import timm
import torch
import torch.nn.functional as F
from models import interleaved  # benchmarks/models.py: the same interleaved timing
from torch.profiler import ProfilerActivity, profile

import neonas.models  # noqa: F401  (registers the NeoNeXt family with timm)
from neonas.models import fold_for_inference

# aten op -> category; anything else is "other"
CATEGORIES = {
    "aten::addmm": "pointwise matmuls (MLP, head)",
    "aten::mm": "pointwise matmuls (MLP, head)",
    "aten::bmm": "NeoCell products",
    "aten::mkldnn_convolution": "convolutions (dwconv, stem, down-sampling)",
    "aten::gelu": "GELU",
    "aten::copy_": "copies (layout changes, addmm bias fill)",
    "aten::cat": "copies (layout changes, addmm bias fill)",
    "aten::constant_pad_nd": "copies (layout changes, addmm bias fill)",
    "aten::native_layer_norm": "norms",
    "aten::native_batch_norm": "norms",
    "aten::add": "adds, muls (residual, bias, layer scale)",
    "aten::add_": "adds, muls (residual, bias, layer scale)",
    "aten::mul": "adds, muls (residual, bias, layer scale)",
}
STAGES = [(96, 56), (192, 28), (384, 14), (768, 7)]  # NeoNeXt-T block (channels, size)


def profile_once(model: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Self CPU milliseconds per category for one forward call."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model(x)
    totals: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        category = CATEGORIES.get(event.key, "other")
        totals[category] += event.self_cpu_time_total / 1e3
    totals["total"] = sum(totals.values())
    return totals


def breakdown(models: dict[str, torch.nn.Module], batch: int, rounds: int) -> None:
    x = torch.randn(batch, 3, 224, 224)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in models}
    with torch.no_grad():
        for model in models.values():
            model(x)  # warm-up
        for _ in range(rounds):
            for name, model in models.items():
                samples[name].append(profile_once(model, x))
    categories = sorted(
        {c for runs in samples.values() for run in runs for c in run if c != "total"},
        key=lambda c: (
            -max(statistics.median(r.get(c, 0.0) for r in runs) for runs in samples.values())
        ),
    )
    names = list(models)
    print(f"\nbatch {batch}, median self CPU ms per call over {rounds} interleaved rounds\n")
    print("| category | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for category in [*categories, "total"]:
        cells = [
            f"{statistics.median(r.get(category, 0.0) for r in samples[n]):.1f}" for n in names
        ]
        print(f"| {category} | " + " | ".join(cells) + " |")


def fc1_forms(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> dict:
    """fc1 on the channels-last view of NCHW data, and on a contiguous channels-last copy."""
    return {
        "view": lambda: F.linear(x.permute(0, 2, 3, 1), weight, bias),
        "copy": lambda: F.linear(x.permute(0, 2, 3, 1).contiguous(), weight, bias),
    }


def linear_table(batches: list[int], rounds: int) -> None:
    print("\nfc1 (C -> 4C) on NeoCell output, minimum ms per call, interleaved\n")
    print("| stage | batch | linear on the NCHW view | contiguous copy + linear | speed-up |")
    print("|---|---|---|---|---|")
    for stage, (channels, size) in enumerate(STAGES, start=1):
        for batch in batches:
            x = torch.randn(batch, channels, size, size)
            weight, bias = torch.randn(4 * channels, channels), torch.randn(4 * channels)
            forms = fc1_forms(x, weight, bias)
            assert torch.allclose(forms["view"](), forms["copy"](), atol=1e-4)
            with torch.no_grad():
                samples = interleaved(forms, rounds, calls=1)
            times = {name: min(seconds) * 1e3 for name, seconds in samples.items()}
            print(
                f"| {stage} | {batch} | {times['view']:.2f} | {times['copy']:.2f} | "
                f"{times['view'] / times['copy']:.2f}x |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--linear", action="store_true", help="also time fc1 on a view vs a copy")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    torch.manual_seed(0)
    models = {
        "NeoNeXt-T folded": fold_for_inference(timm.create_model("neonext_tiny").eval()),
        "ConvNeXt-T (timm)": timm.create_model("convnext_tiny").eval(),
    }
    print(f"torch {torch.__version__}, {args.threads} threads, load {os.getloadavg()[0]:.1f}")
    for batch in batches:
        breakdown(models, batch, args.rounds)
    if args.linear:
        linear_table(batches, max(args.rounds, 5))
    print(f"\nload average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()

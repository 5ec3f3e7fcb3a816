"""NeoNeXt-T (as trained, folded, the authors' variant) against timm's ConvNeXt-T, interleaved.

Inference images/s at 224 px, batch 1 and 32, eval mode, `no_grad`. The models are timed in
rounds: each round runs every model in turn (`--calls` calls each), so a change in machine
load hits all of them alike; per model it reports the minimum (the least disturbed call) and
the median over all rounds. `--mlp` also times the block MLP forms we tried (1x1 convolutions
on NCHW data, Linear over channels-last data, one baddbmm per layer), interleaved the same way,
at the block shapes of NeoNeXt-T's four stages. Prints Markdown tables for benchmarks/README.md.

    python benchmarks/models.py [--rounds 5] [--calls 2] [--batches 1,32] [--threads 2] [--mlp]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time
from collections.abc import Callable

import timm
import torch
import torch.nn.functional as F

import neonas.models  # noqa: F401  (registers the NeoNeXt family with timm)
from neonas.models import fold_for_inference
from neonas.models.neonext import ChannelsLastPointwise


def build_models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    neonext = timm.create_model("neonext_tiny").eval()
    reference = timm.create_model("neonext_tiny_ref").eval()
    folded = fold_for_inference(neonext)
    return {
        "NeoNeXt-T": neonext,
        "NeoNeXt-T folded": folded,
        "NeoNeXt-T folded, NCHW 1x1-conv MLP": with_nchw_pointwise(folded),
        "NeoNeXt-T-ref folded": fold_for_inference(reference),
        "ConvNeXt-T (timm)": timm.create_model("convnext_tiny").eval(),
    }


def with_nchw_pointwise(model: torch.nn.Module) -> torch.nn.Module:
    """A copy whose block MLPs run as plain 1x1 convolutions on NCHW data (the former form)."""
    model = copy.deepcopy(model)
    for module in model.modules():
        for name, child in module.named_children():
            if isinstance(child, ChannelsLastPointwise):
                plain = torch.nn.Conv2d(
                    child.in_channels, child.out_channels, 1, bias=child.bias is not None
                )
                plain.load_state_dict(child.state_dict())
                setattr(module, name, plain)
    return model


def interleaved(
    fns: dict[str, Callable[[], object]], rounds: int, calls: int
) -> dict[str, list[float]]:
    """Seconds per call of each fn, timed in rounds that run every fn in turn."""
    for fn in fns.values():  # warm-up: allocator, thread pool, NeoCell operand caches
        fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(calls):
                start = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - start)
    return samples


def model_table(args: argparse.Namespace) -> None:
    models = build_models()
    rows: dict[str, dict[str, str]] = {name: {} for name in models}
    for batch in args.batches:
        x = torch.randn(batch, 3, 224, 224)
        with torch.no_grad():
            fns = {name: (lambda m=model, x=x: m(x)) for name, model in models.items()}
            samples = interleaved(fns, args.rounds, args.calls)
        base = min(samples["ConvNeXt-T (timm)"])
        for name, times in samples.items():
            rows[name][f"b{batch} img/s min-time"] = f"{batch / min(times):.2f}"
            rows[name][f"b{batch} img/s median"] = f"{batch / statistics.median(times):.2f}"
            rows[name][f"b{batch} vs ConvNeXt (min)"] = f"{base / min(times):.2f}x"
        print(f"batch {batch} done, load {os.getloadavg()[0]:.1f}", flush=True)
    print_table("model", rows)


class ChannelsLastMLP(torch.nn.Module):
    """A block's fc1 -> GELU -> fc2 as Linear over channels-last data (the weights of the convs)."""

    def __init__(self, fc1: torch.nn.Conv2d, fc2: torch.nn.Conv2d) -> None:
        super().__init__()
        self.w1, self.b1 = fc1.weight.flatten(1), fc1.bias
        self.w2, self.b2 = fc2.weight.flatten(1), fc2.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
        y = F.linear(F.gelu(F.linear(y, self.w1, self.b1)), self.w2, self.b2)
        return y.permute(0, 3, 1, 2)


class BaddbmmMLP(ChannelsLastMLP):
    """fc1 -> GELU -> fc2 as one baddbmm each over (N, C, H*W), NCHW kept."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        y = x.reshape(n, c, h * w)
        y = torch.baddbmm(self.b1[None, :, None], self.w1.expand(n, -1, -1), y)
        y = torch.baddbmm(self.b2[None, :, None], self.w2.expand(n, -1, -1), F.gelu(y))
        return y.reshape(n, c, h, w)


def mlp_table(args: argparse.Namespace) -> None:
    model = timm.create_model("neonext_tiny").eval()
    rows: dict[str, dict[str, str]] = {}
    for index, (stage, size) in enumerate(zip(model.stages, (56, 28, 14, 7), strict=True)):
        block = stage.blocks[0]
        conv = with_nchw_pointwise(torch.nn.Sequential(block.fc1, block.act, block.fc2))
        forms = {
            "1x1 conv, NCHW": conv,
            "Linear, channels-last": ChannelsLastMLP(block.fc1, block.fc2),
            "baddbmm, NCHW": BaddbmmMLP(block.fc1, block.fc2),
        }
        for batch in args.batches:
            x = torch.randn(batch, block.fc1.in_channels, size, size)
            with torch.no_grad():
                reference = conv(x)
                for form in forms.values():
                    assert torch.allclose(form(x), reference, atol=1e-4), "MLP forms disagree"
                fns = {name: (lambda f=form, x=x: f(x)) for name, form in forms.items()}
                samples = interleaved(fns, args.rounds, args.calls)
            base = min(samples["1x1 conv, NCHW"])
            for name, times in samples.items():
                row = rows.setdefault(name, {})
                row[f"s{index + 1} b{batch} ms (min)"] = f"{min(times) * 1e3:.1f}"
                row[f"s{index + 1} b{batch} vs conv"] = f"{base / min(times):.2f}x"
        print(f"stage {index + 1} done, load {os.getloadavg()[0]:.1f}", flush=True)
    print_table("block MLP form", rows)


def print_table(first: str, rows: dict[str, dict[str, str]]) -> None:
    keys = list(next(iter(rows.values())))
    print(f"\n| {first} | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(row[k] for k in keys) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2, help="calls per model per round")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mlp", action="store_true", help="also time the block MLP forms")
    args = parser.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(args.threads)
    where = platform.processor() or platform.machine()
    print(
        f"{where}, {torch.get_num_threads()} threads, torch {torch.__version__}, fp32, "
        f"{args.rounds} rounds x {args.calls} calls, load before {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    model_table(args)
    if args.mlp:
        mlp_table(args)
    print(f"\nload average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()

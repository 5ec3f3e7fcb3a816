"""How many candidates a minute the evaluators score: NeoNeXt-T-sized networks from the
`neonext` space (224 px), FLOPs unit by unit (shared trace cache, as in a search) against
fvcore on the whole model, matrix efficiency and the Ascend prediction.

    .venv/bin/python benchmarks/evaluator_speed.py [--samples 30] [--threads 2]

Prints a markdown table for benchmarks/README.md ("Evaluator speed").
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import torch

import evaluators.flops as flops
import evaluators.op_trace as op_trace
import evaluators.segments as segments
from evaluators.hardware import inference_form
from evaluators.latency.ascend import ASCEND310, predict_latency
from evaluators.latency.backends import cpu_name
from evaluators.matrix_efficiency import matrix_efficiency
from neonas.models import build_model
from neonas.search import load_space


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def whole_model_flops(model, shape) -> None:
    """fvcore on the whole model: the unit layout switched off."""
    real = segments.model_units
    segments.model_units = lambda _model: None
    try:
        flops.clear_cache()
        flops.count_flops(model, shape)
    finally:
        segments.model_units = real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    space = load_space("neonext")
    rng = random.Random(0)
    configs = [space.sample(rng) for _ in range(args.samples)]
    shape = (1, 3, 224, 224)
    times: dict[str, list[float]] = {
        name: []
        for name in (
            "build",
            "flops, units, shared cache",
            "flops, units, cold cache",
            "flops, whole model (fvcore)",
            "matrix efficiency, shared cache",
            "Ascend 310 prediction (fuse + record + model)",
        )
    }
    sizes = []
    flops.clear_cache()
    op_trace.clear_cache()
    for config in configs:
        start = time.perf_counter()
        model = build_model(config).eval()
        times["build"].append(time.perf_counter() - start)
        times["flops, units, shared cache"].append(
            timed(lambda m=model: sizes.append(flops.count_flops(m, shape).flops))
        )
        times["matrix efficiency, shared cache"].append(
            timed(lambda m=model: matrix_efficiency(m, shape[1:]))
        )
        times["Ascend 310 prediction (fuse + record + model)"].append(
            timed(lambda m=model: predict_latency(inference_form(m), shape[1:], ASCEND310))
        )
    for config in configs[:10]:
        model = build_model(config).eval()
        flops.clear_cache()
        times["flops, units, cold cache"].append(timed(lambda m=model: flops.count_flops(m, shape)))
        times["flops, whole model (fvcore)"].append(
            timed(lambda m=model: whole_model_flops(m, shape))
        )
    print(
        f"machine: {cpu_name()}, torch threads {args.threads}, "
        f"{args.samples} networks of the neonext space (FLOPs {min(sizes) / 1e9:.2f}-{max(sizes) / 1e9:.2f} G)\n"
    )
    print("| evaluator | median s / network | networks / min |")
    print("|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} | {60 / median:.0f} |")


if __name__ == "__main__":
    main()

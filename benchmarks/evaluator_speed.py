"""How many candidates a minute the evaluators score, and how much memory a worker needs:
NeoNeXt-T-sized networks from the `neonext` space (224 px), FLOPs unit by unit (shared trace
cache, as in a search) against fvcore on the whole model, matrix efficiency and the Ascend
prediction; then a search trial's whole evaluation (`score_candidate`: Ascend 310 latency,
matrix efficiency, the default zero-cost signal) of `--trial-samples` candidates in one fresh process, as one Ray
worker runs them, with its memory.

    .venv/bin/python benchmarks/evaluator_speed.py [--samples 30] [--threads 2]
    .venv/bin/python benchmarks/evaluator_speed.py --memory-only [--code-dir OTHER_CHECKOUT]

This worker-equivalent runs every candidate in the main thread, so it cannot show how a real
Ray worker's memory grows from trial to trial: benchmarks/sweep_memory.py measures that.

Memory is read from /proc/self/smaps_rollup: RSS (what `top` shows; counts shared library
pages in full), PSS (shared pages divided among the processes that map them) and anonymous
memory (the process's own heap: models, activations, caches). `--code-dir` runs the worker
part on another checkout (e.g. the commit before a change) for a side-by-side figure.

Prints markdown tables for benchmarks/README.md ("Evaluator speed").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

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


# What one Ray worker runs for a search's trials, in a fresh interpreter.
WORKER = """
import json, os, random, resource, sys, time
def memory():
    values = {}
    with open(f"/proc/{os.getpid()}/smaps_rollup") as rollup:
        for line in rollup:
            key, *rest = line.split()
            if key in ("Rss:", "Pss:", "Anonymous:"):
                values[key[:-1].lower()] = int(rest[0]) / 1024
    values["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return values
import torch
torch.set_num_threads(int(sys.argv[2]))
from neonas.search import load_space
from neonas.search.trial import score_candidate
from neonas.search.settings import EvalSettings
after_imports = memory()
space, rng = load_space("neonext"), random.Random(0)
settings = EvalSettings(hw="ascend310")
seconds = []
for _ in range(int(sys.argv[1])):
    config = space.sample(rng)
    start = time.perf_counter()
    score_candidate(config, settings, lambda metrics: None)
    seconds.append(time.perf_counter() - start)
print(json.dumps({"imports": after_imports, "end": memory(), "seconds": seconds}))
"""


def worker_memory(samples: int, threads: int, code_dir: str | None) -> dict:
    """Run WORKER in a fresh process (on `code_dir`'s code if given); its JSON report."""
    code = code_dir or str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([code, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(samples), str(threads)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=code_dir or None,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_worker_memory(samples: int, threads: int, code_dir: str | None) -> None:
    report = worker_memory(samples, threads, code_dir)
    imports, end = report["imports"], report["end"]
    per_candidate = statistics.median(report["seconds"])
    print(
        f"\none worker, {samples} candidates of the neonext space at 224 px "
        f"(score_candidate: Ascend 310 latency, matrix efficiency, default zero-cost signal), code "
        f"{code_dir or 'this checkout'}:\n"
    )
    print("| | RSS MB | PSS MB | anonymous MB |")
    print("|---|---|---|---|")
    print(
        f"| after imports | {imports['rss']:.0f} | {imports['pss']:.0f} | {imports['anonymous']:.0f} |"
    )
    print(
        f"| after {samples} candidates | {end['rss']:.0f} | {end['pss']:.0f} | {end['anonymous']:.0f} |"
    )
    print(f"| peak RSS | {end['peak_rss']:.0f} | | |")
    print(
        f"\nmedian {per_candidate:.2f} s per candidate ({60 / per_candidate:.0f} candidates / min, "
        f"first {report['seconds'][0]:.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--trial-samples", type=int, default=20)
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--code-dir", help="run the worker part on this checkout's code")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_only:
        print_worker_memory(args.trial_samples, args.threads, args.code_dir)
        return
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
    print_worker_memory(args.trial_samples, args.threads, args.code_dir)


if __name__ == "__main__":
    main()

"""The README's main job with each sampler: wall time and the front it finds.

`python cli.py search --hw ascend --budget 4.4G` scores trials with SynFlow, a zero-cost
signal, so its default sampler is TPE; GP ranks better per trial on the sampler benchmark but
its proposals cost seconds in the driver. This runs the main job as a user does, once per
sampler and seed, and prints per run: wall time (fresh interpreter, Ray start-up included),
completed trials, the front's size, its best SynFlow, and its hypervolume in (predicted
latency, SynFlow) with one reference point for all runs (1.1 times the worst latency of every
front, and the lowest SynFlow less a tenth of the range), so each figure is comparable across
samplers and seeds.

Protocol: runs one after another, the samplers' order reversed every other seed so that a
drift in machine load hits all alike; `--seed S` for every sampler of seed S, every other
option at its default. The load average before each run is recorded.

    python benchmarks/main_job_sampler.py [--seeds 3] [--samplers tpe,gp,tpe:64] [--out DIR]

`--samplers` takes a sampler with its trial count (`tpe:64`; 32, the main job's, without one),
so a sampler can be given another's wall time. With `--out` the runs are kept and a second
invocation reuses them (resumable; the reference point is taken over the invocation's runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neonas.search.settings import SAMPLER_NAMES  # noqa: E402

MAIN_JOB = ["cli.py", "search", "--hw", "ascend", "--budget", "4.4G"]
DEFAULT_TRIALS = 32  # the main job's


def run_main_job(sampler: str, trials: int, seed: int, results: Path) -> dict:
    """One main job with this sampler, trial count and seed: its wall time and pareto.json.
    Resumable: a run whose timing is already in `results` is read back, not run again."""
    name = f"{sampler}-t{trials}-seed{seed}"
    timing = results / f"{name}.timing.json"
    if not timing.is_file():
        shutil.rmtree(results / name, ignore_errors=True)  # a run cut short: start it again
        load = os.getloadavg()[0]
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, *MAIN_JOB, "--sampler", sampler, "--trials", str(trials)]
            + ["--seed", str(seed), "--results-dir", str(results), "--name", name],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(
                f"main_job_sampler.py: {name} failed ({done.returncode}): {done.stderr[-400:]}"
            )
        timing.write_text(json.dumps({"seconds": seconds, "load": load}))
    measured = json.loads(timing.read_text())
    pareto = json.loads((results / name / "pareto.json").read_text())
    return {"sampler": f"{sampler}:{trials}", "seed": seed, **measured, "pareto": pareto}


def parse_samplers(text: str) -> list[tuple[str, int]]:
    """ "tpe,gp,tpe:64" -> [("tpe", 32), ("gp", 32), ("tpe", 64)]: a sampler and its trials."""
    found = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, trials = item.partition(":")
        if name not in SAMPLER_NAMES or (trials and not trials.isdigit()):
            raise ValueError(item)
        found.append((name, int(trials or DEFAULT_TRIALS)))
    if not found:
        raise ValueError(text)
    return found


def front_points(run: dict) -> list[tuple[float, float]]:
    """(predicted latency ms, SynFlow) of each point of the run's front."""
    return [(point["latency_ms"], point["accuracy"]) for point in run["pareto"]["front"]]


def summarise(runs: list[dict]) -> list[dict]:
    """One row per run, hypervolumes against one reference point for all runs."""
    from neonas.bench.metrics import hypervolume_2d

    points = [point for run in runs for point in front_points(run)]
    low, high = min(p[1] for p in points), max(p[1] for p in points)
    # just beyond the worst of all fronts, so every front's slowest point still counts
    reference = (1.1 * max(p[0] for p in points), low - 0.1 * (high - low))
    return [
        {
            "sampler": run["sampler"],
            "seed": run["seed"],
            "seconds": round(run["seconds"], 1),
            "load_before": round(run["load"], 2),
            "completed": run["pareto"]["completed"],
            "front": len(run["pareto"]["front"]),
            "best_synflow": round(max(p[1] for p in front_points(run)), 4),
            "hypervolume": round(hypervolume_2d(front_points(run), reference), 5),
        }
        for run in runs
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--samplers", default="tpe,gp")
    parser.add_argument(
        "--out", type=Path, help="keep the runs' results here (default: a temporary folder)"
    )
    args = parser.parse_args()
    try:
        samplers = parse_samplers(args.samplers)
    except ValueError as bad:
        choices = ", ".join(SAMPLER_NAMES)
        parser.exit(
            2,
            f"main_job_sampler.py: bad --samplers item {bad}: use {choices}, optionally :TRIALS\n",
        )
    if args.seeds < 1:
        parser.exit(2, "main_job_sampler.py: --seeds must be at least 1\n")
    with tempfile.TemporaryDirectory() as scratch:
        results = args.out or Path(scratch)
        results.mkdir(parents=True, exist_ok=True)
        runs = []
        for seed in range(args.seeds):
            order = samplers if seed % 2 == 0 else samplers[::-1]
            for sampler, trials in order:
                runs.append(run_main_job(sampler, trials, seed, results))
                print(
                    f"{sampler}:{trials} seed {seed}: {runs[-1]['seconds']:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
        rows = summarise(runs)
    print(
        "| sampler | seed | wall s | load before | completed | front | best SynFlow | hypervolume |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(value) for value in row.values()) + " |")
    for sampler, trials in samplers:
        mine = [row for row in rows if row["sampler"] == f"{sampler}:{trials}"]
        print(
            f"{sampler}:{trials}: median {statistics.median(r['seconds'] for r in mine):.0f} s, "
            f"hypervolume median {statistics.median(r['hypervolume'] for r in mine):.5f}, "
            f"best SynFlow median {statistics.median(r['best_synflow'] for r in mine):.4f}"
        )


if __name__ == "__main__":
    main()

"""Search throughput: candidates scored per minute, and the search's own overhead per trial.

    python benchmarks/search.py [--candidates 30] [--trials 40]

1. FLOPs only: sample a neonext-space network, build it, count FLOPs and parameters (the
   driver-side budget screen), one process, one torch thread.
2. Full score: the screen plus what every default trial does (predicted Ascend latency,
   matrix efficiency, the default accuracy signal at 64 px), one process, one torch thread.
3. Search overhead: Optuna alone (ask, define-by-run suggest, tell on the SQLite study, TPE),
   then a whole Ray Tune + Optuna search of the tiny space whose trials do no work (they
   report fixed metrics), two at a time: what is left per trial is Ray + Optuna + the screen.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def per_minute(seconds: list[float]) -> str:
    return f"{60 / statistics.median(seconds):.0f}"


def flops_only(count: int) -> list[float]:
    from neonas.search.trial import screen_candidate
    from neonas.space import load_space

    space, rng = load_space("neonext"), random.Random(0)
    screen_candidate(space.sample(rng), None, None)  # warm-up: imports, first traces
    times = []
    for _ in range(count):
        start = time.perf_counter()
        screen_candidate(space.sample(rng), None, None)
        times.append(time.perf_counter() - start)
    return times


def full_score(count: int) -> list[float]:
    from neonas.search.settings import EvalSettings
    from neonas.search.trial import score_candidate, screen_candidate
    from neonas.space import load_space

    space, rng, settings = load_space("neonext"), random.Random(1), EvalSettings()
    sink: list[dict[str, Any]] = []
    score_candidate(space.sample(rng), settings, sink.append)  # warm-up
    times = []
    for _ in range(count):
        start = time.perf_counter()
        config = space.sample(rng)
        screen_candidate(config, None, None)
        score_candidate(config, settings, sink.append)
        times.append(time.perf_counter() - start)
    return times


def optuna_only(trials: int, folder: Path) -> list[float]:
    import optuna

    from neonas.search.study import make_sampler, open_storage, open_study
    from neonas.space import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(open_storage(folder / "optuna.db"), "pareto")
    study.sampler = make_sampler("tpe", 0, trials)
    space, times = load_space("neonext"), []
    for index in range(trials):
        start = time.perf_counter()
        trial = study.ask()
        space.suggest(trial)
        study.tell(trial, [float(index % 7), float(index % 5)])
        times.append(time.perf_counter() - start)
    return times


def idle_score(config: Any, settings: Any, report: Any) -> None:
    """A trial that does no work: only Ray, Optuna and the screen remain."""
    report(
        {"accuracy": 1.0, "latency_ms": 1.0, "latency_source": "predicted", "status": "completed"}
    )


def search_overhead(trials: int, folder: Path) -> dict[str, float]:
    import ray
    from rich.console import Console

    from neonas.search import SearchSettings, start_run
    from neonas.search.settings import EvalSettings
    from neonas.search.study import load_trials

    start = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - start
    settings = SearchSettings(
        name="overhead",
        results_dir=str(folder),
        space="tiny",
        trials=trials,
        concurrency=2,
        eval=EvalSettings(),
    )
    start = time.perf_counter()
    start_run(settings, score=idle_score, console=Console(file=open("/dev/null", "w")))  # noqa: SIM115
    total = time.perf_counter() - start
    ray.shutdown()
    finished = sorted(
        row.finished for row in load_trials(folder / "overhead").with_status("completed")
    )
    # Steady state: time between completed trials after the first two, which include starting
    # the two Ray workers.
    steady = (finished[-1] - finished[1]) / (len(finished) - 2)
    return {
        "ray_init_s": ray_start,
        "session_s": total,
        "per_trial_s": total / trials,
        "steady_per_trial_s": steady,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=30)
    parser.add_argument("--trials", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from neonas.search.settings import EvalSettings

    signal = EvalSettings().accuracy_signal  # what a default trial computes
    with tempfile.TemporaryDirectory() as tmp:
        flops = flops_only(args.candidates)
        full = full_score(args.candidates)
        ask_tell = optuna_only(args.trials, Path(tmp))
        overhead = search_overhead(args.trials, Path(tmp))
    print("| measurement | median s per candidate | candidates per minute |")
    print("|---|---|---|")
    print(
        f"| FLOPs only (build + fvcore count), neonext | {statistics.median(flops):.3f} | {per_minute(flops)} |"
    )
    print(
        f"| FLOPs + predicted latency + matrix efficiency + {signal}, neonext | {statistics.median(full):.3f} | {per_minute(full)} |"
    )
    print(
        f"| Optuna ask + suggest + tell (SQLite, TPE), {args.trials} trials | {statistics.median(ask_tell):.3f} | {per_minute(ask_tell)} |"
    )
    print(
        f"| whole search with idle trials (Ray + Optuna + screen), tiny, 2 at a time | "
        f"{overhead['steady_per_trial_s']:.3f} (steady) | {60 / overhead['steady_per_trial_s']:.0f} |"
    )
    print(
        f"\nray.init {overhead['ray_init_s']:.1f} s; session of {args.trials} idle trials {overhead['session_s']:.1f} s "
        f"({overhead['per_trial_s']:.2f} s per trial, worker start-up included)"
    )


if __name__ == "__main__":
    main()

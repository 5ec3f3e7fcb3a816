"""The sampler against random: does the search's sampler find better fronts than random draws?

    python benchmarks/sampler_search.py run --cache /work/bench-cache [--samplers tpe,random,nsga2]
        [--seeds 10] [--trials 256]
    python benchmarks/sampler_search.py collect --cache /work/bench-cache
    python benchmarks/sampler_search.py report [--json]
    python benchmarks/sampler_search.py ask-cost [--space neonext] [--trials 32]

`run` fills a resumable cache (one file per finished search; every network it scores kept in
`samplers/oracle.jsonl`, so a search stopped half-way replays its seeded proposals for free);
`collect` writes the committed summary (neonas/bench/data/tiny-digits-samplers.json); `report`
prints the figures from that file in seconds. `ask-cost` times each sampler's own work per
proposal in the driver (seeded random objective values, no network built or scored). `neocell_bench.py report --json` carries the same
figures under "samplers".

Protocol:
- the objective is the search's own Pareto objective (accuracy up, latency down), with
  - accuracy: the supernet signal as `search --supernet` computes it (neonas.supernet.scoring
    SubnetScorer: BatchNorm re-estimated on 256 training images, top-1 on 500 validation
    images), from one supernet of search_spaces/tiny.yaml trained on `digits` with the recipe
    benchmarks/accuracy_signals.py calls uniform4-b32-e30-lr0.002 (30 epochs, seed 0);
  - latency: predicted Ascend 310 latency, batch 1 (`neonas profile --hw ascend`);
  both are deterministic per network, so every search sees the same landscape;
- each search is the product's ask/tell walk without Ray: the sampler of
  neonas.search.study.make_sampler (tpe, nsga2, gp) or Optuna's RandomSampler, seeded
  0..seeds-1, the space's define-by-run suggest, a repeated network told PRUNED and asked
  again as the searcher does; one trial at a time; `trials` distinct networks scored;
- figures, for every search after n trials: the hypervolume of its (latency, top-1) points
  against the reference point (REFERENCE_MS, REFERENCE_TOP1), divided by the area of the box
  from (FLOOR_MS, 100 %) to it (so 1.0 would be a 100 % network at FLOOR_MS); and the best
  top-1 among networks within BUDGET_MS (about the median predicted latency of the digits
  table's networks). Per sampler: median and quartiles over the seeds. "Trials to random's
  256-trial hypervolume": the first n at which the sampler's median curve reaches the median of
  random's at 256 trials (null: never within the run).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from accuracy_signals import SPACE, SupernetRecipe, make_data, train_supernets
from exit_status import reports_user_errors
from neocell_bench import _now, _write, code_commit, machine, predicted_latency

from neonas.bench import metrics
from neonas.bench.samplers import sampler_figures, summary_path
from neonas.bench.table import DATA
from neonas.errors import UserError
from neonas.search.settings import sampler_for
from neonas.signals import SUPERNET

DATASET = "digits"
SAMPLERS = ("tpe", "random", "nsga2", "gp")
# The sampler `search --supernet` takes by default (neonas.search.settings.sampler_for).
DEFAULT_SAMPLER = sampler_for(SUPERNET)
REFERENCE_MS = 0.60  # slower than every network of the digits table (0.36-0.56 ms)
REFERENCE_TOP1 = 50.0  # below every network the supernet scores
FLOOR_MS = 0.30
BUDGET_MS = 0.48
EVERY = 4  # the committed curves keep every 4th trial
MAX_ASKS_PER_TRIAL = 50  # a sampler that repeats itself this much is stopped


# --- the landscape ------------------------------------------------------------------------------


class Oracle:
    """Top-1 of a network's subnet and its predicted latency, each computed once per network
    and kept in a JSON Lines file (appended as they come, so a killed run loses nothing)."""

    def __init__(self, cache: Path) -> None:
        from neonas.supernet.scoring import SubnetScorer

        recipe = SupernetRecipe()
        data = make_data(cache, DATASET)
        train_supernets(cache, [DATASET], recipe)
        checkpoint = cache / recipe.training / DATASET / "last.pt"
        self.scorer = SubnetScorer(checkpoint, data, seed=0)
        self.path = cache / "samplers" / "oracle.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.known: dict[str, tuple[float, float]] = {}
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    entry = json.loads(line)
                    self.known[entry["key"]] = (entry["latency_ms"], entry["top1"])
        self.computed = 0

    def __call__(self, key: str, config: Any) -> tuple[float, float]:
        """(latency ms, top-1 %) of `config`, whose canonical key is `key`."""
        if key in self.known:
            return self.known[key]
        start = time.perf_counter()
        latency = predicted_latency(config)
        top1 = self.scorer.score(config)
        entry = {"key": key, "latency_ms": latency, "top1": top1}
        entry["seconds"] = round(time.perf_counter() - start, 3)
        with self.path.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")
        self.known[key] = (latency, top1)
        self.computed += 1
        return latency, top1


# --- one search ---------------------------------------------------------------------------------


def make_sampler(name: str, seed: int, trials: int) -> Any:
    """The product's samplers by their `search --sampler` names (tpe, nsga2, gp), and Optuna's
    random sampler."""
    import optuna

    from neonas.search.study import make_sampler as product_sampler

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return product_sampler(name, seed, trials)


def search(name: str, seed: int, trials: int, oracle: Oracle) -> dict[str, Any]:
    """One seeded search of `trials` distinct networks; its (latency, top-1) points in order."""
    import optuna
    from optuna.trial import TrialState

    from neonas.search.objectives import objective_values, study_directions
    from neonas.space import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(SPACE)
    study = optuna.create_study(
        directions=study_directions("pareto"), sampler=make_sampler(name, seed, trials)
    )
    points: list[list[float]] = []
    seen: set[str] = set()
    asks = 0
    start = time.perf_counter()
    while len(points) < trials and asks < MAX_ASKS_PER_TRIAL * trials:
        trial = study.ask()
        asks += 1
        config = space.suggest(trial)
        key = space.key(config)
        if key in seen:
            study.tell(trial, state=TrialState.PRUNED)
            continue
        seen.add(key)
        latency, top1 = oracle(key, config)
        study.tell(trial, objective_values({"accuracy": top1, "latency_ms": latency}, "pareto"))
        points.append([round(latency, 5), round(top1, 3)])
    return {
        "sampler": name,
        "seed": seed,
        "points": points,
        "asks": asks,
        "seconds": round(time.perf_counter() - start, 1),
        "commit": code_commit(),
        "machine": machine("cpu"),
        "finished": _now(),
    }


def run_path(cache: Path, name: str, seed: int, trials: int) -> Path:
    return cache / "samplers" / "runs" / f"{name}-t{trials}-s{seed}.json"


def run(cache: Path, names: list[str], seeds: int, trials: int, first_seed: int = 0) -> None:
    """Every missing search, seed-major so that each sampler's seeds grow together; from
    `first_seed`, so that a second process can take later seeds."""
    import torch

    torch.set_num_threads(1)
    oracle = Oracle(cache)
    started = time.perf_counter()
    for seed in range(first_seed, seeds):
        for name in names:
            path = run_path(cache, name, seed, trials)
            if path.is_file():
                continue
            before = oracle.computed
            result = search(name, seed, trials, oracle)
            _write(path, result)
            curve = hypervolume_curve(result["points"])
            print(
                f"[{time.perf_counter() - started:7.0f} s] {name} seed {seed}: hypervolume "
                f"{curve[-1]:.4f} after {len(result['points'])} trials ({result['asks']} asks, "
                f"{oracle.computed - before} new networks, {result['seconds']:.0f} s)",
                flush=True,
            )


def ask_cost(space_name: str, names: list[str], trials: int) -> dict[str, dict[str, float]]:
    """Seconds per proposal (ask and the space's define-by-run walk) of each sampler over a run
    of `trials`, told seeded random values: the sampler's own cost in the driver, apart from
    any trial's."""
    import optuna

    from neonas.search.objectives import study_directions
    from neonas.space import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(space_name)
    costs = {}
    for name in names:
        study = optuna.create_study(
            directions=study_directions("pareto"), sampler=make_sampler(name, 0, trials)
        )
        rng = random.Random(0)
        seconds = []
        for _ in range(trials):
            start = time.perf_counter()
            trial = study.ask()
            space.suggest(trial)
            seconds.append(time.perf_counter() - start)
            study.tell(trial, [rng.uniform(50.0, 90.0), rng.uniform(1.0, 10.0)])
        late = seconds[trials // 2 :]
        costs[name] = {"median_s": statistics.median(late), "max_s": max(seconds)}
        print(
            f"{name}: {statistics.median(late):.3g} s per proposal (median of trials "
            f"{trials // 2 + 1}-{trials}), at most {max(seconds):.3g} s",
            flush=True,
        )
    return costs


# --- figures ------------------------------------------------------------------------------------


def hypervolume_curve(points: list[list[float]]) -> list[float]:
    """The normalised hypervolume after each trial."""
    box = (REFERENCE_MS - FLOOR_MS) * (100.0 - REFERENCE_TOP1)
    curve, front = [], []
    for latency, top1 in points:
        front.append((latency, top1))
        hv = metrics.hypervolume_2d(front, (REFERENCE_MS, REFERENCE_TOP1))
        curve.append(round(hv / box, 5))
    return curve


def best_within_budget_curve(points: list[list[float]]) -> list[float | None]:
    """The best top-1 within BUDGET_MS after each trial (None until one is found)."""
    curve: list[float | None] = []
    best: float | None = None
    for latency, top1 in points:
        if latency <= BUDGET_MS and (best is None or top1 > best):
            best = top1
        curve.append(best)
    return curve


def collect(cache: Path, out: Path | None = None, trials: int = 256) -> Path:
    """Write the committed summary: each finished search of `trials` trials, its curves kept
    every EVERY trials."""
    runs = []
    for path in sorted((cache / "samplers" / "runs").glob(f"*-t{trials}-s*.json")):
        result = json.loads(path.read_text())
        points = result["points"]
        keep = list(range(EVERY - 1, len(points), EVERY))
        hv, best = hypervolume_curve(points), best_within_budget_curve(points)
        runs.append(
            {
                "sampler": result["sampler"],
                "seed": result["seed"],
                "trials": len(points),
                "asks": result["asks"],
                "seconds": result["seconds"],
                "hypervolume": [hv[i] for i in keep],
                "best_within_budget": [best[i] for i in keep],
                "commit": result["commit"],
                "machine": result["machine"],
                "finished": result["finished"],
            }
        )
    oracle = cache / "samplers" / "oracle.jsonl"
    networks = sum(1 for line in oracle.read_text().splitlines() if line) if oracle.is_file() else 0
    summary = {
        "dataset": DATASET,
        "space": SPACE,
        "command": "python benchmarks/sampler_search.py run --cache CACHE",
        "protocol": __doc__.split("Protocol:\n", 1)[1].strip(),
        "signal": f"supernet top-1, {SupernetRecipe().training}",
        "reference": {"latency_ms": REFERENCE_MS, "top1": REFERENCE_TOP1, "floor_ms": FLOOR_MS},
        "budget_ms": BUDGET_MS,
        "every": EVERY,
        "default": DEFAULT_SAMPLER,
        "networks_scored": networks,
        "runs": runs,
    }
    path = summary_path(DATASET, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=None, separators=(",", ":")) + "\n")
    return path


def report_text(figures: dict[str, Any], folder: Path | None = None) -> str:
    if not figures:
        return f"no sampler runs committed for {DATASET}"
    summary = json.loads(summary_path(DATASET, folder).read_text())
    lines = [
        f"## Samplers on {summary['dataset']}: {summary['signal']} against predicted Ascend 310 "
        f"latency ({summary['networks_scored']} networks scored)",
        "",
        f"Hypervolume reference ({summary['reference']['latency_ms']} ms, "
        f"{summary['reference']['top1']} %), normalised by the box from "
        f"{summary['reference']['floor_ms']} ms; best top-1 within {summary['budget_ms']} ms. "
        "Median [quartiles] over seeds.",
        "",
        "| sampler | seeds | HV at 64 | HV at 256 | trials to random's 256-trial HV | "
        "best top-1 within budget at 64 / 256 |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in figures.items():

        def hv(n: int, f: dict[str, Any] = f) -> str:
            if f"hv_at_{n}" not in f:
                return "-"
            low, high = f[f"hv_at_{n}_iqr"]
            return f"{f[f'hv_at_{n}']:.4f} [{low:.4f}, {high:.4f}]"

        reach = f["trials_to_random_256_hv"]
        best = " / ".join(
            "-"
            if f.get(f"best_within_budget_at_{n}") is None
            else f"{f[f'best_within_budget_at_{n}']:.1f}"
            for n in (64, 256)
        )
        label = f"{name} (default)" if f["default"] else name
        lines.append(
            f"| {label} | {f['seeds']} | {hv(64)} | {hv(256)} | "
            f"{'not reached' if reach is None else reach} | {best} |"
        )
    return "\n".join(lines)


# --- command line -------------------------------------------------------------------------------


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    go = commands.add_parser("run", help="run the missing searches (resumable)")
    go.add_argument("--cache", type=Path, required=True, help="the resumable cache folder")
    go.add_argument("--samplers", default="tpe,random,nsga2", help=f"of {', '.join(SAMPLERS)}")
    go.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 per sampler (10)")
    go.add_argument("--trials", type=int, default=256, help="networks per search (256)")
    go.add_argument("--first-seed", type=int, default=0, help="start at this seed (0)")
    cost = commands.add_parser("ask-cost", help="seconds per proposal of each sampler")
    cost.add_argument("--space", default="neonext", help="search space (default neonext)")
    cost.add_argument("--samplers", default="tpe,nsga2,gp,random")
    cost.add_argument("--trials", type=int, default=32, help="proposals per sampler (32)")
    gather = commands.add_parser("collect", help="write the committed summary from the cache")
    gather.add_argument("--cache", type=Path, required=True)
    gather.add_argument("--out", type=Path, help=f"folder (default {DATA})")
    gather.add_argument("--trials", type=int, default=256, help="the runs of this length (256)")
    show = commands.add_parser("report", help="print the figures from the committed summary")
    show.add_argument("--json", action="store_true")
    show.add_argument("--folder", type=Path, help="read the summary here instead")
    args = parser.parse_args(argv)
    if args.command == "run":
        names = [n for n in args.samplers.split(",") if n]
        unknown = sorted(set(names) - set(SAMPLERS))
        if unknown or not names:
            raise UserError(f"--samplers: choose from {', '.join(SAMPLERS)}")
        if args.seeds < 1 or args.trials < EVERY:
            raise UserError(f"--seeds must be at least 1 and --trials at least {EVERY}")
        run(args.cache, names, args.seeds, args.trials, args.first_seed)
    elif args.command == "ask-cost":
        names = [n for n in args.samplers.split(",") if n]
        if not names or set(names) - set(SAMPLERS) or args.trials < 2:
            raise UserError(f"--samplers: choose from {', '.join(SAMPLERS)}; --trials >= 2")
        ask_cost(args.space, names, args.trials)
    elif args.command == "collect":
        print(f"wrote {collect(args.cache, args.out, args.trials)}")
    else:
        figures = sampler_figures(DATASET, args.folder)
        print(json.dumps(figures) if args.json else report_text(figures, args.folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())

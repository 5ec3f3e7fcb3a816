"""The sampler against random: does the search's sampler find better fronts than random draws?

    python benchmarks/sampler_search.py run --cache /work/bench-cache [--samplers tpe,random,nsga2]
        [--seeds 10] [--trials 256] [--signal supernet|synflow]
    python benchmarks/sampler_search.py collect --cache /work/bench-cache [--signal synflow]
    python benchmarks/sampler_search.py report [--json] [--signal synflow]
    python benchmarks/sampler_search.py ask-cost [--space neonext] [--trials 32]
    python benchmarks/sampler_search.py budget --cache /work/bench-cache --budget-ms 0.37
        [--samplers tpe,gp,random] [--seeds 3] [--trials 64] [--signal synflow]

`run` fills a resumable cache (one file per finished search; every network it scores kept in
`samplers/oracle.jsonl`, so a search stopped half-way replays its seeded proposals for free);
`collect` writes the committed summary (neonas/bench/data/tiny-digits-samplers.json, and
tiny-digits-samplers-synflow.json for `--signal synflow`); `report`
prints the figures from that file in seconds. `ask-cost` times each sampler's own work per
proposal in the driver (seeded random objective values, no network built or scored).
`budget` runs the searches under a hard latency budget, screened as the searcher screens, and
prints how many asks and refusals each sampler needed (its runs are cached beside the others,
in a folder per budget; nothing is committed). `gp-no-fallback` names GPSampler without the
product's refusal fallback (neonas.search.refusal_fallback), for comparison. `neocell_bench.py report --json` carries the same
figures under "samplers".

Protocol:
- the objective is the search's own Pareto objective (accuracy up, latency down), with
  - accuracy: the supernet signal as `search --supernet` computes it (neonas.supernet.scoring
    SubnetScorer: BatchNorm re-estimated on 256 training images, top-1 on 500 validation
    images), from one supernet of search_spaces/tiny.yaml trained on `digits` with the recipe
    benchmarks/accuracy_signals.py calls uniform4-b32-e30-lr0.002 (30 epochs, seed 0);
    or, with `--signal synflow`, the search's zero-cost default: SynFlow (log10) as a search
    trial without data computes it (neonas.search.trial.zero_cost_signal, run seed 0, one
    seeded weight draw; data-free, so "digits" only names the summary);
  - latency: predicted Ascend 310 latency, batch 1 (`neonas profile --hw ascend`);
  both are deterministic per network, so every search sees the same landscape;
- each search is the product's ask/tell walk without Ray: the sampler of
  neonas.search.study.make_sampler (tpe, nsga2, gp) or Optuna's RandomSampler, seeded
  0..seeds-1, the space's define-by-run suggest, a repeated network told PRUNED and asked
  again as the searcher does; one trial at a time; `trials` distinct networks scored;
- figures, for every search after n trials: the hypervolume of its (latency, score) points
  against the reference point (REFERENCE_MS, the landscape's reference: 50 % top-1, SynFlow
  -1.0), divided by the area of the box from (FLOOR_MS, the landscape's top: 100 %, SynFlow
  2.0) to it (so 1.0 would be a perfect network at FLOOR_MS); and the best score among
  networks within BUDGET_MS (about the median predicted latency of the digits
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accuracy_signals import SPACE, SupernetRecipe, make_data, train_supernets
from exit_status import reports_user_errors
from neocell_bench import _now, _write, code_commit, machine, predicted_latency

from neonas.bench import metrics
from neonas.bench.samplers import landscape_suffix, sampler_figures, summary_path
from neonas.bench.table import DATA
from neonas.errors import UserError
from neonas.search.settings import sampler_for
from neonas.signals import SUPERNET, SYNFLOW

DATASET = "digits"
SAMPLERS = ("tpe", "random", "nsga2", "gp", "gp-no-fallback")
# The sampler `search --supernet` takes by default (neonas.search.settings.sampler_for).
DEFAULT_SAMPLER = sampler_for(SUPERNET)
REFERENCE_MS = 0.60  # slower than every network of the digits table (0.36-0.56 ms)
FLOOR_MS = 0.30
BUDGET_MS = 0.48
EVERY = 4  # the committed curves keep every 4th trial
MAX_ASKS_PER_TRIAL = 50  # a sampler that repeats itself this much is stopped


@dataclass(frozen=True)
class Landscape:
    """What the searches optimise besides latency: the signal, and its hypervolume box."""

    name: str  # `run --signal`
    label: str  # the summary's "signal"
    reference: float  # below every network's score: the hypervolume's reference point
    top: float  # the box's top (a perfect network), for the normalised hypervolume
    default: str  # the sampler `search` takes for this signal

    def box(self) -> float:
        return (REFERENCE_MS - FLOOR_MS) * (self.top - self.reference)


LANDSCAPES = {
    "supernet": Landscape(
        "supernet", f"supernet top-1, {SupernetRecipe().training}", 50.0, 100.0, DEFAULT_SAMPLER
    ),
    # log10 SynFlow of the digits table's networks spans -0.40 to +1.38.
    "synflow": Landscape(
        "synflow", "SynFlow (log10), as `search` scores it (run seed 0)", -1.0, 2.0,
        sampler_for(SYNFLOW),
    ),
}  # fmt: skip


# --- the landscape ------------------------------------------------------------------------------


class Oracle:
    """A network's score on the landscape and its predicted latency, each computed once per
    network and kept in a JSON Lines file (appended as they come, so a killed run loses
    nothing). The supernet landscape scores by inherited weights (SubnetScorer); the SynFlow
    one as `search --signal synflow` scores a trial (its seeded weights, run seed 0)."""

    def __init__(self, cache: Path, landscape: str = "supernet") -> None:
        self.scorer: Any = None
        if landscape == "supernet":
            from neonas.supernet.scoring import SubnetScorer

            recipe = SupernetRecipe()
            data = make_data(cache, DATASET)
            train_supernets(cache, [DATASET], recipe)
            checkpoint = cache / recipe.training / DATASET / "last.pt"
            self.scorer = SubnetScorer(checkpoint, data, seed=0)
        self.path = oracle_path(cache, landscape)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.known: dict[str, tuple[float, float]] = {}
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    entry = json.loads(line)
                    self.known[entry["key"]] = (entry["latency_ms"], entry["top1"])
        self.computed = 0

    def __call__(self, key: str, config: Any) -> tuple[float, float]:
        """(latency ms, score) of `config`, whose canonical key is `key`."""
        if key in self.known:
            return self.known[key]
        start = time.perf_counter()
        latency = predicted_latency(config)
        score = self.scorer.score(config) if self.scorer is not None else synflow(config, key)
        entry = {"key": key, "latency_ms": latency, "top1": score}
        entry["seconds"] = round(time.perf_counter() - start, 3)
        with self.path.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")
        self.known[key] = (latency, score)
        self.computed += 1
        return latency, score


def oracle_path(cache: Path, landscape: str) -> Path:
    return cache / "samplers" / f"oracle{landscape_suffix(landscape)}.jsonl"


def synflow(config: Any, key: str) -> float:
    """SynFlow as a search trial without data computes it (neonas.search.trial.zero_cost_signal,
    the search's defaults, run seed 0: data-free, so the data set plays no part); a network
    without synaptic flow (-inf) scores the landscape's reference, adding no hypervolume."""
    import math

    from neonas.models import build_model
    from neonas.search.settings import EvalSettings
    from neonas.search.trial import zero_cost_signal

    settings = EvalSettings(signal=SYNFLOW, seed=0)
    shape = (config.in_chans, config.input_size, config.input_size)
    classes = config.num_classes
    build = lambda: build_model(config)  # noqa: E731
    score = zero_cost_signal(build, key, shape, classes, settings)["accuracy"]
    return score if math.isfinite(score) else LANDSCAPES["synflow"].reference


# --- one search ---------------------------------------------------------------------------------


def sampler_names(text: str) -> list[str]:
    """The samplers of a comma-separated `--samplers`; UserError for none or an unknown one."""
    names = [name for name in text.split(",") if name]
    if not names or set(names) - set(SAMPLERS):
        raise UserError(f"--samplers: choose from {', '.join(SAMPLERS)}")
    return names


def make_sampler(name: str, seed: int, trials: int) -> Any:
    """The product's samplers by their `search --sampler` names (tpe, nsga2, gp), Optuna's
    random sampler, and gp-no-fallback: the product's GP before 2026-12-04, without the
    refusal fallback (neonas.search.refusal_fallback), kept for comparison."""
    import optuna

    from neonas.search.study import make_sampler as product_sampler

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp-no-fallback":
        return product_sampler("gp", seed, trials).model
    return product_sampler(name, seed, trials)


def search(
    name: str, seed: int, trials: int, oracle: Oracle, budget_ms: float | None = None
) -> dict[str, Any]:
    """One seeded search of `trials` distinct networks; its (latency, top-1) points in order.

    With `budget_ms`, a hard latency budget screened as the searcher screens a point: one over
    it is told PRUNED with its constraint (latency - budget) and not counted as a trial; the
    trials carry their (non-positive) constraint too. `refused` counts those points and
    `longest_refusal_run` the most points in a row that could not run (duplicates included),
    the count the searcher stops a run at (neonas.search.searcher.MAX_REFUSED_IN_A_ROW)."""
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
    asks = refused = in_a_row = longest = 0
    start = time.perf_counter()
    while len(points) < trials and asks < MAX_ASKS_PER_TRIAL * trials:
        trial = study.ask()
        asks += 1
        if budget_ms is not None and asks % 50 == 0:  # a budget can make a search long
            print(
                f"  {name} seed {seed}: {asks} asks, {len(points)} trials, {refused} over budget",
                file=sys.stderr,
                flush=True,
            )
        config = space.suggest(trial)
        key = space.key(config)
        runs = key not in seen  # the searcher remembers only networks that ran
        if runs:
            latency, top1 = oracle(key, config)
            if budget_ms is not None:
                trial.set_constraint("latency", latency - budget_ms)
                runs = latency <= budget_ms
                refused += not runs
        if not runs:  # a repeated network or one over budget: told PRUNED, asked again
            study.tell(trial, state=TrialState.PRUNED)
            in_a_row += 1
            longest = max(longest, in_a_row)
            continue
        seen.add(key)
        in_a_row = 0
        study.tell(trial, objective_values({"accuracy": top1, "latency_ms": latency}, "pareto"))
        points.append([round(latency, 5), round(top1, 3)])
    budget = {} if budget_ms is None else {"budget_ms": budget_ms, "refused": refused}
    return {
        "sampler": name,
        "seed": seed,
        "points": points,
        "asks": asks,
        **budget,
        "longest_refusal_run": longest,
        "seconds": round(time.perf_counter() - start, 1),
        "commit": code_commit(),
        "machine": machine("cpu"),
        "finished": _now(),
    }


def runs_folder(cache: Path, landscape: str = "supernet") -> Path:
    """Where the finished searches on `landscape` are kept."""
    return cache / "samplers" / f"runs{landscape_suffix(landscape)}"


def run_path(
    cache: Path,
    name: str,
    seed: int,
    trials: int,
    landscape: str = "supernet",
    budget_ms: float | None = None,
) -> Path:
    """One finished search's file; the searches under a hard budget have a folder per budget."""
    folder = runs_folder(cache, landscape)
    if budget_ms is not None:
        folder = folder / f"budget-{budget_ms:g}ms"
    return folder / f"{name}-t{trials}-s{seed}.json"


def run(
    cache: Path,
    names: list[str],
    seeds: int,
    trials: int,
    first_seed: int = 0,
    landscape: str = "supernet",
) -> None:
    """Every missing search, seed-major so that each sampler's seeds grow together; from
    `first_seed`, so that a second process can take later seeds."""
    import torch

    torch.set_num_threads(1)
    oracle = Oracle(cache, landscape)
    started = time.perf_counter()
    for seed in range(first_seed, seeds):
        for name in names:
            path = run_path(cache, name, seed, trials, landscape)
            if path.is_file():
                continue
            before = oracle.computed
            result = search(name, seed, trials, oracle)
            _write(path, result)
            curve = hypervolume_curve(result["points"], LANDSCAPES[landscape])
            print(
                f"[{time.perf_counter() - started:7.0f} s] {name} seed {seed}: hypervolume "
                f"{curve[-1]:.4f} after {len(result['points'])} trials ({result['asks']} asks, "
                f"{oracle.computed - before} new networks, {result['seconds']:.0f} s)",
                flush=True,
            )


def budget_runs(
    cache: Path, names: list[str], seeds: int, trials: int, budget_ms: float, landscape: str
) -> dict[str, list[dict[str, Any]]]:
    """Every search under a hard latency budget (resumable: each finished one is a file), and
    the table of what the budget cost each sampler."""
    import torch

    torch.set_num_threads(1)
    oracle = Oracle(cache, landscape)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for seed in range(seeds):
        for name in names:
            path = run_path(cache, name, seed, trials, landscape, budget_ms)
            if not path.is_file():
                _write(path, search(name, seed, trials, oracle, budget_ms))
            result = json.loads(path.read_text())
            results[name].append(result)
            print(
                f"{name} seed {seed}: {len(result['points'])} trials in {result['asks']} asks, "
                f"{result['refused']} over budget, at most {result['longest_refusal_run']} "
                f"in a row, {result['seconds']:.0f} s",
                flush=True,
            )
    print(budget_text(results, trials, budget_ms, landscape))
    return results


def budget_text(
    results: dict[str, list[dict[str, Any]]], trials: int, budget_ms: float, landscape: str
) -> str:
    """Per sampler, medians over seeds: asks per trial, refusals, the longest run of points
    that could not run, how many searches the searcher would have stopped, the best score."""
    from neonas.search.searcher import MAX_REFUSED_IN_A_ROW

    lines = [
        f"{trials} trials within {budget_ms:g} ms predicted latency, on {landscape}; "
        f"medians over seeds (range); a search stops at {MAX_REFUSED_IN_A_ROW} in a row",
        "",
        "| sampler | seeds | asks | over budget | longest run refused | would stop | best |",
        "|---|---|---|---|---|---|---|",
    ]

    def cell(values: list[float], digits: int = 0) -> str:
        median = statistics.median(values)
        return f"{median:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"

    for name, runs in results.items():
        best = [max(p[1] for p in r["points"]) for r in runs if r["points"]]
        stops = sum(r["longest_refusal_run"] >= MAX_REFUSED_IN_A_ROW for r in runs)
        lines.append(
            f"| {name} | {len(runs)} | {cell([r['asks'] for r in runs])} "
            f"| {cell([r['refused'] for r in runs])} "
            f"| {cell([r['longest_refusal_run'] for r in runs])} | {stops} "
            f"| {cell(best, 3) if best else '-'} |"
        )
    return "\n".join(lines)


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


def hypervolume_curve(
    points: list[list[float]], landscape: Landscape = LANDSCAPES["supernet"]
) -> list[float]:
    """The normalised hypervolume after each trial."""
    box = landscape.box()
    curve, front = [], []
    for latency, score in points:
        front.append((latency, score))
        hv = metrics.hypervolume_2d(front, (REFERENCE_MS, landscape.reference))
        curve.append(round(hv / box, 5))
    return curve


def best_within_budget_curve(points: list[list[float]]) -> list[float | None]:
    """The best score within BUDGET_MS after each trial (None until one is found)."""
    curve: list[float | None] = []
    best: float | None = None
    for latency, top1 in points:
        if latency <= BUDGET_MS and (best is None or top1 > best):
            best = top1
        curve.append(best)
    return curve


def collect(
    cache: Path, out: Path | None = None, trials: int = 256, landscape: str = "supernet"
) -> Path:
    """Write the committed summary: each finished search of `trials` trials on `landscape`,
    its curves kept every EVERY trials."""
    scape = LANDSCAPES[landscape]
    runs = []
    for path in sorted(runs_folder(cache, landscape).glob(f"*-t{trials}-s*.json")):
        result = json.loads(path.read_text())
        points = result["points"]
        keep = list(range(EVERY - 1, len(points), EVERY))
        hv, best = hypervolume_curve(points, scape), best_within_budget_curve(points)
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
    oracle = oracle_path(cache, landscape)
    networks = sum(1 for line in oracle.read_text().splitlines() if line) if oracle.is_file() else 0
    summary = {
        "dataset": DATASET,
        "space": SPACE,
        "command": f"python benchmarks/sampler_search.py run --cache CACHE --signal {landscape}",
        "protocol": __doc__.split("Protocol:\n", 1)[1].strip(),
        "signal": scape.label,
        "reference": {
            "latency_ms": REFERENCE_MS,
            "score": scape.reference,
            "top": scape.top,
            "floor_ms": FLOOR_MS,
        },
        "budget_ms": BUDGET_MS,
        "every": EVERY,
        "default": scape.default,
        "networks_scored": networks,
        "runs": runs,
    }
    path = summary_path(DATASET, out, landscape=landscape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=None, separators=(",", ":")) + "\n")
    return path


def report_text(
    figures: dict[str, Any], folder: Path | None = None, landscape: str = "supernet"
) -> str:
    if not figures:
        return f"no sampler runs committed for {DATASET} on {landscape}"
    summary = json.loads(summary_path(DATASET, folder, landscape=landscape).read_text())
    reference = summary["reference"]
    score = reference.get("score", reference.get("top1"))  # "top1": summaries before 2026-12-04
    unit, what = (" %", "top-1") if landscape == "supernet" else ("", "score")
    lines = [
        f"## Samplers on {summary['dataset']}: {summary['signal']} against predicted Ascend 310 "
        f"latency ({summary['networks_scored']} networks scored)",
        "",
        f"Hypervolume reference ({reference['latency_ms']} ms, {score}{unit}), normalised by "
        f"the box from {reference['floor_ms']} ms; best {what} within {summary['budget_ms']} ms. "
        "Median [quartiles] over seeds.",
        "",
        "| sampler | seeds | HV at 64 | HV at 256 | trials to random's 256-trial HV | "
        f"best {what} within budget at 64 / 256 |",
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
            else f"{f[f'best_within_budget_at_{n}']:.{1 if landscape == 'supernet' else 3}f}"
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
    landscape = {
        "choices": sorted(LANDSCAPES),
        "default": "supernet",
        "help": "what the searches optimise beside latency (default supernet)",
    }
    go.add_argument("--signal", **landscape)
    cost = commands.add_parser("ask-cost", help="seconds per proposal of each sampler")
    cost.add_argument("--space", default="neonext", help="search space (default neonext)")
    cost.add_argument("--samplers", default="tpe,nsga2,gp,random")
    cost.add_argument("--trials", type=int, default=32, help="proposals per sampler (32)")
    hard = commands.add_parser("budget", help="searches under a hard latency budget")
    hard.add_argument("--cache", type=Path, required=True, help="the resumable cache folder")
    hard.add_argument("--budget-ms", type=float, required=True, help="predicted latency budget")
    hard.add_argument("--samplers", default="tpe,gp,random", help=f"of {', '.join(SAMPLERS)}")
    hard.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per sampler (3)")
    hard.add_argument("--trials", type=int, default=64, help="networks per search (64)")
    hard.add_argument("--signal", **landscape)
    gather = commands.add_parser("collect", help="write the committed summary from the cache")
    gather.add_argument("--cache", type=Path, required=True)
    gather.add_argument("--out", type=Path, help=f"folder (default {DATA})")
    gather.add_argument("--trials", type=int, default=256, help="the runs of this length (256)")
    gather.add_argument("--signal", **landscape)
    show = commands.add_parser("report", help="print the figures from the committed summary")
    show.add_argument("--json", action="store_true")
    show.add_argument("--folder", type=Path, help="read the summary here instead")
    show.add_argument("--signal", **landscape)
    args = parser.parse_args(argv)
    if args.command == "run":
        names = sampler_names(args.samplers)
        if args.seeds < 1 or args.trials < EVERY:
            raise UserError(f"--seeds must be at least 1 and --trials at least {EVERY}")
        run(args.cache, names, args.seeds, args.trials, args.first_seed, args.signal)
    elif args.command == "budget":
        names = sampler_names(args.samplers)
        if args.seeds < 1 or args.trials < 1:
            raise UserError("--seeds and --trials must be at least 1")
        if args.budget_ms <= 0:
            raise UserError("--budget-ms must be positive")
        budget_runs(args.cache, names, args.seeds, args.trials, args.budget_ms, args.signal)
    elif args.command == "ask-cost":
        names = sampler_names(args.samplers)
        if args.trials < 2:
            raise UserError("--trials must be at least 2")
        ask_cost(args.space, names, args.trials)
    elif args.command == "collect":
        print(f"wrote {collect(args.cache, args.out, args.trials, args.signal)}")
    else:
        figures = sampler_figures(DATASET, args.folder, landscape=args.signal)
        print(json.dumps(figures) if args.json else report_text(figures, args.folder, args.signal))
    return 0


if __name__ == "__main__":
    sys.exit(main())

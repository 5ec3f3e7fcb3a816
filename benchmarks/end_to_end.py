"""End to end: networks found by `search --supernet`, retrained, against random ones and the hand design.

    python benchmarks/end_to_end.py run --cache /work/bench-cache [--dataset digits] \
        [--space tiny-wide] [--few-shot] [--objective scalar] [--shard K/N]
    python benchmarks/end_to_end.py collect --cache /work/bench-cache [--space tiny-wide] [--few-shot] \
        [--objective scalar]
    python benchmarks/end_to_end.py report [--json]

`run` is resumable step by step (each step leaves a file in CACHE/e2e/DATASET/ and is skipped
once it is there; the search resumes with `search --resume`). With `--shard K/N`, N processes
share the retraining (shard 0 also runs the search; the others retrain the hand design and the
random draws at once and their share of the searched networks when run again after the
search). `collect` writes the committed
summary (neonas/bench/data/LABEL-DATASET-end-to-end.json, LABEL the space, with -few-shot
for a few-shot supernet); `report` prints it in seconds, and `neocell_bench.py report --json`
carries it under "end_to_end" (keyed DATASET for the table's space, tiny, with the whole
supernet, and "DATASET, LABEL" for the others).

`--space tiny-wide` (search_spaces/tiny-wide.yaml) runs the same protocol in the tiny space
widened to hold the hand design (widths up to 48-96-192, 7x7 matrices in the first two
stages), with a supernet of that space trained with the same recipe; it has no table, so no
context row. `--few-shot` scores the search's trials with the supernet's few-shot parts
(`python cli.py supernet few-shot CKPT`, one part per transition plan, 3 epochs each) instead
of the whole supernet; its cost counts the parts' training, which `neocell_bench.py supernet
--few-shot 3` shares (same folder). The random and hand networks do not depend on the
supernet: a run reuses the retraining of the same networks and seeds from another run of the
same space when that exists, and the hand design's from any run of the data set (same code,
same seeds: the same numbers). `--objective scalar` searches for the signal alone under the
hard budget (`search --objective scalar --latency-weight 0`) instead of the default front of
signal against latency, which spends most trials on the front's fast end (label -scalar).

Protocol, per data set of NeoCell-Bench with a supernet (digits, shapes-large, shapes-xl):
- latency budget: BUDGET_MS of predicted Ascend 310 latency at batch 1, the median of the
  digits table (shapes-large's 64 networks: 0.46 ms; shapes-xl holds the same networks); one
  budget for every data set, so one hand design serves all;
- searched: `python cli.py search --space SPACE --hw ascend --latency-budget BUDGET --supernet
  CKPT --data DATA --seed 0` with every other option at its default (sampler, trials), on the
  supernet benchmarks/accuracy_signals.py trains (uniform4-b32-e30-lr0.002, seed 0), then
  `python cli.py export RUN --by accuracy --top 3`: the best 3 by the supernet signal;
- random: the first 3 distinct networks of the space drawn as the search draws them
  (SearchSpace.sample, seed RANDOM_SEED) whose predicted latency is within the budget;
- hand: configs/neonext_hand_32px.yaml, NeoNeXt's own plan scaled to the budget;
- every network retrained from scratch with the table's recipe and seeds (the ground truth of
  NeoCell-Bench: benchmarks/accuracy_signals.py truth_job, seeds 0 and 1), so its top-1 is
  comparable with every network of the table;
- figures per group: mean top-1 over its networks' seed means, and the standard error of
  that mean (over the networks for searched and random, n = 3; over the 2 seeds for the one
  hand network); predicted latency, the mean over the group; the search's cost: supernet
  training plus the search, wall-clock seconds on this machine;
- context: "table_sampled_within_budget", every network of the NeoCell-Bench table drawn as the
  search draws whose predicted latency is within the budget (same recipe and seeds), a larger
  sample of random networks than the 3 retrained here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accuracy_signals import (
    PROTOCOLS,
    SPACE,
    SupernetRecipe,
    few_shot_folder,
    make_data,
    supernet_folder,
    train_supernets,
    truth_job,
)
from exit_status import reports_user_errors
from neocell_bench import (
    _now,
    _write,
    code_commit,
    for_data,
    machine,
    parse_shard,
    predicted_latency,
)

from neonas.bench.end_to_end import (
    DATASETS,
    EARLIER_VAL_IMAGES,
    GROUPS,
    end_to_end_results,
    summary_path,
)
from neonas.errors import UserError
from neonas.train.options import FEW_SHOT_EPOCHS

ROOT = Path(__file__).resolve().parent.parent
BUDGET_MS = 0.48  # the median predicted latency of the digits table is 0.48 ms
RANDOM_SEED = 0
PER_GROUP = 3
SEEDS = (0, 1)
HAND = ROOT / "configs" / "neonext_hand_32px.yaml"
SPACES = (SPACE, "tiny-wide")
OBJECTIVES = ("pareto", "scalar")


@dataclass(frozen=True)
class Setup:
    """Where the search runs (the space) and what scores its trials (the supernet, or its
    few-shot parts)."""

    space: str = SPACE
    few_shot: bool = False
    # "pareto": the search's default front of signal against latency; "scalar": the signal
    # alone under the hard budget (`--objective scalar --latency-weight 0`)
    objective: str = "pareto"

    @property
    def label(self) -> str:
        """The space, with -few-shot and -scalar: names the cache folder and the summary."""
        return (
            self.space
            + ("-few-shot" if self.few_shot else "")
            + ("-scalar" if self.objective == "scalar" else "")
        )

    def objective_args(self) -> list[str]:
        """What `search` is told of the objective: nothing for its default Pareto front; for
        "scalar", the reward acc * (lat / T)^w with w = 0: the signal alone, the budget hard."""
        return (
            ["--objective", "scalar", "--latency-weight", "0"] if self.objective == "scalar" else []
        )


def folder_of(cache: Path, dataset: str, setup: Setup = Setup()) -> Path:
    return cache / "e2e" / (dataset if setup.label == SPACE else f"{dataset}-{setup.label}")


def search_file(cache: Path, dataset: str, setup: Setup) -> Path:
    """The record a finished search step leaves: its exported configs, seconds and settings."""
    return folder_of(cache, dataset, setup) / "search.json"


def _cli(*args: str) -> None:
    """One neonas command, as a user runs it; its output goes to this script's. On one torch
    thread, as the rest of the benchmark: training on two threads beside the other shards'
    processes oversubscribed the 2 cores (a few-shot part made no epoch in 30 minutes)."""
    command = [sys.executable, str(ROOT / "cli.py"), *args]
    print("$ OMP_NUM_THREADS=1 " + " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})


def search_step(cache: Path, dataset: str, setup: Setup) -> list[dict[str, Any]]:
    """The supernet (and its few-shot parts), the search and its export; the best PER_GROUP
    networks."""
    from neonas.arch import ArchConfig

    folder = folder_of(cache, dataset, setup)
    done = search_file(cache, dataset, setup)
    if not done.is_file():
        recipe = SupernetRecipe()
        data = make_data(cache, dataset)
        space = setup.space
        train_supernets(cache, [dataset], recipe, space)
        supernet_dir = supernet_folder(cache, dataset, recipe, space)
        supernet_seconds = json.loads((supernet_dir / "train.json").read_text())["seconds"]
        scorer = scorer_path(cache, dataset, setup)
        if setup.few_shot:
            if not (scorer / "train.json").is_file():
                start = time.perf_counter()
                _cli("supernet", "few-shot", str(supernet_dir / "last.pt"), "--output", str(scorer),
                     "--workers", "0", "--no-progress")  # fmt: skip
                record = {"seconds": time.perf_counter() - start}
                (scorer / "train.json").write_text(json.dumps(record))
            supernet_seconds += json.loads((scorer / "train.json").read_text())["seconds"]
        name, runs = "search", folder / "runs"
        start = time.perf_counter()
        resume = ["--resume", name] if (runs / name).is_dir() else ["--name", name]
        _cli(
            "search",
            "--space",
            space,
            "--hw",
            "ascend",
            "--latency-budget",
            f"{BUDGET_MS}ms",
            "--supernet",
            str(scorer),
            "--data",
            str(data),
            "--seed",
            "0",
            "--results-dir",
            str(runs),
            *setup.objective_args(),
            *resume,
        )
        search_seconds = time.perf_counter() - start
        exported = folder / "searched"
        _cli(
            "export",
            str(runs / name),
            "--by",
            "accuracy",
            "--top",
            str(PER_GROUP),
            "--out",
            str(exported),
        )
        configs = [ArchConfig.load(p).to_dict() for p in sorted(exported.glob("*.yaml"))]
        settings = json.loads((runs / name / "run.json").read_text())["settings"]
        record = {
            "val_images": settings["eval"]["max_val_images"],
            "configs": configs,
            "supernet_seconds": supernet_seconds,
            "supernet": recipe.training + ("-few-shot" if setup.few_shot else ""),
            "search_seconds": search_seconds,
            "finished": _now(),
        }
        _write(done, record)
    return json.loads(done.read_text())["configs"]


def scorer_path(cache: Path, dataset: str, setup: Setup) -> Path:
    """What scores the search's trials: the supernet's last.pt, or its few-shot parts' folder."""
    recipe = SupernetRecipe()
    if setup.few_shot:
        return few_shot_folder(cache, dataset, recipe, FEW_SHOT_EPOCHS, setup.space)
    return supernet_folder(cache, dataset, recipe, setup.space) / "last.pt"


def signals_file(cache: Path, dataset: str, setup: Setup) -> Path:
    return folder_of(cache, dataset, setup) / "signals.json"


def signal_step(
    cache: Path, dataset: str, setup: Setup, networks: dict[str, list[dict[str, Any]]]
) -> dict[str, list[float | None]]:
    """Every network to retrain scored as the search scored its trials (the same supernet or
    parts, images and seed): group -> one score per network, None for a network outside the
    space (the hand design beside the tiny space). Set beside the retrained top-1, it says
    whether the signal or the search missed: whether the signal ranks the hand design above
    or below the networks it picked."""
    path = signals_file(cache, dataset, setup)
    if not path.is_file():
        from neonas.arch import ArchConfig
        from neonas.space import load_space
        from neonas.supernet.scoring import SubnetScorer

        space = load_space(setup.space)
        data = make_data(cache, dataset)
        search = json.loads(search_file(cache, dataset, setup).read_text())
        val_images = search.get("val_images", EARLIER_VAL_IMAGES)  # as `collect` reads it
        scorer = SubnetScorer(
            scorer_path(cache, dataset, setup), data, max_val_images=val_images, seed=0
        )
        scores: dict[str, list[float | None]] = {}
        for group, configs in networks.items():
            scores[group] = []
            for raw in configs:
                inside = space.contains(ArchConfig.from_dict(raw))  # as the space writes it
                config = ArchConfig.from_dict(for_data(raw, data))
                scores[group].append(scorer.score(config) if inside else None)
        _write(path, scores)
    return json.loads(path.read_text())


def signals_text(scores: dict[str, list[float | None]]) -> str:
    """One line: each group's scores by the search's signal, and their mean."""
    parts = []
    for group, values in scores.items():
        known = [value for value in values if value is not None]
        mean = f"{sum(known) / len(known):.1f}" if known else "-"
        shown = ", ".join("-" if value is None else f"{value:.2f}" for value in values)
        parts.append(f"{group} {mean} ({shown})")
    return "the search's signal: " + "; ".join(parts)


def random_networks(
    count: int, budget_ms: float, seed: int = RANDOM_SEED, space_name: str = SPACE
) -> list[dict[str, Any]]:
    """The first `count` distinct networks drawn as the search draws them within the budget."""
    from neonas.space import load_space

    space = load_space(space_name)
    rng = random.Random(seed)
    found, keys = [], set()
    for _ in range(10_000):
        config = space.sample(rng)
        key = space.key(config)
        if key in keys:
            continue
        keys.add(key)
        if predicted_latency(config) <= budget_ms:
            found.append(config.model_copy(update={"name": f"random{len(found)}"}).to_dict())
            if len(found) == count:
                return found
    raise UserError(f"fewer than {count} networks of {space_name} within {budget_ms} ms")


def groups(
    cache: Path, dataset: str, setup: Setup = Setup(), search: bool = True
) -> dict[str, list[dict[str, Any]]]:
    """The networks to retrain, by group: the hand design and the random draws first (they do
    not wait for a search), then the searched ones. Without `search`, the searched group is
    there only once the search's step has finished (another process runs it)."""
    from neonas.arch import ArchConfig

    networks = {
        "hand": [ArchConfig.load(HAND).to_dict()],
        "random": random_networks(PER_GROUP, BUDGET_MS, space_name=setup.space),
    }
    if search or search_file(cache, dataset, setup).is_file():
        networks["searched"] = search_step(cache, dataset, setup)
    return networks


def truth_file(
    cache: Path, dataset: str, group: str, index: int, seed: int, setup: Setup = Setup()
) -> Path:
    return folder_of(cache, dataset, setup) / "truth" / f"{group}{index}-seed{seed}.json"


def retrained_elsewhere(
    cache: Path, dataset: str, group: str, index: int, seed: int, setup: Setup
) -> Path | None:
    """The same network and seed already retrained by another run of this data set: the hand
    design by any run, a random draw by another run of the same space (the draws depend on
    the space only). None for searched networks, which are each run's own."""
    if group == "searched":
        return None
    spaces = SPACES if group == "hand" else (setup.space,)
    others = [
        Setup(space, few_shot, objective)
        for space in spaces
        for few_shot in (False, True)
        for objective in OBJECTIVES
    ]
    for other in others:
        path = truth_file(cache, dataset, group, index, seed, other)
        if other != setup and path.is_file():
            return path
    return None


def run(cache: Path, dataset: str, setup: Setup = Setup(), shard: tuple[int, int] = (0, 1)) -> None:
    """Every missing step: search and export, the random draws, each retraining.

    `shard` (k, n): n processes share the retraining, this one taking every n-th network and
    seed from the k-th on; only shard 0 runs the search, and the others take their share of
    the searched networks once it has finished (run them again then)."""
    import torch

    from neonas.arch import ArchConfig

    torch.set_num_threads(1)
    data = make_data(cache, dataset)
    k, n = shard
    networks = groups(cache, dataset, setup, search=k == 0)
    jobs = [
        (group, index, config, seed)
        for group, configs in networks.items()
        for index, config in enumerate(configs)
        for seed in SEEDS
    ]
    if k == 0:
        print(signals_text(signal_step(cache, dataset, setup, networks)), flush=True)
    for group, index, config, seed in jobs[k::n]:
        path = truth_file(cache, dataset, group, index, seed, setup)
        if path.is_file():
            continue
        shared = retrained_elsewhere(cache, dataset, group, index, seed, setup)
        if shared is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(shared.read_text())  # the same network and seed, retrained
            continue
        config = for_data(config, data)
        latency = predicted_latency(ArchConfig.from_dict(config))
        result = truth_job(config, data, PROTOCOLS[dataset], seed)
        result.update(
            group=group,
            index=index,
            seed=seed,
            config=config,
            latency_ms=latency,
            commit=code_commit(),
            machine=machine("cpu"),
            finished=_now(),
        )
        _write(path, result)
        print(
            f"{dataset} {group} {index} ({latency:.3f} ms) seed {seed}: "
            f"top-1 {result['top1']:.1f} % ({result['seconds']:.0f} s)",
            flush=True,
        )
    if "searched" not in networks:
        print(f"shard {k}/{n}: the search has not finished; run this shard again when it has")


def collect(cache: Path, dataset: str, out: Path | None = None, setup: Setup = Setup()) -> Path:
    """The committed summary: every retrained network's top-1 per seed and latency."""
    folder = folder_of(cache, dataset, setup)
    search = json.loads(search_file(cache, dataset, setup).read_text())
    networks: dict[tuple[str, int], dict[str, Any]] = {}
    for path in sorted((folder / "truth").glob("*.json")):
        result = json.loads(path.read_text())
        entry = networks.setdefault(
            (result["group"], result["index"]),
            {
                "group": result["group"],
                "index": result["index"],
                "latency_ms": result["latency_ms"],
                "config": result["config"],
                "top1": {},
                "seconds": {},
            },
        )
        entry["top1"][str(result["seed"])] = result["top1"]
        entry["seconds"][str(result["seed"])] = round(result["seconds"], 1)
    signals_path = signals_file(cache, dataset, setup)
    if signals_path.is_file():
        for group, scores in json.loads(signals_path.read_text()).items():
            for index, score in enumerate(scores):
                if (group, index) in networks:
                    networks[group, index]["signal"] = score
    summary = {
        "dataset": dataset,
        "space": setup.space,
        "supernet": search.get("supernet"),
        "command": "python benchmarks/end_to_end.py run --cache CACHE"
        + ("" if dataset == "digits" else f" --dataset {dataset}")
        + ("" if setup.space == SPACE else f" --space {setup.space}")
        + (" --few-shot" if setup.few_shot else "")
        + (" --objective scalar" if setup.objective == "scalar" else ""),
        "protocol": __doc__.split("Protocol, ", 1)[1].strip(),
        "budget_ms": BUDGET_MS,
        "seeds": list(SEEDS),
        "val_images": search.get("val_images", EARLIER_VAL_IMAGES),
        "search_cost_seconds": round(search["supernet_seconds"] + search["search_seconds"], 1),
        "supernet_seconds": round(search["supernet_seconds"], 1),
        "search_seconds": round(search["search_seconds"], 1),
        "networks": sorted(networks.values(), key=lambda e: (GROUPS.index(e["group"]), e["index"])),
    }
    path = summary_path(dataset, out, setup.label)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, separators=(",", ":")) + "\n")
    return path


def report_text(figures: dict[str, Any]) -> str:
    if not figures:
        return "no end-to-end results committed"
    lines = []
    for dataset, entry in figures.items():
        lines += [
            f"## {dataset} (space {entry['space']}, scored by {entry['supernet']} on "
            f"{entry['val_images']} validation images): predicted "
            f"Ascend 310 latency budget {entry['budget_ms']} ms; search "
            f"cost {entry['search_cost_seconds']:.0f} s (supernet training and search)",
            "",
            "| networks | n | top-1 % (mean +- SE) | predicted latency ms | search's signal % |",
            "|---|---|---|---|---|",
        ]
        for group in (*GROUPS, "table_sampled_within_budget", "table_best_within_budget"):
            f = entry.get(group)
            if f is None:
                continue
            se = "-" if f["top1_se"] is None or math.isnan(f["top1_se"]) else f"{f['top1_se']:.1f}"
            signal = f"{f['signal_mean']:.1f}" if "signal_mean" in f else "-"
            lines.append(
                f"| {group} | {f['networks']} | {f['top1_mean']:.1f} +- {se} | "
                f"{f['latency_ms']:.3f} | {signal} |"
            )
        lines.append("")
    return "\n".join(lines)


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    go = commands.add_parser("run", help="search, draw and retrain what is missing (resumable)")
    go.add_argument("--cache", type=Path, required=True)
    go.add_argument("--dataset", default="digits", choices=DATASETS)
    go.add_argument("--space", default=SPACE, choices=SPACES, help=f"default {SPACE}")
    go.add_argument("--few-shot", action="store_true", help="score with few-shot parts")
    go.add_argument(
        "--objective",
        default="pareto",
        choices=OBJECTIVES,
        help="pareto (the search's default front) or scalar (the signal alone under the budget)",
    )
    go.add_argument(
        "--shard",
        default="0/1",
        metavar="K/N",
        help="retrain only every N-th network and seed from the K-th: N processes share a "
        "run; shard 0 runs the search",
    )
    gather = commands.add_parser("collect", help="write the committed summary")
    gather.add_argument("--cache", type=Path, required=True)
    gather.add_argument("--dataset", default="digits", choices=DATASETS)
    gather.add_argument("--space", default=SPACE, choices=SPACES, help=f"default {SPACE}")
    gather.add_argument("--few-shot", action="store_true", help="the run scored by few-shot parts")
    gather.add_argument("--objective", default="pareto", choices=OBJECTIVES)
    gather.add_argument("--out", type=Path)
    show = commands.add_parser("report", help="print the committed figures")
    show.add_argument("--json", action="store_true")
    show.add_argument("--folder", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            shard = parse_shard(args.shard)
            run(args.cache, args.dataset, Setup(args.space, args.few_shot, args.objective), shard)
        elif args.command == "collect":
            setup = Setup(args.space, args.few_shot, args.objective)
            print(f"wrote {collect(args.cache, args.dataset, args.out, setup)}")
        else:
            figures = end_to_end_results(args.folder)
            print(json.dumps(figures) if args.json else report_text(figures))
    except subprocess.CalledProcessError as err:
        print(f"error: {' '.join(err.cmd[1:3])} failed (exit {err.returncode})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How much of a NeoCell-Bench table's seed-to-seed disagreement is validation-set noise.

    python benchmarks/ceiling_noise.py --cache /work/bench-cache [--dataset shapes-large] \
        [--networks 6,8] [--fresh-images 16000]
    python benchmarks/ceiling_noise.py --project [--dataset shapes-large] [--target 0.85]
    python benchmarks/ceiling_noise.py --compare shapes-large,shapes-xl [--target 0.85]

The table's ceiling is Kendall tau between the top-1 of seed 0 and seed 1 over its networks.
Two seeds of one network disagree for two reasons: training (another initialisation and data
order) and the finite validation set (each model gets other images wrong). Only the second
shrinks with more validation images, which cost seconds per network, against minutes for
longer training. This script measures the second, to decide which remedy lifts a ceiling.

Protocol, per network of `--networks` (indices into the table):
- seeds 0 and 1 trained exactly as the table's ground truth (accuracy_signals.train_truth),
  one torch thread;
- each trained model scored image by image on the table's validation images (its top-1 is
  printed beside the table's: they must be equal) and on `--fresh-images` new images of the
  same generator (same class layouts, new draws; generated sets only);
- for n images, the image-sampling variance of the seeds' top-1 difference is
  var(c0 - c1) / n, c the per-image 0/1 correctness (points squared, x 10^4);
- the table's observed variance of the seed difference, over all its networks, is the sum of
  that and the training noise. The training noise is the observed minus the image part at the
  table's n; the projection keeps it and scales the image part to the fresh count;
- projected ceiling: 2,000 simulated pairs of seeds, each the table's network means plus
  Gaussian noise of the per-seed variance (half the difference's), Kendall tau between them;
  the same simulation at today's variance is printed beside it as a check on the model (it
  should land near the observed ceiling).

`--compare A,B` trains nothing either: for the networks both committed tables hold (the same
network list, two recipes), each table's ceiling with its bootstrap SE, the variance of the
seed difference, the variance of the network means and their ratio (per-seed noise over the
spread: the ceiling falls as it grows), and the ratio the target needs, simulated from the
first table's means. It is how a recipe change is judged before its table is complete.

`--project` trains nothing: from the committed table alone it prints the simulated ceiling
at the observed variance and the variance of the seed difference that would give `--target`
(bisection over the same simulation), i.e. how much quieter training must become.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from accuracy_signals import PROTOCOLS, make_data, shapes_folder, train_truth
from exit_status import reports_user_errors
from neocell_bench import for_data

from neonas.bench import BenchRow, load_table, metrics
from neonas.errors import UserError

SIMULATIONS = 2000


def correct_per_image(model: Any, data: Path) -> list[int]:
    """1 or 0 per validation image of `data`, in order: the model scored as the table's
    validation scores it (short training's evaluation transform, 32 px)."""
    import torch

    from neonas.train.augment import data_config, eval_transform
    from neonas.train.data import build_val_loader, detect_layout, load_split
    from neonas.train.recipe import get_recipe

    inputs = data_config(model, get_recipe("short", {"image_size": 32}))
    dataset = load_split(detect_layout(data), "val", eval_transform(inputs))
    correct: list[int] = []
    model.eval()
    with torch.no_grad():
        for images, labels in build_val_loader(dataset, batch_size=128, workers=0):
            correct += (model(images).argmax(1) == labels).int().tolist()
    return correct


def difference_variance(first: list[int], second: list[int]) -> float:
    """Image-sampling variance of the two models' top-1 difference, in points squared."""
    diffs = [a - b for a, b in zip(first, second, strict=True)]
    return statistics.pvariance(diffs) / len(diffs) * 100.0**2


def simulated_ceiling(means: list[float], seed_variance: float, runs: int = SIMULATIONS) -> float:
    """Median Kendall tau between two noisy copies of `means` (per-copy variance given)."""
    import random

    rng = random.Random(0)
    sd = seed_variance**0.5
    taus = []
    for _ in range(runs):
        first = [m + rng.gauss(0.0, sd) for m in means]
        second = [m + rng.gauss(0.0, sd) for m in means]
        taus.append(metrics.kendall_tau(first, second))
    return statistics.median(taus)


def seed_difference_variance(rows: list[BenchRow]) -> float:
    """The table's observed variance of seed 0's top-1 minus seed 1's, over its networks."""
    return statistics.pvariance([row.truth[0].top1 - row.truth[1].top1 for row in rows])


def variance_for(means: list[float], target: float) -> float:
    """The variance of the seed difference at which simulated_ceiling reaches `target`."""
    low, high = 0.0, 10.0
    for _ in range(20):
        middle = (low + high) / 2
        if simulated_ceiling(means, middle / 2, runs=400) >= target:
            low = middle
        else:
            high = middle
    return low


def noise_figures(rows: list[BenchRow]) -> dict[str, float]:
    """A table's ceiling (with bootstrap SE) and the two variances that decide it."""
    first, second = [r.truth[0].top1 for r in rows], [r.truth[1].top1 for r in rows]
    difference = seed_difference_variance(rows)
    spread = statistics.pvariance([r.top1 for r in rows])
    return {
        "ceiling": metrics.kendall_tau(first, second),
        "se": metrics.bootstrap_se(first, second),
        "difference": difference,
        "spread": spread,
        "ratio": difference / 2 / spread,  # per-seed noise over the spread of the means
    }


def compare(datasets: list[str], target: float, folder: Path | None = None) -> None:
    """Two recipes' tables side by side on the networks both hold (the same network list).

    The ceiling depends on the per-seed noise relative to the spread of the network means,
    so the ratio is what a recipe change must lower; the ratio a ceiling of `target` needs is
    simulated from the first table's means.
    """
    tables = [{row.index: row for row in load_table(name, folder)} for name in datasets]
    shared = sorted(set.intersection(*(set(t) for t in tables)))
    for index in shared:
        stages = {json.dumps(t[index].config["stages"], sort_keys=True) for t in tables}
        if len(stages) != 1:
            raise UserError(f"network {index} differs between the tables {datasets}")
    if len(shared) < 4:
        raise UserError(f"the tables share {len(shared)} networks; compare needs at least 4")
    print(f"{len(shared)} networks in every table (indices {shared[0]}-{shared[-1]})")
    for name, table in zip(datasets, tables, strict=True):
        figures = noise_figures([table[i] for i in shared])
        print(
            f"{name}: ceiling {figures['ceiling']:+.2f} (SE {figures['se']:.2f}); variance of "
            f"the seed difference {figures['difference']:.3f}, of the network means "
            f"{figures['spread']:.2f}; per-seed noise / spread {figures['ratio']:.4f}"
        )
    means = [tables[0][i].top1 for i in shared]
    spread = statistics.pvariance(means)
    needed = variance_for(means, target) / 2 / spread
    print(f"a ceiling of {target:+.2f} on these networks needs a ratio of {needed:.4f} or less")


def project(dataset: str, target: float) -> None:
    rows = load_table(dataset)
    observed = seed_difference_variance(rows)
    means = [r.top1 for r in rows]
    needed = variance_for(means, target)
    print(
        f"{dataset} ({len(rows)} networks): variance of the seed difference {observed:.3f}, "
        f"simulated ceiling {simulated_ceiling(means, observed / 2):+.2f}; a ceiling of "
        f"{target:+.2f} needs {needed:.3f} ({needed / observed:.0%} of today's)"
    )


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="NeoCell-Bench's cache (to train)")
    parser.add_argument("--project", action="store_true", help="simulate only, train nothing")
    parser.add_argument("--target", type=float, default=0.85, help="--project: ceiling (0.85)")
    parser.add_argument(
        "--dataset", default="shapes-large", help="a generated set with a committed table"
    )
    parser.add_argument(
        "--compare", metavar="A,B", help="tables of two recipes on their shared networks"
    )
    parser.add_argument("--tables", type=Path, help="--compare: tables here, not the committed")
    parser.add_argument("--networks", default="6,8", help="table indices (default 6,8)")
    parser.add_argument("--fresh-images", type=int, default=16000)
    args = parser.parse_args(argv)
    if args.compare:
        compare(args.compare.split(","), args.target, args.tables)
        return 0
    if args.project:
        project(args.dataset, args.target)
        return 0
    if args.cache is None:
        raise UserError("--cache is required to train (or give --project or --compare)")
    if args.dataset not in PROTOCOLS or args.dataset == "digits":
        raise UserError(f"--dataset {args.dataset}: training here needs a generated set")
    import torch

    torch.set_num_threads(1)
    rows = {row.index: row for row in load_table(args.dataset)}
    indices = [int(i) for i in args.networks.split(",")]
    missing = [i for i in indices if i not in rows]
    if missing:
        raise UserError(f"not in the committed {args.dataset} table: {missing}")
    protocol = PROTOCOLS[args.dataset]
    data = make_data(args.cache, args.dataset)
    fresh = shapes_folder(
        args.cache / "data" / f"{args.dataset}-fresh-{args.fresh_images}",
        train=10,
        val=args.fresh_images,
    )
    table_part, fresh_part = [], []
    for index in indices:
        row = rows[index]
        config = for_data(row.config, data)
        scored: dict[str, list[list[int]]] = {"table": [], "fresh": []}
        for result in row.truth:
            model, trained = train_truth(config, data, protocol, result.seed)
            scored["table"].append(correct_per_image(model, data))
            scored["fresh"].append(correct_per_image(model, fresh))
            table_top1 = 100.0 * statistics.fmean(scored["table"][-1])
            fresh_top1 = 100.0 * statistics.fmean(scored["fresh"][-1])
            print(
                f"net{index:03d} seed {result.seed}: top-1 on the table's images {table_top1:.4f} "
                f"(table {result.top1:.4f}, this run {trained['val_top1']:.4f}), on "
                f"{args.fresh_images} fresh images {fresh_top1:.2f}",
                flush=True,
            )
        table_part.append(difference_variance(*scored["table"]))
        fresh_part.append(difference_variance(*scored["fresh"]))
        print(
            f"net{index:03d}: image-sampling variance of the seed difference "
            f"{table_part[-1]:.3f} (n={len(scored['table'][0])}), "
            f"{fresh_part[-1]:.3f} (n={args.fresh_images})",
            flush=True,
        )
    table_rows = list(rows.values())
    observed = seed_difference_variance(table_rows)
    image_now, image_fresh = statistics.fmean(table_part), statistics.fmean(fresh_part)
    training = max(observed - image_now, 0.0)
    means = [r.top1 for r in table_rows]
    ceiling = metrics.kendall_tau([r.truth[0].top1 for r in table_rows],
                                  [r.truth[1].top1 for r in table_rows])  # fmt: skip
    print(
        f"{args.dataset} ({len(table_rows)} networks): observed variance of the seed difference "
        f"{observed:.3f}; image part at the table's n {image_now:.3f} "
        f"({image_now / observed:.0%}); training part {training:.3f}; "
        f"image part at n={args.fresh_images}: {image_fresh:.3f}"
    )
    print(
        f"ceiling: observed {ceiling:+.2f}; simulated at today's variance "
        f"{simulated_ceiling(means, observed / 2):+.2f}; projected with {args.fresh_images} "
        f"validation images {simulated_ceiling(means, (training + image_fresh) / 2):+.2f}; "
        f"with no image noise {simulated_ceiling(means, training / 2):+.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

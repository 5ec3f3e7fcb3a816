"""How well do the zero-cost proxies rank architectures? Kendall tau against short training.

    python benchmarks/proxy_correlation.py [--archs 30] [--epochs 3] [--workers 2] [--json FILE]

Draws `--archs` networks from the tiny space (seeded), scores each with NASWOT and SynFlow as
the search does (32 px, batch 16), and with its parameter and FLOP counts as baselines, then
trains each `--seeds` times with `proxy_train` (the `--data` path of the search: 3 epochs, 2000
training images) on a generated 10-class image set and takes the mean validation top-1. Prints
Kendall's tau-b of every score against that accuracy, and of one seed's accuracy against the
other's (how much the ground truth itself is noise). No download: the images are generated (each class a
smooth random colour layout, shown shifted, flipped, with brightness jitter and noise).
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import random
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np


def make_dataset(
    folder: Path, classes: int = 10, train: int = 2000, val: int = 500, seed: int = 0
) -> Path:
    """A CIFAR-10 python folder (data_batch_1, test_batch) of generated 32x32 images."""
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    # Low-contrast class layouts under heavy noise: short training separates good networks
    # from weak ones instead of solving the task with all of them.
    layouts = 0.5 + 0.3 * (torch.rand(classes, 3, 4, 4, generator=generator) - 0.5)
    prototypes = F.interpolate(layouts, size=32, mode="bilinear")

    def batch(count: int) -> dict:
        labels = torch.randint(classes, (count,), generator=generator)
        images = prototypes[labels].clone()
        for index in range(count):
            dy, dx = torch.randint(-8, 9, (2,), generator=generator).tolist()
            images[index] = torch.roll(images[index], shifts=(dy, dx), dims=(1, 2))
            if torch.rand(1, generator=generator) < 0.5:
                images[index] = images[index].flip(2)
        images = images * (0.6 + 0.8 * torch.rand(count, 1, 1, 1, generator=generator))
        images = images + 0.3 * torch.randn(images.shape, generator=generator)
        data = (images.clamp(0, 1) * 255).byte().reshape(count, -1).numpy()
        return {"data": data, "labels": labels.tolist()}

    folder.mkdir(parents=True, exist_ok=True)
    for name, count in (("data_batch_1", train), ("test_batch", val)):
        with open(folder / name, "wb") as handle:
            pickle.dump(batch(count), handle)
    return folder


def score_and_train(job: tuple[int, dict, str, int, int]) -> dict:
    """Zero-cost scores, counts and short-training accuracy (per seed) of one network, one thread."""
    import torch

    from evaluators.flops import count_flops
    from evaluators.proxies import naswot_score, synflow_score
    from neonas.arch import ArchConfig
    from neonas.models import build_model
    from neonas.train.proxy import proxy_train

    torch.set_num_threads(1)
    index, config_dict, data, epochs, seeds = job
    config = ArchConfig.from_dict(config_dict)
    model = build_model(config)
    shape = (3, config.input_size, config.input_size)
    start = time.perf_counter()
    naswot = naswot_score(model, shape, batch_size=16)
    naswot_s = time.perf_counter() - start
    start = time.perf_counter()
    synflow = synflow_score(model, shape)
    synflow_s = time.perf_counter() - start
    count = count_flops(model, (1, *shape))
    start = time.perf_counter()
    top1 = []
    for seed in range(seeds):
        torch.manual_seed(seed)  # the initial weights too
        fresh = build_model(config)
        top1.append(
            proxy_train(fresh, data, epochs=epochs, image_size=config.input_size, seed=seed)[
                "val_top1"
            ]
        )
    return {
        "index": index,
        "naswot": naswot,
        "synflow": synflow,
        "params": count.params,
        "flops": count.flops,
        "val_top1": float(np.mean(top1)),
        "val_top1_per_seed": top1,
        "naswot_s": naswot_s,
        "synflow_s": synflow_s,
        "train_s": (time.perf_counter() - start) / seeds,
    }


def kendall_tau(x: list[float], y: list[float]) -> float:
    """Kendall's tau-b (ties in either ranking handled), no scipy needed."""
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif dx == dy:
                concordant += 1
            else:
                discordant += 1
    denominator = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denominator if denominator else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="which networks are drawn")
    parser.add_argument(
        "--seeds", type=int, default=2, help="training runs per network (accuracy = mean)"
    )
    parser.add_argument("--json", type=Path, help="write every network's scores and accuracy here")
    args = parser.parse_args()

    from neonas.search.space import load_space

    space = load_space("tiny")
    rng = random.Random(args.seed)
    configs = [space.sample(rng).to_dict() for _ in range(args.archs)]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = str(make_dataset(Path(tmp) / "synthetic10"))
        jobs = [
            (index, config, data, args.epochs, args.seeds) for index, config in enumerate(configs)
        ]
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            rows = sorted(pool.map(score_and_train, jobs), key=lambda row: row["index"])
    accuracy = [row["val_top1"] for row in rows]
    print(
        f"{len(rows)} tiny-space networks, {args.epochs} epochs each, {time.perf_counter() - started:.0f} s"
    )
    print(
        f"val top-1: min {min(accuracy):.1f}, median {np.median(accuracy):.1f}, max {max(accuracy):.1f}"
    )
    print("| score | Kendall tau vs val top-1 | seconds per network |")
    print("|---|---|---|")
    for name, seconds in (
        ("naswot", "naswot_s"),
        ("synflow", "synflow_s"),
        ("params", None),
        ("flops", None),
    ):
        tau = kendall_tau([row[name] for row in rows], accuracy)
        cost = f"{np.median([row[seconds] for row in rows]):.3f}" if seconds else "-"
        print(f"| {name} | {tau:+.3f} | {cost} |")
    print(f"| (short training itself) | 1 | {np.median([row['train_s'] for row in rows]):.1f} |")
    if args.seeds > 1:
        # How far two trainings of the same networks agree: a ceiling for any proxy.
        first, second = ([row["val_top1_per_seed"][k] for row in rows] for k in (0, 1))
        print(
            f"\nseed 0 vs seed 1 accuracy: Kendall tau {kendall_tau(first, second):+.3f} (noise ceiling)"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, "rows": rows, "configs": configs},
                indent=1,
            )
        )


if __name__ == "__main__":
    main()

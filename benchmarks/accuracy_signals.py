"""Which accuracy signal ranks NeoCell networks? Kendall tau of each against training from scratch.

    python benchmarks/accuracy_signals.py --cache /tmp/signals [--networks 12] [--workers 2]
        [--jobs truth,short,zero,supernet] [--datasets digits,shapes]
        [--supernet-sampling uniform --supernet-random-subnets 4 --supernet-batch 32
         --supernet-epochs 30 --supernet-lr 2e-3 --supernet-calib 256 --supernet-seed 0]

On one set of tiny-space networks (chosen to span the space's choices, not only its size):
- ground truth: each network trained from scratch, twice (seeds 0, 1), longer and on more
  images than the search's short training; its ceiling is how well seed 0 ranks like seed 1;
- short training as `search --signal short-training` runs it (the search's default epochs and image counts),
  and its ASHA variant (successive halving, reduction 2, grace 1 epoch, as the driver's
  scheduler): stopped networks rank below every survivor, by the accuracy at their last rung;
- the zero-cost proxies of evaluators/proxies.py on a real batch of the data (NASWOT,
  SynFlow, ZiCo, MeCo) and the parameter and FLOP counts;
- supernet top-1 (inherited weights, BatchNorm re-estimated): one supernet per data set and
  training recipe (sampling rule, subnets per step, batch, epochs, peak LR), each in its own
  cache folder `supernet-<recipe>`, so recipes sit side by side in the table; `supernet/` is
  the folder of the first recipe (sandwich, 2 random, batch 64), read as such.
Data, nothing downloaded: scikit-learn's handwritten digits (8x8, upsampled to 32 px, a few
hundred training images, the rest for validation), and `shapes`, generated 10-class images
(smooth low-contrast colour layouts, shifted, flipped, brightness jitter, strong noise);
`shapes-large` is the same generator with 2,000 training and 4,000 validation images, `shapes-xl`
with 8,000 and 8,000.

Every result is cached as one JSON file per (job, data set, network, seed) under --cache, so a
run can be stopped and resumed and the table printed from whatever is done. Kendall tau-b, with
its standard error from 1000 bootstrap resamples of the networks; cost is the median seconds
per network on one CPU thread.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import pickle
import random
import re
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neonas.bench.metrics import bootstrap_se, kendall_tau

SPACE = "tiny"


@dataclass(frozen=True)
class Protocol:
    """How long the ground truth trains on one data set, and on how many images."""

    train_images: int
    val_images: int
    truth_epochs: int


# Sized for a shared 2-core machine: about 10,000 training images per network and seed.
PROTOCOLS = {
    "digits": Protocol(train_images=500, val_images=1297, truth_epochs=15),
    "shapes": Protocol(train_images=1000, val_images=1000, truth_epochs=10),
    # The same generator with twice the training and four times the validation images: on
    # `shapes` two seeds of the ground truth agreed at only 0.69-0.77 at 10 to 60 epochs.
    "shapes-large": Protocol(train_images=2000, val_images=4000, truth_epochs=30),
    # shapes-large's 64-network table agreed at only +0.80 (the issue asks 0.85); on `shapes`
    # more epochs did not help (above) and twice the images did, so four times the images at
    # half the epochs (twice the cost per network), and twice the validation images.
    "shapes-xl": Protocol(train_images=8000, val_images=8000, truth_epochs=15),
}


@dataclass(frozen=True)
class SupernetRecipe:
    """How a data set's supernet is trained and its candidates scored."""

    sampling: str = "uniform"
    random_subnets: int = 4
    batch_size: int = 32
    epochs: int = 30
    lr: float | None = 2e-3  # None: 2e-3 scaled linearly to the batch (the proxy preset)
    calib_images: int = 256  # BatchNorm re-estimation images when scoring
    seed: int = 0  # the supernet's initial weights, data order and subnet draws

    @property
    def training(self) -> str:
        """The cache folder of the supernet this recipe trains (scoring settings left out)."""
        lr = "" if self.lr is None else f"-lr{self.lr:g}"
        seed = f"-s{self.seed}" if self.seed else ""
        return (
            f"supernet-{self.sampling}{self.random_subnets}-b{self.batch_size}-e{self.epochs}"
            f"{lr}{seed}"
        )

    @property
    def kind(self) -> str:
        """The cache folder of the candidates' scores (training and scoring settings)."""
        return self.training + ("" if self.calib_images == 256 else f"-c{self.calib_images}")


# Held-out images of the supernet's own per-epoch check of its largest and smallest subnets
# (a progress monitor only; the candidates are scored on the whole validation split).
MONITOR_VAL_IMAGES = 300
LEGACY_SUPERNET = "supernet"  # the first recipe's folder: sandwich, 2 random, batch 64


# --- data ------------------------------------------------------------------------------------


def _write_cifar_folder(
    folder: Path, images: np.ndarray, labels: np.ndarray, train: int, names: list[str]
) -> Path:
    """Images (N, 3, 32, 32) uint8 as a CIFAR-10 python folder: the first `train` for training.

    Each file is written under a private name and renamed into place, `test_batch` last: it is
    what make_data looks for, and shards started together must never read a half-written file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    parts = {
        "data_batch_1": {"data": images[:train], "labels": labels[:train]},
        "batches.meta": {"label_names": names},
        "test_batch": {"data": images[train:], "labels": labels[train:]},
    }
    for name, content in parts.items():
        if "data" in content:
            data = content["data"]
            content = {"data": data.reshape(len(data), -1), "labels": content["labels"].tolist()}
        partial = folder / f".{name}.{os.getpid()}"
        with open(partial, "wb") as handle:
            pickle.dump(content, handle)
        os.replace(partial, folder / name)
    return folder


def digits_folder(folder: Path, train: int, seed: int = 0) -> Path:
    """scikit-learn's 1797 handwritten digits at 32 px, grey in 3 channels, split `train` / rest."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0  # (N, 1, 8, 8)
    images = F.interpolate(images, size=32, mode="bilinear", align_corners=False)
    images = (images.clamp(0, 1) * 255).round().byte().repeat(1, 3, 1, 1).numpy()
    order = np.random.default_rng(seed).permutation(len(images))
    names = [str(d) for d in range(10)]
    return _write_cifar_folder(folder, images[order], digits.target[order], train, names)


def shapes_folder(folder: Path, train: int, val: int, classes: int = 10, seed: int = 0) -> Path:
    """Generated 32 px images: per class a smooth random colour layout, under strong nuisances."""
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    # Low-contrast class layouts under heavy noise: hard enough that networks differ.
    layouts = 0.5 + 0.3 * (torch.rand(classes, 3, 4, 4, generator=generator) - 0.5)
    prototypes = F.interpolate(layouts, size=32, mode="bilinear")
    count = train + val
    labels = torch.randint(classes, (count,), generator=generator)
    images = prototypes[labels].clone()
    for index in range(count):
        dy, dx = torch.randint(-8, 9, (2,), generator=generator).tolist()
        images[index] = torch.roll(images[index], shifts=(dy, dx), dims=(1, 2))
        if torch.rand(1, generator=generator) < 0.5:
            images[index] = images[index].flip(2)
    images = images * (0.6 + 0.8 * torch.rand(count, 1, 1, 1, generator=generator))
    images = images + 0.3 * torch.randn(images.shape, generator=generator)
    data = (images.clamp(0, 1) * 255).byte().numpy()
    names = [f"layout{c}" for c in range(classes)]
    return _write_cifar_folder(folder, data, labels.numpy(), train, names)


def make_data(cache: Path, name: str) -> Path:
    """The data folder of `name` under the cache (written once)."""
    folder = cache / "data" / name
    if (folder / "test_batch").is_file():
        return folder
    protocol = PROTOCOLS[name]
    if name == "digits":
        return digits_folder(folder, protocol.train_images)
    return shapes_folder(folder, protocol.train_images, protocol.val_images)


# --- the networks ------------------------------------------------------------------------------


def spanning_networks(count: int, seed: int = 0, pool: int = 3000) -> list[dict[str, Any]]:
    """`count` distinct networks of the tiny space that spread over every choice of it.

    Farthest-point selection over a pool of drawn networks, in a space where every parameter
    (depth, width, MLP ratio, NeoCell groups, sizes, shifts, plan) counts equally: numbers scaled
    to [0, 1] over their choices, categories 0 or 1 apart. Starts from the smallest network.
    """
    from neonas.space import load_space

    space = load_space(SPACE)
    rng = random.Random(seed)
    configs, keys = [], set()
    for config in [space.smallest()] + [space.sample(rng) for _ in range(pool)]:
        key = space.key(config)
        if key not in keys:
            keys.add(key)
            configs.append(config)
    points = [space.params_of(config) or {} for config in configs]
    names = sorted({name for point in points for name in point})
    numeric = {
        name: sorted({p[name] for p in points if name in p})
        for name in names
        if all(isinstance(p.get(name, 0), int | float) for p in points)
        and not any(isinstance(p.get(name), bool) for p in points)
    }

    def coordinates(point: dict[str, Any]) -> list[float]:
        out = []
        for name in names:
            if name in numeric:
                values = numeric[name]
                value = point.get(name)
                out.append(-1.0 if value is None else values.index(value) / max(len(values) - 1, 1))
        return out

    def distance(a: dict[str, Any], b: dict[str, Any], ca: list[float], cb: list[float]) -> float:
        categorical = sum(a.get(n) != b.get(n) for n in names if n not in numeric)
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(ca, cb, strict=True)) + categorical)

    coords = [coordinates(p) for p in points]
    chosen = [0]
    nearest = [distance(points[0], p, coords[0], c) for p, c in zip(points, coords, strict=True)]
    while len(chosen) < count:
        best = max(range(len(points)), key=lambda i: nearest[i])
        chosen.append(best)
        nearest = [
            min(nearest[i], distance(points[best], points[i], coords[best], coords[i]))
            for i in range(len(points))
        ]
    return [
        configs[i].model_copy(update={"name": f"net{k:02d}"}).to_dict()
        for k, i in enumerate(chosen)
    ]


# --- jobs ----------------------------------------------------------------------------------------


def _build(config_dict: dict[str, Any], seed: int) -> Any:
    import torch

    from neonas.arch import ArchConfig
    from neonas.models import build_model

    torch.manual_seed(seed)  # the initial weights too
    return build_model(ArchConfig.from_dict(config_dict))


def train_truth(
    config: dict[str, Any], data: Path, protocol: Protocol, seed: int, device: str = "cpu"
) -> tuple[Any, dict[str, Any]]:
    """Stand-alone training from scratch: all training images, `truth_epochs`, one evaluation;
    the trained model and short_train's metrics."""
    from neonas.train.short_training import short_train

    model = _build(config, seed)
    metrics = short_train(
        model,
        data,
        epochs=protocol.truth_epochs,
        image_size=32,
        max_train_images=None,
        max_val_images=None,
        seed=seed,
        validate_every=protocol.truth_epochs,
        device=device,
    )
    return model, metrics


def truth_job(
    config: dict[str, Any], data: Path, protocol: Protocol, seed: int, device: str = "cpu"
) -> dict[str, Any]:
    """The ground truth of one network and seed: top-1 and loss on the validation images."""
    start = time.perf_counter()
    _, metrics = train_truth(config, data, protocol, seed, device)
    return {
        "top1": metrics["val_top1"],
        "loss": metrics["val_loss"],
        "seconds": time.perf_counter() - start,
    }


def short_job(
    config: dict[str, Any],
    data: Path,
    protocol: Protocol,
    seed: int,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Short training as `search --signal short-training` runs it: its default epochs and image
    counts (and batch size, unless `batch_size`), per epoch."""
    from neonas.search.settings import EvalSettings
    from neonas.train.short_training import short_train

    settings = EvalSettings()
    per_epoch: list[dict[str, float]] = []
    start = time.perf_counter()

    def record(epoch: int, metrics: dict[str, Any]) -> None:
        per_epoch.append({"top1": metrics["val_top1"], "seconds": time.perf_counter() - start})

    short_train(
        _build(config, seed),
        data,
        epochs=settings.epochs,
        image_size=32,
        batch_size=batch_size or settings.batch_size,
        max_train_images=settings.max_train_images,
        max_val_images=settings.max_val_images,
        seed=seed,
        on_epoch=record,
    )
    return {"per_epoch": per_epoch, "seconds": time.perf_counter() - start}


def zero_job(
    config: dict[str, Any],
    data: Path,
    protocol: Protocol,
    seed: int,
    weight_seed: int | None = None,
) -> dict[str, Any]:
    """Every zero-cost proxy on real training images as `search --data` reads them (two batches
    of 32), and on noise as the search runs without data (two batches of 16 standard-normal
    images, random labels). Seconds per proxy, data loading left out. `seed` draws the images
    and the initial weights, unless `weight_seed` draws the weights (NeoCell-Bench's draws)."""
    from evaluators.proxies import PROXIES, noise_batches, zero_cost_score
    from neonas.search.trial import DATA_BATCHES
    from neonas.train.short_training import data_batches

    model = _build(config, seed if weight_seed is None else weight_seed)
    batch, count = DATA_BATCHES
    inputs = {
        "": data_batches(model, data, batch_size=batch, count=count, seed=seed),
        ", noise": noise_batches((3, 32, 32), 16, 10, count=2, seed=seed),
    }
    scores: dict[str, dict[str, float]] = {}
    for suffix, batches in inputs.items():
        for name in PROXIES:
            start = time.perf_counter()
            score = zero_cost_score(model, name, batches)
            scores[name + suffix] = {"score": score, "seconds": time.perf_counter() - start}
    return scores


def supernet_job(
    config: dict[str, Any], data: Path, protocol: Protocol, seed: int, recipe: SupernetRecipe
) -> dict[str, Any]:
    """Top-1 of the network's subnet of the data set's trained supernet (BN re-estimated)."""
    from neonas.arch import ArchConfig
    from neonas.supernet.scoring import score_subnet

    checkpoint = data.parent.parent / recipe.training / data.name / "last.pt"
    start = time.perf_counter()
    top1 = score_subnet(
        checkpoint,
        ArchConfig.from_dict(config),
        data,
        calib_images=recipe.calib_images,
        max_val_images=protocol.val_images,
        seed=seed,
    )
    return {"top1": top1, "seconds": time.perf_counter() - start}


def supernet_folder(cache: Path, dataset: str, recipe: SupernetRecipe, space: str = SPACE) -> Path:
    """Where the supernet of `recipe` on `dataset` trains (last.pt, train.json)."""
    name = recipe.training if space == SPACE else f"{recipe.training}-{space}"
    return cache / name / dataset


def few_shot_folder(
    cache: Path, dataset: str, recipe: SupernetRecipe, epochs: int, space: str = SPACE
) -> Path:
    """Where the few-shot parts of that supernet train (`neonas supernet few-shot --output`):
    one folder for the benchmark's signal and the end-to-end search, so they train once."""
    trained = supernet_folder(cache, dataset, recipe, space).parent.name
    return cache / f"{trained}-fewshot-e{epochs}" / dataset


def train_supernets(
    cache: Path, datasets: list[str], recipe: SupernetRecipe, space: str = SPACE
) -> None:
    """One supernet of `space` per data set (in this process, resumable), its training time
    recorded."""
    import torch

    from neonas.supernet.training import train_supernet

    torch.set_num_threads(1)
    for dataset in datasets:
        folder = supernet_folder(cache, dataset, recipe, space)
        record = folder / "train.json"
        if record.is_file():
            continue
        start = time.perf_counter()
        train_supernet(
            space,
            make_data(cache, dataset),
            epochs=recipe.epochs,
            output_dir=folder,
            resume=(folder / "last.pt").is_file(),
            max_val_images=MONITOR_VAL_IMAGES,
            sampling=recipe.sampling,
            random_subnets=recipe.random_subnets,
            batch_size=recipe.batch_size,
            lr=recipe.lr,
            seed=recipe.seed,
        )
        seconds = time.perf_counter() - start
        info = {**dataclasses.asdict(recipe), "seconds": seconds, "threads": 1}
        record.write_text(json.dumps(info))
        print(f"supernet of {space} on {dataset}: {recipe.training}, {seconds:.0f} s", flush=True)


# kind, data set, network index, seed, network, cache folder, supernet recipe, truth epochs
# (None: the protocol's).
Job = tuple[str, str, int, int, dict[str, Any], str, SupernetRecipe, int | None]


def run_job(job: Job) -> tuple[str, float]:
    """One cached unit of work in a worker process (one torch thread)."""
    import torch

    torch.set_num_threads(1)
    kind, dataset, index, seed, config, cache, recipe, truth_epochs = job
    folder = job_folder(kind, recipe, dataset, truth_epochs)
    path = _result_path(Path(cache), folder, dataset, index, seed)
    data = make_data(Path(cache), dataset)
    protocol = PROTOCOLS[dataset]
    if truth_epochs is not None:
        protocol = dataclasses.replace(protocol, truth_epochs=truth_epochs)
    start = time.perf_counter()
    if kind == "supernet":
        result = supernet_job(config, data, protocol, seed, recipe)
    else:
        result = JOBS[kind](config, data, protocol, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(path)
    return str(path), time.perf_counter() - start


JOBS = {"truth": truth_job, "short": short_job, "zero": zero_job}
SEEDS = {"truth": (0, 1), "short": (0,), "zero": (0,), "supernet": (0,)}


def job_folder(
    kind: str, recipe: SupernetRecipe, dataset: str, truth_epochs: int | None = None
) -> str:
    """The cache folder of a job kind: one per supernet recipe, per short-training fidelity
    (`short/` holds the 3-epoch runs of the first default) and per ground-truth length
    (`truth/` at the protocol's epochs, `truth-e<N>/` at N)."""
    if kind == "supernet":
        return recipe.kind
    if kind == "short":
        return f"short-e{short_epochs()}"
    if kind == "truth" and truth_epochs not in (None, PROTOCOLS[dataset].truth_epochs):
        return f"truth-e{truth_epochs}"
    return kind


def truth_folders(cache: Path, networks: int, dataset: str) -> list[tuple[int, str]]:
    """(epochs, folder) of every ground truth with both seeds of all `networks`, shortest first."""
    found = []
    for path in cache.glob(f"truth*/{dataset}"):
        folder = path.parent.name
        epochs = int(folder.removeprefix("truth-e")) if "-e" in folder else None
        if all(
            _load(cache, folder, dataset, index, seed)
            for index in range(networks)
            for seed in SEEDS["truth"]
        ):
            found.append((epochs or PROTOCOLS[dataset].truth_epochs, folder))
    return sorted(found)


def _result_path(cache: Path, folder: str, dataset: str, index: int, seed: int) -> Path:
    return cache / folder / dataset / f"net{index:02d}-seed{seed}.json"


def short_epochs() -> int:
    """The epochs a short-training trial trains by default (the short job's fidelity)."""
    from neonas.search.settings import EvalSettings

    return EvalSettings().epochs


# --- statistics ----------------------------------------------------------------------------------


# kendall_tau and bootstrap_se live in neonas.bench.metrics (shared with NeoCell-Bench).


# --- driver --------------------------------------------------------------------------------------


def load_networks(cache: Path, count: int) -> list[dict[str, Any]]:
    """The networks of this cache (chosen once, then read back so every job sees the same)."""
    path = cache / "networks.json"
    if path.is_file():
        networks = json.loads(path.read_text())
        if len(networks) != count:
            raise SystemExit(
                f"{path} holds {len(networks)} networks; pass --networks {len(networks)}"
            )
        return networks
    networks = spanning_networks(count)
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(networks, indent=1))
    return networks


def run_pending(
    cache: Path,
    networks: list[dict[str, Any]],
    kinds: list[str],
    datasets: list[str],
    workers: int,
    recipe: SupernetRecipe,
    truth_epochs: int | None = None,
) -> None:
    """Every job of `kinds` not yet cached, on `workers` processes."""
    # Cheap jobs first, then network by network: a run cut short still has whole networks.
    jobs = [
        (kind, dataset, index, seed, config, str(cache), recipe, truth_epochs)
        for kind in sorted(kinds, key=lambda k: k == "truth")
        for index, config in enumerate(networks)
        for dataset in datasets
        for seed in SEEDS[kind]
        if not _result_path(
            cache, job_folder(kind, recipe, dataset, truth_epochs), dataset, index, seed
        ).is_file()
    ]
    for dataset in datasets:
        make_data(cache, dataset)  # once, before the workers race to write it
    print(f"{len(jobs)} jobs to run on {workers} workers", flush=True)
    if not jobs:
        return
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for done, (path, seconds) in enumerate(pool.map(run_job, jobs), start=1):
            print(
                f"[{time.perf_counter() - started:7.0f} s] {done}/{len(jobs)} {path} ({seconds:.0f} s)",
                flush=True,
            )


def successive_halving(
    curves: list[list[float]], grace: int = 1, reduction: int = 2
) -> tuple[list[float], list[int]]:
    """ASHA's rule on per-epoch top-1 curves, in its synchronous form: at each rung (grace,
    grace * reduction, ... epochs, below the last) the best 1/reduction go on. A network's score
    ranks every later rung above every earlier one, then by its top-1 there; also the epochs
    each network trains."""
    epochs = len(curves[0])
    alive = list(range(len(curves)))
    stopped_at = [epochs] * len(curves)
    rung = grace
    while rung < epochs:
        keep = max(1, math.ceil(len(alive) / reduction))
        alive.sort(key=lambda i: curves[i][rung - 1], reverse=True)
        for index in alive[keep:]:
            stopped_at[index] = rung
        alive = alive[:keep]
        rung *= reduction
    scores = [1000.0 * stopped_at[i] + curves[i][stopped_at[i] - 1] for i in range(len(curves))]
    return scores, stopped_at


def _load(cache: Path, folder: str, dataset: str, index: int, seed: int = 0) -> dict | None:
    path = _result_path(cache, folder, dataset, index, seed)
    return json.loads(path.read_text()) if path.is_file() else None


def supernet_folders(cache: Path, dataset: str) -> list[str]:
    """The cache folders holding supernet scores for `dataset`, the first recipe's first."""
    folders = [path.parent.name for path in cache.glob(f"supernet*/{dataset}")]
    return sorted(folders, key=lambda name: (name != LEGACY_SUPERNET, name))


def supernet_label(folder: str) -> str:
    """A table row's name: the recipe of the folder (see SupernetRecipe.kind)."""
    recipe = "sandwich2-b64" if folder == LEGACY_SUPERNET else folder.removeprefix("supernet-")
    return f"supernet top-1, {recipe}"


def supernet_training(cache: Path, folder: str, dataset: str) -> tuple[int, float]:
    """Epochs and seconds the supernet behind a scores folder trained (0, 0 if unknown)."""
    training = re.sub(r"-c\d+$", "", folder)
    log = cache / training / dataset / "metrics.csv"
    if not log.is_file():
        return 0, 0.0
    epochs = list(csv.DictReader(log.open()))  # per-epoch training seconds, across resumes
    return len(epochs), sum(float(row["train_time_s"]) for row in epochs)


def signal_table(
    cache: Path,
    networks: list[dict[str, Any]],
    dataset: str,
    collect: dict[str, list[tuple[float, int]]] | None = None,
) -> list[str]:
    """The Markdown lines of one data set's table: tau, its standard error, seconds per network;
    each signal's (tau, networks) also appended to `collect`."""
    from evaluators.proxies import PROXIES

    complete = truth_folders(cache, len(networks), dataset)
    epochs, folder = complete[-1] if complete else (PROTOCOLS[dataset].truth_epochs, "truth")
    done = [
        index
        for index in range(len(networks))
        if all(_load(cache, folder, dataset, index, seed) for seed in SEEDS["truth"])
    ]
    if len(done) < 3:
        return [f"{dataset}: {len(done)} networks with a ground truth so far, too few for tau"]

    def truth_of(folder: str) -> dict[int, list[float]]:
        return {
            seed: [_load(cache, folder, dataset, i, seed)["top1"] for i in done]
            for seed in SEEDS["truth"]
        }

    truth = truth_of(folder)
    mean = [(a + b) / 2 for a, b in zip(truth[0], truth[1], strict=True)]
    lines = [
        f"{dataset}: {len(done)} networks; ground truth {epochs} epochs, top-1 (mean of 2 seeds) "
        f"{min(mean):.1f}-{max(mean):.1f} %, median {statistics.median(mean):.1f} %",
        "",
        "| signal | Kendall tau vs ground truth | SE | s per network |",
        "|---|---|---|---|",
    ]

    def row(name: str, scores: list[float] | None, seconds: float | None, note: str = "") -> None:
        if scores is None:
            lines.append(f"| {name} | (not run) | | |")
            return
        cost = f"{seconds:.3g}" if seconds is not None else "-"
        tau, se = kendall_tau(scores, mean), bootstrap_se(scores, mean)
        if collect is not None:
            collect.setdefault(name, []).append((tau, len(scores)))
        lines.append(f"| {name}{note} | {tau:+.2f} | {se:.2f} | {cost} |")

    # Every complete ground truth's own ceiling, the longest (the one ranked against) first; a
    # shorter one is also a signal: how well does it rank like the longest?
    for other_epochs, other in reversed(complete or [(epochs, folder)]):
        pair = truth_of(other)
        seconds = statistics.median(_load(cache, other, dataset, i, 0)["seconds"] for i in done)
        tau, se = kendall_tau(pair[0], pair[1]), bootstrap_se(pair[0], pair[1])
        lines.append(
            f"| ground truth {other_epochs} epochs, seed 0 vs seed 1 (ceiling) | {tau:+.2f} | "
            f"{se:.2f} | {seconds:.3g} |"
        )
        if other != folder:
            row(
                f"ground truth {other_epochs} epochs (mean of 2 seeds)",
                [(a + b) / 2 for a, b in zip(pair[0], pair[1], strict=True)],
                seconds * len(SEEDS["truth"]),
            )
    for folder in supernet_folders(cache, dataset):
        supernet = [_load(cache, folder, dataset, i) for i in done]
        if not all(supernet):
            continue
        epochs, seconds = supernet_training(cache, folder, dataset)
        row(
            supernet_label(folder),
            [r["top1"] for r in supernet],
            statistics.median(r["seconds"] for r in supernet),
            f" (+ {seconds:.0f} s to train the supernet, {epochs} epochs)" if epochs else "",
        )
    folders = sorted(path.parent.name for path in cache.glob(f"short*/{dataset}"))
    for folder in folders or ["short"]:
        short = [_load(cache, folder, dataset, i) for i in done]
        if not all(short):
            row(f"short training ({folder})", None, None)
            continue
        curves = [[e["top1"] for e in r["per_epoch"]] for r in short]
        seconds = [[e["seconds"] for e in r["per_epoch"]] for r in short]
        epochs = len(curves[0])
        row(
            f"short training, {epochs} epochs",
            [c[-1] for c in curves],
            statistics.median(s[-1] for s in seconds),
        )
        # ASHA's grace period as the search sets it (EvalSettings.asha_grace_epochs).
        scores, stopped = successive_halving(curves, grace=max(1, epochs // 2))
        spent = [s[e - 1] for s, e in zip(seconds, stopped, strict=True)]
        row(f"short training, {epochs} epochs, ASHA", scores, statistics.mean(spent))
    zero = [_load(cache, "zero", dataset, i) for i in done]
    for name in [*PROXIES, *(f"{name}, noise" for name in ("naswot", "zico", "meco"))]:
        if all(zero):
            row(
                name,
                [r[name]["score"] for r in zero],
                statistics.median(r[name]["seconds"] for r in zero),
            )
        else:
            row(name, None, None)
    return lines


def plan_text(config: dict[str, Any]) -> str:
    """The transition plan of a network, e.g. '4:3 2:1'."""
    return " ".join(
        f"{stage['sampling'][0]}:{stage['sampling'][2]}" for stage in config["stages"][1:]
    )


def supernet_diagnosis(cache: Path, networks: list[dict[str, Any]], dataset: str) -> list[str]:
    """Per network: plan, log10 parameters, ground truth and every supernet recipe's score; then
    each recipe's tau against the parameter count (does it measure size?)."""
    folders = [
        folder
        for folder in supernet_folders(cache, dataset)
        if all(_load(cache, folder, dataset, i) for i in range(len(networks)))
    ]
    zero = [_load(cache, "zero", dataset, i) for i in range(len(networks))]
    complete = truth_folders(cache, len(networks), dataset)
    if not folders or not all(zero) or not complete:
        return []
    epochs, truth_folder = complete[-1]
    names = [supernet_label(folder).removeprefix("supernet top-1, ") for folder in folders]
    lines = [
        f"{dataset}: supernet top-1 per network (truth: {epochs} epochs, mean of 2 seeds)",
        "",
        "| network | plan | log10 params | truth | " + " | ".join(names) + " |",
        "|---" * (4 + len(names)) + "|",
    ]
    params = [r["params"]["score"] for r in zero]
    for index, config in enumerate(networks):
        truth = [_load(cache, truth_folder, dataset, index, seed) for seed in SEEDS["truth"]]
        mean = f"{statistics.mean(t['top1'] for t in truth):.1f}"
        scores = [f"{_load(cache, folder, dataset, index)['top1']:.1f}" for folder in folders]
        lines.append(
            f"| net{index:02d} | {plan_text(config)} | {params[index]:.2f} | {mean} | "
            + " | ".join(scores)
            + " |"
        )
    scores = {
        folder: [_load(cache, folder, dataset, i)["top1"] for i in range(len(networks))]
        for folder in folders
    }
    lines.append("")
    for name, folder in zip(names, folders, strict=True):
        lines.append(f"{name}: tau vs log10 params {kendall_tau(scores[folder], params):+.2f}")
        base = re.sub(r"-s\d+$", "", folder)  # the same recipe with supernet seed 0
        if base != folder and base in scores:
            tau = kendall_tau(scores[folder], scores[base])
            lines.append(f"{name}: tau vs the same recipe's seed-0 supernet {tau:+.2f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/accuracy_signals"))
    parser.add_argument("--networks", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--jobs", default="truth,short,zero,supernet")
    parser.add_argument("--datasets", default="digits,shapes")
    parser.add_argument(
        "--truth-epochs",
        type=int,
        help="train the ground truth this long (own cache folder truth-e<N>; default: the "
        "data set's protocol); the table ranks against the longest complete ground truth",
    )
    defaults = SupernetRecipe()
    parser.add_argument("--supernet-sampling", default=defaults.sampling)
    parser.add_argument("--supernet-random-subnets", type=int, default=defaults.random_subnets)
    parser.add_argument("--supernet-batch", type=int, default=defaults.batch_size)
    parser.add_argument("--supernet-epochs", type=int, default=defaults.epochs)
    parser.add_argument(
        "--supernet-lr", type=float, default=defaults.lr, help="0: 2e-3 scaled to the batch"
    )
    parser.add_argument("--supernet-calib", type=int, default=defaults.calib_images)
    parser.add_argument("--supernet-seed", type=int, default=defaults.seed)
    args = parser.parse_args()
    kinds = [k for k in args.jobs.split(",") if k]
    datasets = [d for d in args.datasets.split(",") if d]
    unknown = sorted(set(datasets) - set(PROTOCOLS)) + sorted(set(kinds) - set(SEEDS))
    if unknown:
        raise SystemExit(f"unknown: {', '.join(unknown)}")
    networks = load_networks(args.cache, args.networks)
    recipe = SupernetRecipe(
        sampling=args.supernet_sampling,
        random_subnets=args.supernet_random_subnets,
        batch_size=args.supernet_batch,
        epochs=args.supernet_epochs,
        lr=args.supernet_lr or None,
        calib_images=args.supernet_calib,
        seed=args.supernet_seed,
    )
    if "supernet" in kinds:
        train_supernets(args.cache, datasets, recipe)
    run_pending(args.cache, networks, kinds, datasets, args.workers, recipe, args.truth_epochs)
    pooled: dict[str, list[tuple[float, int]]] = {}
    for dataset in datasets:
        print()
        print("\n".join(signal_table(args.cache, networks, dataset, pooled)))
        print()
        print("\n".join(supernet_diagnosis(args.cache, networks, dataset)))
    print("\nPooled over the data sets (tau weighted by networks), best first:")
    weighted = {
        name: sum(t * n for t, n in values) / sum(n for _, n in values)
        for name, values in pooled.items()
        if len(values) == len(datasets) and not any(math.isnan(t) for t, _ in values)
    }
    for name, tau in sorted(weighted.items(), key=lambda item: -item[1]):
        print(f"  {name}: {tau:+.2f}")


if __name__ == "__main__":
    main()

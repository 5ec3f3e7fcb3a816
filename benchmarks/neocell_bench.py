"""NeoCell-Bench: networks of the tiny space trained from scratch, with every signal beside them.

    python benchmarks/neocell_bench.py train --cache /work/bench-cache \
        --dataset digits --dataset shapes-large [--dataset NAME=DIR] [--networks N]
    python benchmarks/neocell_bench.py supernet --cache /work/bench-cache [--dataset digits]
    python benchmarks/neocell_bench.py short --cache /work/bench-cache [--dataset digits]
    python benchmarks/neocell_bench.py collect --cache /work/bench-cache [--dataset digits]
    python benchmarks/neocell_bench.py report [--json]

`train` fills a resumable cache, one JSON file per (data set, network, seed) for the ground
truth and one per (data set, network) for its costs and signals; stop it at any time and run
it again to go on. On a fresh machine it first restores into the cache the networks the
committed table already holds (`--tables`), so a partial table committed by one session is
continued, not retrained, by the next. `supernet` trains the data set's supernet once and scores every network of
the table with it (resumable too). `collect` writes the committed table (neonas/bench/data/tiny-<data
set>.jsonl and its provenance, .meta.json) from the networks complete in the cache. `report`
prints, from the committed tables only and in seconds, how well each signal ranks like the
ground truth.

Protocol (the ground truth of benchmarks/accuracy_signals.py, reused from it):
- networks: distinct canonical networks of search_spaces/tiny.yaml, alternately one of the
  farthest-point spanning set (accuracy_signals.spanning_networks) and one drawn as the search
  draws (SearchSpace.sample, each choice uniform, seed 1000), duplicates skipped; a table of N
  networks is the first N of that list, so tables of different sizes share their networks;
- ground truth: each network trained from scratch with the proxy recipe, seeds 0 and 1
  (`digits` 15 epochs on 500 training images, validated on 1297; `shapes-large` 30 epochs on
  2000 / 4000; `shapes-xl` 15 epochs on 8000 / 8000; `--dataset NAME=DIR` every image of DIR,
  15 epochs unless --epochs);
- costs: parameters and FLOPs per image (fvcore, as `neonas profile` counts them), Ascend 310
  latency predicted as `neonas profile --hw ascend` does, batch 1 and 16;
- signals: the zero-cost proxies of evaluators/proxies.py as accuracy_signals.zero_job computes
  them (SynFlow; ZiCo, NASWOT, MeCo on two batches of 32 training images and on noise), for
  three weight draws (weights seeded 1000, 1001, 1002; images seeded 0), and log10 params and
  FLOPs; the supernet signal: one supernet per built-in data set, trained as
  benchmarks/accuracy_signals.py trains uniform4-b32-e30-lr0.002, each network scored as
  `search --supernet` scores a candidate (BatchNorm re-estimated on 256 training images, top-1
  on 500 validation images); the short-training signal (`short`): each network trained as
  `search --signal short-training` trains a candidate (accuracy_signals.short_job: the search's
  default 6 epochs, batch 64, up to 2000 / 500 images, weights and data order seeded 0), its
  validation top-1 after 3 and after 6 epochs, and its ASHA form (successive halving over the
  table's networks with the search's grace of 3 epochs and reduction 2: a network ASHA keeps
  ranks above every one it stopped).
Figures: Kendall tau-b against the mean top-1 of the seeds with its standard error (1000
bootstrap resamples of the networks), Spearman's rho, top-10 % recall (of the table's best
10 %, the share in the signal's best 10 %), and tau over the pairs of networks whose predicted
batch-1 latency is within 10 % of each other (with its bootstrap SE). The ceiling is tau of
seed 0 against seed 1; "draw tau" is tau of a signal's weight draw 0 against draw 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accuracy_signals import (
    PROTOCOLS,
    SPACE,
    Protocol,
    SupernetRecipe,
    few_shot_folder,
    make_data,
    short_job,
    spanning_networks,
    successive_halving,
    train_supernets,
    truth_job,
    zero_job,
)
from exit_status import reports_user_errors

from neonas.bench.report import (
    TRAINED_SIGNALS,
    compare_signals,
    plans_text,
    report,
    report_text,
)
from neonas.bench.table import (
    DATA,
    BenchRow,
    load_table,
    provenance,
    row_to_dict,
    table_path,
)
from neonas.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
SAMPLED_SEED = 1000  # the random stream of the networks drawn as the search draws
WEIGHT_SEED = 1000  # weight draw d of a signal is seeded WEIGHT_SEED + d
DEFAULT_NETWORKS = {"digits": 100, "shapes-large": 64, "shapes-xl": 64}
OTHER_NETWORKS = 64
SPANNING_POOL = 3000  # drawn networks the spanning ones are chosen from (accuracy_signals' pool)
DEFAULT_EPOCHS = 15  # ground-truth epochs of a --dataset NAME=DIR
BATCHES = (1, 16)  # predicted latency at these batch sizes
HW = "ascend"
# The signals kept, and from which of zero_job's results. SynFlow is data-free and params /
# FLOPs weight-free: their ", noise" twins would repeat them.
SIGNALS = ("synflow", "zico", "zico, noise", "naswot", "naswot, noise", "meco", "meco, noise")
WEIGHT_FREE = ("params", "flops")
# The scoring a supernet signal's name leaves out: 256 BatchNorm and 500 validation images, the
# search's defaults when the tables were first scored. Other numbers are in the name
# (`-c<calib>-v<val>`); the search now validates on 2,000 (`-c256-v2000`).
NAMED_SCORING = (256, 500)


@dataclass(frozen=True)
class Dataset:
    """A data set of a table: its name, where its images are and how its ground truth trains."""

    name: str
    folder: Path | None  # None: a built-in, written under the cache
    protocol: Protocol
    networks: int

    def data(self, cache: Path) -> Path:
        return make_data(cache, self.name) if self.folder is None else self.folder

    def recipe(self) -> dict[str, Any]:
        builtin = self.folder is None
        return {
            "recipe": "proxy",
            "epochs": self.protocol.truth_epochs,
            "batch_size": 64,
            "image_size": 32,
            "train_images": self.protocol.train_images if builtin else "all",
            "val_images": self.protocol.val_images if builtin else "all",
        }


def parse_dataset(text: str, networks: int | None, epochs: int | None) -> Dataset:
    """`digits`, `shapes`, `shapes-large`, `shapes-xl` or NAME=DIR (an ImageFolder tree or CIFAR-10 folder)."""
    name, equals, folder = text.partition("=")
    if not equals:
        if name not in PROTOCOLS:
            raise UserError(
                f"unknown data set {name!r}: use {', '.join(PROTOCOLS)} or NAME=DIR "
                "(an ImageFolder tree or a CIFAR-10 python folder)"
            )
        protocol = PROTOCOLS[name]
        if epochs is not None:
            raise UserError(f"--epochs is for NAME=DIR data sets; {name} trains as its protocol")
        count = networks or DEFAULT_NETWORKS.get(name, OTHER_NETWORKS)
        return Dataset(name, None, protocol, count)
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise UserError(f"--dataset {text}: NAME must be letters, digits, - or _")
    if name in PROTOCOLS:
        raise UserError(f"--dataset {text}: {name} is a built-in data set; choose another NAME")
    from neonas.train.data import detect_layout

    path = Path(folder).expanduser().resolve()
    detect_layout(path)  # a UserError naming the expected layouts if it is not one
    protocol = Protocol(train_images=0, val_images=0, truth_epochs=epochs or DEFAULT_EPOCHS)
    return Dataset(name, path, protocol, networks or OTHER_NETWORKS)


def parse_shard(text: str) -> tuple[int, int]:
    """'1/2' -> (1, 2); UserError unless 0 <= K < N."""
    k, slash, n = text.partition("/")
    try:
        shard = (int(k), int(n))
    except ValueError:
        shard = (-1, 0)
    if not slash or not 0 <= shard[0] < shard[1]:
        raise UserError(f"--shard {text}: K/N with 0 <= K < N, e.g. 1/2")
    return shard


# --- the networks --------------------------------------------------------------------------------


def bench_networks(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """The first `count` networks of the bench's list: spanning and sampled, alternately.

    Farthest-point selection is greedy, so its first k networks do not depend on how many are
    chosen, and the sampled ones come from one fixed random stream: the list of N networks is
    the first N of every longer list.
    """
    from neonas.arch import ArchConfig
    from neonas.space import load_space

    space = load_space(SPACE)
    spanning = iter(spanning_networks(math.ceil(count / 2) + 4, seed=seed, pool=SPANNING_POOL))
    rng = random.Random(SAMPLED_SEED + seed)
    networks: list[dict[str, Any]] = []
    keys: set[str] = set()
    while len(networks) < count:
        origin = "spanning" if len(networks) % 2 == 0 else "sampled"
        for _ in range(10_000):
            if origin == "spanning":
                config = ArchConfig.from_dict(next(spanning))
            else:
                config = space.sample(rng)
            key = space.key(config)
            if key not in keys:
                break
        else:
            raise UserError(f"the {SPACE} space has too few distinct networks for {count}")
        keys.add(key)
        name = f"net{len(networks):03d}"
        config = config.model_copy(update={"name": name})
        networks.append({"name": name, "origin": origin, "config": config.to_dict()})
    return networks


def load_networks(cache: Path, count: int) -> list[dict[str, Any]]:
    """The first `count` networks, kept in the cache so a resumed run trains the same ones."""
    path = cache / "networks.json"
    stored = json.loads(path.read_text()) if path.is_file() else []
    if len(stored) >= count:
        return stored[:count]
    networks = bench_networks(count)
    if networks[: len(stored)] != stored:
        raise UserError(
            f"{path} lists other networks than this code draws (did the space change?); "
            "use a new --cache"
        )
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(networks, indent=1))
    return networks


# --- jobs ----------------------------------------------------------------------------------------


@functools.cache
def code_commit() -> str:
    """`git rev-parse HEAD` of this checkout, `-dirty` if tracked files differ, or `unknown`.

    Read once, when the process starts training: the code it runs, even if HEAD moves later.
    A copy of a checkout without git (a borrowed GPU machine gets the files, not `.git`) says
    which commit it is in NEONAS_CODE_COMMIT; without that it is `unknown`."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", "neonas", "evaluators", "benchmarks"],
            cwd=ROOT,
        ).returncode
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("NEONAS_CODE_COMMIT", "unknown")
    return head + ("-dirty" if dirty else "")


def machine(device: str) -> str:
    """The CPU model (or the CUDA device), torch's threads and version."""
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = os.cpu_count()
    return (
        f"{model} ({cores} cores), {torch.get_num_threads()} thread(s), torch {torch.__version__}"
    )


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def truth_path(cache: Path, dataset: str, index: int, seed: int) -> Path:
    return cache / dataset / "truth" / f"net{index:03d}-seed{seed}.json"


def signals_path(cache: Path, dataset: str, index: int) -> Path:
    return cache / dataset / "signals" / f"net{index:03d}.json"


def predicted_latency(config: Any, batch: int = 1) -> float:
    """Predicted Ascend 310 latency (ms) of one forward of `config` (an ArchConfig), as the
    table's `latency_ms` is measured: the benchmarks that compare with the table use this."""
    from evaluators import get_hw
    from neonas.models import build_model

    model = build_model(config).eval()
    chw = (config.in_chans, config.input_size, config.input_size)
    return get_hw(HW).latency(model, chw, batch).median_ms


def supernet_path(cache: Path, dataset: str, training: str, index: int) -> Path:
    return cache / dataset / "supernet" / training / f"net{index:03d}.json"


def score_with_supernet(
    cache: Path,
    name: str,
    calib_images: int | None = None,
    val_images: int | None = None,
    recipe: SupernetRecipe | None = None,
    few_shot_epochs: int | None = None,
) -> None:
    """The supernet signal of every network of a built-in data set's table: one supernet
    trained as accuracy_signals trains `recipe` (default uniform4-b32-e30-lr0.002), each network
    scored as `search --supernet` scores a candidate (neonas.supernet.scoring.SubnetScorer
    defaults, or `calib_images` BatchNorm images and `val_images` validation images, 0: all),
    named `-c<calib>-v<val>` after the recipe's name unless they are NAMED_SCORING. With
    `few_shot_epochs`, the supernet is split by transition plan (Zhao et al., ICML 2021): one
    sub-supernet per plan starts from its weights and trains that many epochs on the plan's
    networks alone, and each network is scored by its plan's sub-supernet (`-fewshot<plans>x<E>`)."""
    import torch

    from neonas.arch import ArchConfig
    from neonas.space import plan_of
    from neonas.supernet.scoring import CALIB_IMAGES, VAL_IMAGES, SubnetScorer

    if name not in PROTOCOLS:
        raise UserError(f"the supernet signal is for built-in data sets ({', '.join(PROTOCOLS)})")
    info_path = cache / name / "dataset.json"
    if not info_path.is_file():
        raise UserError(f"no table of {name!r} in {cache}: run `train` first")
    torch.set_num_threads(1)
    recipe = recipe or SupernetRecipe()
    data = make_data(cache, name)
    train_supernets(cache, [name], recipe)
    calib = CALIB_IMAGES if calib_images is None else calib_images
    val = VAL_IMAGES if val_images is None else val_images
    checkpoints = {None: cache / recipe.training / name / "last.pt"}  # plan -> supernet
    if few_shot_epochs:
        checkpoints = train_few_shot(cache, name, recipe, few_shot_epochs)
    parts = (len(checkpoints), few_shot_epochs) if few_shot_epochs else None
    signal = supernet_signal(recipe, calib, val, parts)
    scorers: dict[str | None, Any] = {}
    networks = load_networks(cache, json.loads(info_path.read_text())["networks"])
    for index, network in enumerate(networks):
        path = supernet_path(cache, name, signal, index)
        if path.is_file():
            continue
        config = ArchConfig.from_dict(for_data(network["config"], data))
        plan = plan_of(config)
        part = plan if few_shot_epochs else None
        if part not in scorers:
            scorers[part] = SubnetScorer(
                checkpoints[part], data, calib_images=calib, max_val_images=val or None, seed=0
            )
        start = time.perf_counter()
        top1 = scorers[part].score(config)
        _write(path, {"top1": top1, "seconds": time.perf_counter() - start, "finished": _now()})
        print(f"{name} net{index:03d}: supernet top-1 {top1:.1f} %", flush=True)


def supernet_signal(
    recipe: SupernetRecipe, calib: int, val: int, parts: tuple[int, int] | None = None
) -> str:
    """The name of a supernet signal (its cache folder): the recipe, `-fewshot<P>x<E>` for P
    few-shot parts trained E epochs each, and `-c<calib>-v<val>` (val 0: `vall`, every
    validation image) unless the scoring is NAMED_SCORING."""
    signal = recipe.training
    if parts is not None:
        signal += f"-fewshot{parts[0]}x{parts[1]}"
    if (calib, val) != NAMED_SCORING:
        signal += f"-c{calib}-v{val or 'all'}"
    return signal


def train_few_shot(
    cache: Path, name: str, recipe: SupernetRecipe, epochs: int
) -> dict[str | None, Path]:
    """`neonas supernet few-shot` of the trained supernet of `recipe` (resumable): one
    sub-supernet per transition plan, each started from its weights and trained `epochs` epochs
    with the same recipe on its plan's networks alone; plan name -> its last.pt."""
    import torch

    from neonas.supernet.few_shot import load_few_shot
    from neonas.supernet.few_shot_training import train_few_shot as train_parts

    torch.set_num_threads(1)
    base = cache / recipe.training / name / "last.pt"
    folder = few_shot_folder(cache, name, recipe, epochs)
    start = time.perf_counter()
    train_parts(base, folder, epochs=epochs, data_dir=make_data(cache, name), progress=False)
    if not (folder / "train.json").is_file():
        (folder / "train.json").write_text(json.dumps({"seconds": time.perf_counter() - start}))
    parts = load_few_shot(folder)
    assert parts is not None
    return dict(parts.parts)


def supernet_signals(cache: Path, name: str, indices: list[int]) -> dict[str, dict[int, Any]]:
    """Each supernet recipe scored for every one of `indices`: signal name -> index -> record."""
    found: dict[str, dict[int, Any]] = {}
    for folder in sorted((cache / name / "supernet").glob("*")):
        records = {i: supernet_path(cache, name, folder.name, i) for i in indices}
        if all(path.is_file() for path in records.values()):
            found[f"supernet, {folder.name}"] = {
                i: json.loads(path.read_text()) for i, path in records.items()
            }
    return found


def short_path(cache: Path, dataset: str, index: int, batch_size: int | None = None) -> Path:
    """A network's short-training curve at the search's batch size, or at `batch_size`."""
    folder = "short" if batch_size is None else f"short-b{batch_size}"
    return cache / dataset / folder / f"net{index:03d}.json"


def short_train_table(cache: Path, name: str, batch_size: int | None = None) -> None:
    """The short-training curve of every network of a data set's table (resumable): top-1 and
    elapsed seconds after each epoch, trained as a search's trial trains its candidate (with
    `batch_size`: as `--batch-size` makes it, the same images in more, smaller steps)."""
    info_path = cache / name / "dataset.json"
    if not info_path.is_file():
        raise UserError(f"no table of {name!r} in {cache}: run `train` first")
    info = json.loads(info_path.read_text())
    dataset = parse_dataset(f"{name}={info['folder']}" if info["folder"] else name, None, None)
    data = dataset.data(cache)
    for index, network in enumerate(load_networks(cache, info["networks"])):
        path = short_path(cache, name, index, batch_size)
        if path.is_file():
            continue
        config = for_data(network["config"], data)
        result = short_job(config, data, dataset.protocol, 0, batch_size=batch_size)
        _write(path, {**result, "commit": code_commit(), "finished": _now()})
        curve = " ".join(f"{epoch['top1']:.0f}" for epoch in result["per_epoch"])
        print(f"{name} net{index:03d}: short training top-1 {curve} ({result['seconds']:.0f} s)")


def short_signals(cache: Path, name: str, indices: list[int]) -> dict[str, dict[int, Any]]:
    """The short-training signals of `indices` (each batch size whose curves are complete):
    signal name -> index -> {"top1": score, "seconds": cost}. ASHA's score ranks the networks
    it kept above the ones it stopped (accuracy_signals.successive_halving), so it exists for
    the whole set."""
    found: dict[str, dict[int, Any]] = {}
    for folder in sorted((cache / name).glob("short*")):
        batch = folder.name.removeprefix("short").removeprefix("-b")
        paths = {i: folder / f"net{i:03d}.json" for i in indices}
        if not paths or not all(path.is_file() for path in paths.values()):
            continue
        label = "short training" + (f", batch {batch}" if batch else "")
        runs = {i: json.loads(path.read_text())["per_epoch"] for i, path in paths.items()}
        epochs = min(len(run) for run in runs.values())
        grace = max(1, epochs // 2)  # EvalSettings.asha_grace_epochs
        for at in sorted({grace, epochs}):
            found[f"{label}, {at} epochs"] = {
                i: {"top1": run[at - 1]["top1"], "seconds": run[at - 1]["seconds"]}
                for i, run in runs.items()
            }
        curves = [[epoch["top1"] for epoch in runs[i][:epochs]] for i in indices]
        scores, stopped = successive_halving(curves, grace=grace)
        found[f"{label}, {epochs} epochs, ASHA"] = {
            i: {"top1": score, "seconds": runs[i][stop - 1]["seconds"]}
            for i, score, stop in zip(indices, scores, stopped, strict=True)
        }
    return found


def for_data(config: dict[str, Any], data: Path) -> dict[str, Any]:
    """The network with a head for the data set's classes."""
    from neonas.train.data import detect_layout

    return {**config, "num_classes": len(detect_layout(data).classes)}


def train_one(
    config: dict[str, Any], dataset: Dataset, data: Path, seed: int, device: str
) -> dict[str, Any]:
    """The ground truth of one network and seed (accuracy_signals.truth_job) with provenance."""
    result = truth_job(config, data, dataset.protocol, seed, device=device)
    return {
        "seed": seed,
        "top1": result["top1"],
        "loss": result["loss"],
        "seconds": result["seconds"],
        "commit": code_commit(),
        "machine": machine(device),
        "finished": _now(),
    }


def signals_one(config: dict[str, Any], dataset: Dataset, data: Path, draws: int) -> dict[str, Any]:
    """Costs (params, FLOPs, predicted Ascend 310 latency) and every signal for `draws` weight
    draws (accuracy_signals.zero_job, images seeded 0, weights WEIGHT_SEED + draw)."""
    from accuracy_signals import _build

    from evaluators import get_hw
    from evaluators.metrics import compute_metrics

    model = _build(config, 0)
    model.eval()
    chw = (config["in_chans"], config["input_size"], config["input_size"])
    counts = compute_metrics(model, chw, ["flops", "params"])
    target = get_hw(HW)
    latency = {str(batch): target.latency(model, chw, batch).median_ms for batch in BATCHES}
    scores: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}
    for draw in range(draws):
        result = zero_job(config, data, dataset.protocol, 0, weight_seed=WEIGHT_SEED + draw)
        names = SIGNALS + (WEIGHT_FREE if draw == 0 else ())
        for name in names:
            scores.setdefault(name, []).append(result[name]["score"])
            seconds.setdefault(name, []).append(result[name]["seconds"])
    return {
        "params": int(counts["params"]),
        "flops": int(counts["flops"]),
        "latency_ms": latency,
        "hw": target.name,
        "signals": scores,
        "signal_seconds": {name: statistics.median(s) for name, s in seconds.items()},
        "commit": code_commit(),
        "finished": _now(),
    }


def train(
    cache: Path,
    sets: list[Dataset],
    seeds: list[int],
    draws: int,
    device: str,
    limit: int | None = None,
    shard: tuple[int, int] = (0, 1),
    tables: Path = DATA,
) -> None:
    """Every missing ground truth and signal of every data set, network by network; with
    `shard` (k, n) only the networks whose index is k modulo n, so n processes share a table.
    Networks already in the table under `tables` (the committed ones) are not trained again."""
    started = time.perf_counter()
    code_commit()  # the commit of the code this process loaded
    for dataset in sets:
        networks = load_networks(cache, dataset.networks)
        data = dataset.data(cache)
        _write_dataset_info(cache, dataset, seeds, draws)
        restored = restore_from_table(cache, dataset, networks, seeds, draws, tables)
        if restored:
            print(f"{dataset.name}: {restored} networks restored from {tables}", flush=True)
        done = 0
        for index, network in enumerate(networks):
            if limit is not None and done >= limit:
                break
            if index % shard[1] != shard[0]:
                continue
            config = for_data(network["config"], data)
            todo = [
                seed for seed in seeds if not truth_path(cache, dataset.name, index, seed).is_file()
            ]
            for seed in todo:
                record = train_one(config, dataset, data, seed, device)
                _write(truth_path(cache, dataset.name, index, seed), record)
                print(
                    f"[{time.perf_counter() - started:7.0f} s] {dataset.name} net{index:03d} "
                    f"seed {seed}: top-1 {record['top1']:.1f} % ({record['seconds']:.0f} s)",
                    flush=True,
                )
            path = signals_path(cache, dataset.name, index)
            if not path.is_file():
                start = time.perf_counter()
                _write(path, signals_one(config, dataset, data, draws))
                print(
                    f"[{time.perf_counter() - started:7.0f} s] {dataset.name} net{index:03d} "
                    f"signals ({time.perf_counter() - start:.0f} s)",
                    flush=True,
                )
            done += 1


def same_network(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Whether two ArchConfig dicts build the same network. Compared in their canonical form:
    a row committed before a field existed (`rounding`, say) lacks it, and the field's default
    is what that row was trained with."""
    from neonas.arch import ArchConfig

    return ArchConfig.from_dict(first).to_dict() == ArchConfig.from_dict(second).to_dict()


def restore_from_table(
    cache: Path,
    dataset: Dataset,
    networks: list[dict[str, Any]],
    seeds: list[int],
    draws: int,
    tables: Path = DATA,
) -> int:
    """Write into the cache the ground truth and zero-cost signals of the networks the table
    in `tables` already holds; returns how many networks it restored.

    The committed table is the durable copy of the work (the cache lives outside the
    repository and is lost with the machine), so a session on a fresh machine continues the
    table instead of training it again. Only rows trained the way this run trains (same
    network, recipe, seeds and weight draws) are restored; supernet and short-training scores
    are not (`collect` keeps the table's columns, `keep_committed_signals`; `supernet` and
    `short` compute new ones for the whole table).
    """
    path = table_path(dataset.name, tables)
    if not path.is_file():
        return 0
    meta = provenance(dataset.name, tables)
    if meta.get("seeds") != seeds or meta.get("signal_weight_draws") != draws:
        return 0
    restored = 0
    for row in load_table(dataset.name, tables):
        index = row.index
        if (
            index >= len(networks)
            or not same_network(row.config, networks[index]["config"])
            or row.recipe != dataset.recipe()
        ):
            continue
        wrote = False
        for result in row.truth:
            target = truth_path(cache, dataset.name, index, result.seed)
            if result.seed in seeds and not target.is_file():
                _write(target, dataclasses.asdict(result))
                wrote = True
        target = signals_path(cache, dataset.name, index)
        if not target.is_file():
            kept = [name for name in SIGNALS + WEIGHT_FREE if name in row.signals]
            record = {
                "params": row.params,
                "flops": row.flops,
                "latency_ms": {str(batch): ms for batch, ms in row.latency_ms.items()},
                "hw": HW,
                "signals": {name: list(row.signals[name]) for name in kept},
                "signal_seconds": {name: row.signal_seconds[name] for name in kept},
                "restored_from": path.name,
            }
            _write(target, record)
            wrote = True
        restored += wrote
    return restored


def _write_dataset_info(cache: Path, dataset: Dataset, seeds: list[int], draws: int) -> None:
    """What the cache of a data set holds; a resumed run must train the same way."""
    path = cache / dataset.name / "dataset.json"
    info = {
        "dataset": dataset.name,
        "folder": None if dataset.folder is None else str(dataset.folder),
        "recipe": dataset.recipe(),
        "seeds": seeds,
        "draws": draws,
    }
    if path.is_file():
        old = json.loads(path.read_text())
        same = {key: old.get(key) for key in info}
        if same != info:
            raise UserError(
                f"{path} was trained as {json.dumps(same)}; this run asks for {json.dumps(info)} "
                "(use another --cache or another NAME)"
            )
        if dataset.networks <= old.get("networks", 0):
            return
    info["networks"] = dataset.networks
    info["command"] = "python benchmarks/neocell_bench.py " + " ".join(sys.argv[1:])
    _write(path, info)


# --- collect -------------------------------------------------------------------------------------


def collect(cache: Path, names: list[str] | None, out: Path) -> list[tuple[str, int, int]]:
    """Write the table and provenance of each data set from its complete networks; returns
    (data set, networks in the table, networks planned)."""
    found = sorted(path.parent.name for path in cache.glob("*/dataset.json"))
    unknown = sorted(set(names or []) - set(found))
    if unknown:
        raise UserError(f"no data set {', '.join(unknown)} in {cache} (found: {', '.join(found)})")
    written = []
    for name in names or found:
        info = json.loads((cache / name / "dataset.json").read_text())
        networks = load_networks(cache, info["networks"])
        rows, truths = [], []
        for index, network in enumerate(networks):
            paths = [truth_path(cache, name, index, seed) for seed in info["seeds"]]
            signals = signals_path(cache, name, index)
            if not all(p.is_file() for p in paths) or not signals.is_file():
                continue
            truth = [json.loads(p.read_text()) for p in paths]
            truths.extend(truth)
            measured = json.loads(signals.read_text())
            row = BenchRow(
                index=index,
                name=network["name"],
                origin=network["origin"],
                config=network["config"],
                params=measured["params"],
                flops=measured["flops"],
                latency_ms={int(b): ms for b, ms in measured["latency_ms"].items()},
                recipe=info["recipe"],
                truth=tuple(_seed_result(t) for t in truth),
                signals={k: tuple(v) for k, v in measured["signals"].items()},
                signal_seconds=measured["signal_seconds"],
            )
            rows.append(row_to_dict(row))
        indices = [row["index"] for row in rows]
        computed = {**supernet_signals(cache, name, indices), **short_signals(cache, name, indices)}
        for signal, records in computed.items():
            for row in rows:
                row["signals"][signal] = [records[row["index"]]["top1"]]
                row["signal_seconds"][signal] = records[row["index"]]["seconds"]
        keep_committed_signals(rows, out, name)
        out.mkdir(parents=True, exist_ok=True)
        table = out / f"{SPACE}-{name}.jsonl"
        table.write_text("".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows))
        finished = sorted(t["finished"] for t in truths)
        meta = {
            "dataset": name,
            "space": SPACE,
            "data": info["folder"] or f"built-in {name} (benchmarks/accuracy_signals.py)",
            "networks": len(rows),
            "networks_planned": info["networks"],
            "seeds": info["seeds"],
            "signal_weight_draws": info["draws"],
            "signal_weight_seeds": [WEIGHT_SEED + d for d in range(info["draws"])],
            "recipe": info["recipe"],
            "latency": f"{HW} (Ascend 310), predicted, batch {' and '.join(map(str, BATCHES))}",
            "command": info["command"],
            "commits": sorted({t["commit"] for t in truths}),
            "machines": sorted({t["machine"] for t in truths}),
            "first_finished": finished[0] if finished else None,
            "last_finished": finished[-1] if finished else None,
            "collected": _now(),
        }
        table.with_suffix(".meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        written.append((name, len(rows), info["networks"]))
    return written


def _trained_signal_order(name: str) -> tuple[bool, str]:
    return (not name.startswith("supernet"), name)


def keep_committed_signals(rows: list[dict[str, Any]], tables: Path, dataset: str) -> int:
    """Add to `rows` the trained signals (supernet, short training) that the table being
    replaced holds for the same network and this cache did not compute; returns how many.

    A fresh machine restores the ground truth and zero-cost signals (`restore_from_table`) but
    not the supernet and short-training columns, which took hours on other machines: without
    this, collecting one new supernet there would drop every other one from the table."""
    if not table_path(dataset, tables).is_file():
        return 0
    committed = {row.index: row for row in load_table(dataset, tables)}
    kept = 0
    for row in rows:
        old = committed.get(row["index"])
        if old is None or not same_network(old.config, row["config"]):
            continue
        for signal, values in old.signals.items():
            if signal.startswith(TRAINED_SIGNALS) and signal not in row["signals"]:
                row["signals"][signal] = list(values)
                row["signal_seconds"][signal] = old.signal_seconds[signal]
                kept += 1
        # in a full cache's order: zero-cost as computed, then supernets, short training by name
        zero_cost = [name for name in row["signals"] if not name.startswith(TRAINED_SIGNALS)]
        trained = sorted(set(row["signals"]) - set(zero_cost), key=_trained_signal_order)
        row["signals"] = {name: row["signals"][name] for name in zero_cost + trained}
    return kept


def _seed_result(record: dict[str, Any]) -> Any:
    from neonas.bench.table import SeedResult

    return SeedResult(
        **{key: record[key] for key in SeedResult.__dataclass_fields__}  # the stored fields only
    )


def compare_text(rows: list[BenchRow], signal: str, versus: str) -> str:
    """`compare`: one signal against another on the same networks, paired bootstrap SEs."""
    unknown = [name for name in (signal, versus) if name not in rows[0].signals]
    if unknown:
        raise UserError(f"no signal {unknown[0]!r} in this table (see `report` for its signals)")
    found = compare_signals(rows, signal, versus)
    return (
        f"{signal} minus {versus} ({len(rows)} networks, paired bootstrap SE): "
        f"tau {found['tau_difference']:+.3f} (SE {found['tau_se']:.3f}), "
        f"band tau {found['band_difference']:+.3f} (SE {found['band_se']:.3f})"
    )


# --- command line --------------------------------------------------------------------------------


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("train", help="train and score the missing networks (resumable)")
    run.add_argument("--cache", type=Path, required=True, help="the resumable cache folder")
    run.add_argument(
        "--dataset",
        action="append",
        help="digits, shapes, shapes-large, shapes-xl or NAME=DIR (ImageFolder tree or CIFAR-10 python "
        "folder); repeat for several, trained in order (default: digits)",
    )
    run.add_argument("--networks", type=int, help="per data set (default: digits 100, else 64)")
    run.add_argument("--epochs", type=int, help=f"NAME=DIR ground-truth epochs ({DEFAULT_EPOCHS})")
    run.add_argument("--seeds", default="0,1", help="ground-truth seeds (default 0,1)")
    run.add_argument("--draws", type=int, default=3, help="weight draws per signal (default 3)")
    run.add_argument("--device", default="cpu", help="training device, e.g. cuda (default cpu)")
    run.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    run.add_argument("--limit", type=int, help="stop after this many networks per data set")
    run.add_argument(
        "--shard",
        default="0/1",
        metavar="K/N",
        help="train only the networks whose index is K modulo N: N processes share a table",
    )
    run.add_argument(
        "--tables",
        type=Path,
        default=DATA,
        help="networks already in these tables are restored, not trained (default: committed)",
    )
    gather = commands.add_parser("collect", help="write the committed tables from the cache")
    gather.add_argument("--cache", type=Path, required=True)
    gather.add_argument("--dataset", action="append", help="default: every data set in the cache")
    gather.add_argument("--out", type=Path, default=DATA, help=f"table folder (default {DATA})")
    score = commands.add_parser(
        "supernet", help="score every network of a table with the data set's supernet"
    )
    score.add_argument("--cache", type=Path, required=True)
    score.add_argument("--dataset", default="digits", help="a built-in data set (digits)")
    score.add_argument(
        "--calib-images", type=int, help="BatchNorm re-estimation images (default: search's)"
    )
    score.add_argument(
        "--val-images", type=int, help="validation images scored, 0: all (default: search's)"
    )
    score.add_argument(
        "--sampling", default="uniform", help="supernet sampling rule: uniform, sandwich, fair"
    )
    score.add_argument("--epochs", type=int, default=30, help="supernet epochs (default 30)")
    score.add_argument(
        "--lr", type=float, default=2e-3, help="supernet peak learning rate (default 0.002)"
    )
    score.add_argument(
        "--seed", type=int, default=0, help="supernet seed: weights, data order, subnets (0)"
    )
    score.add_argument(
        "--few-shot",
        type=int,
        metavar="EPOCHS",
        help="split the supernet by transition plan, each part trained EPOCHS more epochs",
    )
    short = commands.add_parser(
        "short", help="short-train every network of a table as a search's trial does"
    )
    short.add_argument("--cache", type=Path, required=True)
    short.add_argument("--dataset", default="digits", help="a data set of the cache (digits)")
    short.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    short.add_argument(
        "--batch-size", type=int, help="instead of the search's 64: the same images, more steps"
    )
    by_plan = commands.add_parser(
        "plans", help="per transition plan: ground truth and supernet signals, averaged"
    )
    by_plan.add_argument("--dataset", default="digits", help="a committed table (digits)")
    by_plan.add_argument("--tables", type=Path, help="read tables here instead of the committed")
    pair = commands.add_parser(
        "compare", help="two signals of a table on the same networks: paired differences"
    )
    pair.add_argument("signal", help="a signal of the table, e.g. 'supernet, supernet-...'")
    pair.add_argument("versus", help="the signal to compare it with")
    pair.add_argument("--dataset", default="digits", help="a committed table (digits)")
    pair.add_argument("--tables", type=Path, help="read tables here instead of the committed")
    show = commands.add_parser("report", help="print the figures from the committed tables")
    show.add_argument("--json", action="store_true", help="one JSON object (the contract)")
    show.add_argument("--tables", type=Path, help="read tables here instead of the committed")
    args = parser.parse_args(argv)
    if args.command == "train":
        for name, value in (("--networks", args.networks), ("--epochs", args.epochs)):
            if value is not None and value < 1:
                raise UserError(f"{name} must be at least 1")
        if args.draws < 1:
            raise UserError("--draws must be at least 1")
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s]
        except ValueError:
            raise UserError(f"--seeds {args.seeds}: a comma-separated list of integers") from None
        sets = [parse_dataset(t, args.networks, args.epochs) for t in args.dataset or ["digits"]]
        import torch

        torch.set_num_threads(args.threads)
        shard = parse_shard(args.shard)
        train(args.cache, sets, seeds, args.draws, args.device, args.limit, shard, args.tables)
    elif args.command == "supernet":
        if not args.lr > 0:
            raise UserError(f"--lr {args.lr}: the learning rate must be positive")
        recipe = SupernetRecipe(
            sampling=args.sampling, epochs=args.epochs, lr=args.lr, seed=args.seed
        )
        score_with_supernet(
            args.cache,
            args.dataset,
            args.calib_images,
            args.val_images,
            recipe=recipe,
            few_shot_epochs=args.few_shot,
        )
    elif args.command == "short":
        import torch

        torch.set_num_threads(args.threads)
        short_train_table(args.cache, args.dataset, args.batch_size)
    elif args.command == "plans":
        print(plans_text(load_table(args.dataset, args.tables)))
    elif args.command == "compare":
        print(compare_text(load_table(args.dataset, args.tables), args.signal, args.versus))
    elif args.command == "collect":
        for name, count, planned in collect(args.cache, args.dataset, args.out):
            print(f"{name}: {count} of {planned} networks -> {args.out}/{SPACE}-{name}.jsonl")
    else:
        result = report(args.tables)
        if args.json:
            print(json.dumps(result))
        else:
            print(report_text(result, args.tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())

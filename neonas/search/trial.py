"""Scoring one candidate: the cheap screen in the driver, then the full evaluation in a trial.

`screen_candidate` runs before Ray sees a point (FLOPs and parameters against the budgets;
a fraction of a second). `score_candidate` runs inside a Ray Tune trial: latency on the
target (then the latency budget), matrix efficiency, and the accuracy signal: the zero-cost
score (on --data's images when there are some), the top-1 of the subnet in a trained supernet
(`--supernet`), or a short training reported per epoch (`--signal short-training`). Both take
an ArchConfig and return plain dicts of metrics. A network's initial weights, and every random
draw of its scoring, are seeded from the run's seed and the network (neonas/search/seeding.py):
it scores the same in every run, on every worker, whatever ran before it.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from neonas.arch import ArchConfig
from neonas.memory import release_freed_memory
from neonas.search.capacity import trial_device
from neonas.search.settings import EvalSettings

Report = Callable[[dict[str, Any]], None]
# (images per batch, batches) of a zero-cost signal on --data's training images.
DATA_BATCHES = (32, 2)
ScoreCandidate = Callable[[ArchConfig, EvalSettings, Report], None]


@dataclass(frozen=True)
class Screen:
    """What the driver learned before any expensive work, and whether the point may run."""

    flops: int
    params: int
    constraints: dict[str, float] = field(default_factory=dict)
    reason: str | None = None  # why it is rejected; None when it may run

    @property
    def rejected(self) -> bool:
        return self.reason is not None


def budget_slack(value: float, budget: float | None) -> float | None:
    """value / budget - 1: <= 0 within the budget, > 0 over it (Optuna's constraint convention)."""
    return None if budget is None else value / budget - 1.0


def screen_candidate(
    config: ArchConfig, budget_flops: int | None, budget_params: int | None
) -> Screen:
    """FLOPs and parameters of `config` (fvcore, as `profile` counts them) against the budgets."""
    from evaluators.metrics import compute_metrics
    from neonas.models import build_model
    from neonas.si import format_si

    shape = (config.in_chans, config.input_size, config.input_size)
    count = compute_metrics(build_model(config), shape, ["flops", "params"])
    flops, params = int(count["flops"]), int(count["params"])
    constraints = {}
    reasons = []
    for name, value, budget in (
        ("flops", flops, budget_flops),
        ("params", params, budget_params),
    ):
        slack = budget_slack(value, budget)
        if slack is not None:
            constraints[name] = slack
            if slack > 0:
                reasons.append(f"{format_si(value)} {name} over the budget of {format_si(budget)}")
    return Screen(flops, params, constraints, "; ".join(reasons) or None)


def mnas_reward(accuracy: float, latency_ms: float, target_ms: float, weight: float) -> float:
    """MnasNet's single objective: accuracy * (latency / target) ^ weight (weight < 0)."""
    return accuracy * (latency_ms / target_ms) ** weight


def score_candidate(config: ArchConfig, settings: EvalSettings, report: Report) -> None:
    """Latency, matrix efficiency and the accuracy signal of `config`, passed to `report`.

    Reports once for a zero-cost proxy and once per epoch for short training, every report a
    complete set of metrics with status "completed"; reports status "rejected" (and stops) when
    the latency is over its budget. Raises on a NaN score or loss: the trial is then failed.
    """
    from evaluators.metrics import LATENCY_METRICS, compute_metrics
    from neonas.canonical import network_key
    from neonas.models import build_model
    from neonas.search.seeding import seeded_build

    key = network_key(config)
    # Draw 0's weights: latency does not depend on them, and the signal scores this model
    # when its head fits (a large network takes as long to build as to score).
    model = seeded_build(lambda: build_model(config), settings.seed, key)
    shape = (config.in_chans, config.input_size, config.input_size)
    metrics: dict[str, Any] = {
        name: value
        for name, value in compute_metrics(model, shape, LATENCY_METRICS, settings.hw).items()
        if value is not None  # the breakdown exists for predicted latency only
    }
    latency_ms = metrics["latency_ms"]
    slack = budget_slack(latency_ms, settings.latency_budget_ms)
    if slack is not None:
        metrics["constraint_latency"] = slack
        if slack > 0:
            reason = (
                f"latency {latency_ms:.3g} ms over the budget of {settings.latency_budget_ms:g} ms"
            )
            # The objectives must be present in every result (Tune checks); -inf is never picked.
            worst = {"accuracy": -math.inf, "reward": -math.inf}
            report({**metrics, **worst, "status": "rejected", "reason": reason})
            return
    metrics.update(compute_metrics(model, shape, ["matrix_efficiency"]))
    if settings.supernet is not None:
        metrics.update(_supernet_score(config, settings))
        report(_completed(metrics, settings))
        return
    if settings.short_training:
        _short_training(config, settings, metrics, report, key)
        return
    classes = data_classes(settings.data) if settings.data is not None else config.num_classes
    metrics.update(
        zero_cost_signal(
            lambda: build_model(config, num_classes=classes),
            key,
            shape,
            classes,
            settings,
            # else the head it will have on --data is built per draw; latency was on config
            first=model if classes == config.num_classes else None,
        )
    )
    report(_completed(metrics, settings))


@functools.lru_cache(maxsize=1)
def data_classes(data: str) -> int:
    """The number of classes of a data folder (read once per process)."""
    from neonas.train.data import detect_layout

    return len(detect_layout(data).classes)


def zero_cost_signal(
    build: Callable[[], Any],
    key: str,
    shape: tuple[int, int, int],
    num_classes: int,
    settings: EvalSettings,
    first: Any = None,
) -> dict[str, Any]:
    """The run's zero-cost accuracy signal of the network `build()` makes, at (C, H, W), capped
    resolution: the mean over `settings.signal_draws` weight draws, each seeded from the run's
    seed and `key` (the network's canonical key), so it is the same in every run and process.

    With --data, a signal that reads images reads DATA_BATCHES training images (as
    benchmarks/accuracy_signals.py measured it); without, noise images with random labels,
    seeded from the run's seed and the draw: every network of a run sees the same ones.
    `first`: draw 0's model if the caller built it already (`seeding.seeded_build`); like every
    draw, it is moved to the trial's GPU when Ray gave the trial one and the signal runs the
    network (weights are drawn on the CPU first, so the draws are the same on either device).
    """
    from evaluators.proxies import noise_batches, zero_cost_score
    from neonas.search.seeding import draw_scores, noise_seed
    from neonas.signals import READS_IMAGES, RUNS_NETWORK

    size = min(shape[-1], settings.proxy_resolution)
    device = trial_device() if settings.signal in RUNS_NETWORK else "cpu"
    start = time.perf_counter()

    def score(model: Any, draw: int) -> float:
        if settings.data is not None and settings.signal in READS_IMAGES:
            batches = _image_batches(model, settings.data, size, settings.seed)
        else:
            batches = noise_batches(
                (shape[0], size, size),
                settings.proxy_batch,
                max(num_classes, 2),
                seed=noise_seed(settings.seed, draw),
            )
        if device != "cpu":
            model = model.to(device)
            batches = [(images.to(device), labels.to(device)) for images, labels in batches]
        return zero_cost_score(model, settings.signal, batches)

    scores = draw_scores(build, score, settings.seed, key, settings.signal_draws, first)
    return {
        "accuracy": sum(scores) / len(scores),
        "accuracy_signal": settings.accuracy_signal,
        "signal_s": time.perf_counter() - start,
    }


_IMAGE_BATCHES: dict[tuple[Any, ...], list[Any]] = {}


def _image_batches(model: Any, data: str, size: int, seed: int) -> list[Any]:
    """DATA_BATCHES of `data`'s training images as `model` is fed them, read once per process.

    A worker scores candidate after candidate on the same images, and loading them lists a
    whole ImageFolder tree or reads a whole CIFAR folder: cached, keyed by everything the
    evaluation transform depends on (the model's normalisation, interpolation and crop).
    """
    from timm.data import resolve_model_data_config

    config = resolve_model_data_config(model)
    key = (
        data,
        size,
        seed,
        *(str(config[k]) for k in ("mean", "std", "interpolation", "crop_pct")),
    )
    if key not in _IMAGE_BATCHES:
        from neonas.train.short_training import data_batches

        batch, count = DATA_BATCHES
        _IMAGE_BATCHES.clear()  # one data set per run: keep only the latest
        _IMAGE_BATCHES[key] = data_batches(
            model, data, batch_size=batch, count=count, image_size=size, seed=seed
        )
    return _IMAGE_BATCHES[key]


def _supernet_score(config: ArchConfig, settings: EvalSettings) -> dict[str, Any]:
    """Top-1 of the subnet with inherited weights, BatchNorm re-estimated (neonas.supernet)."""
    start = time.perf_counter()
    metrics = _scorer(
        settings.supernet, settings.data, settings.max_val_images, settings.seed, trial_device()
    ).evaluate(config)
    return {
        "accuracy": metrics["top1"],
        "accuracy_signal": settings.accuracy_signal,
        "val_loss": metrics["loss"],
        "signal_s": time.perf_counter() - start,
    }


@functools.lru_cache(maxsize=1)
def _scorer(checkpoint: str, data: str, max_val_images: int, seed: int, device: str) -> Any:
    """One SubnetScorer per worker process: the checkpoint and images are loaded once."""
    from neonas.supernet.scoring import SubnetScorer

    return SubnetScorer(checkpoint, data, max_val_images=max_val_images, seed=seed, device=device)


def _short_training(
    config: ArchConfig, settings: EvalSettings, metrics: dict[str, Any], report: Report, key: str
) -> None:
    from neonas.models import build_model
    from neonas.search.seeding import seeded_build
    from neonas.train.recipe import SHORT_TRAINING_DEFAULTS
    from neonas.train.short_training import short_train

    # The head fits the data; latency was measured on `config`. Initial weights seeded as a
    # zero-cost signal's (short_train seeds each epoch's data order and augmentation).
    classes = data_classes(settings.data)
    model = seeded_build(lambda: build_model(config, num_classes=classes), settings.seed, key)

    def on_epoch(epoch: int, values: dict[str, Any]) -> None:
        epoch_metrics = {
            **metrics,
            "accuracy": values["val_top1"],
            "accuracy_signal": settings.accuracy_signal,
            "val_loss": values["val_loss"],
            "epochs": epoch,
        }
        report(_completed(epoch_metrics, settings))

    short_train(
        model,
        settings.data,
        epochs=settings.epochs,
        image_size=settings.image_size or SHORT_TRAINING_DEFAULTS.image_size(config.input_size),
        batch_size=settings.batch_size,
        max_train_images=settings.max_train_images,
        max_val_images=settings.max_val_images,
        seed=settings.seed,
        on_epoch=on_epoch,
        device=trial_device(),  # cuda when Ray gave this trial a GPU (--gpus-per-trial)
    )


def _completed(metrics: dict[str, Any], settings: EvalSettings) -> dict[str, Any]:
    """Add status and, for the scalar objective, the MnasNet reward."""
    result = {**metrics, "status": "completed"}
    if settings.objective == "scalar":
        assert settings.latency_target_ms is not None
        result["reward"] = mnas_reward(
            metrics["accuracy"],
            metrics["latency_ms"],
            settings.latency_target_ms,
            settings.latency_weight,
        )
    return result


def check_finite(metrics: dict[str, Any]) -> None:
    """A completed result with a NaN or infinite objective fails its trial (FloatingPointError)."""
    if metrics.get("status") != "completed":
        return
    bad = {
        key: metrics[key]
        for key in ("accuracy", "latency_ms", "reward")
        if key in metrics and not math.isfinite(metrics[key])
    }
    if bad:
        raise FloatingPointError(
            "non-finite result: " + ", ".join(f"{k} {v}" for k, v in bad.items())
        )


def run_trial(tune_config: dict[str, Any], settings: EvalSettings, score: ScoreCandidate) -> None:
    """The Ray Tune function trainable: one candidate from the searcher, scored and reported."""
    import ray
    import torch
    from ray import tune

    torch.set_num_threads(settings.cpus_per_trial)
    config = ArchConfig.from_dict(tune_config["arch"])
    node = ray.get_runtime_context().get_node_id()
    fixed = {"number": tune_config["number"], "node": node, **tune_config["screen"]}

    def report(metrics: dict[str, Any]) -> None:
        check_finite(metrics)
        tune.report({**metrics, **fixed})

    try:
        score(config, settings, report)
    finally:
        # Tune runs the next trial in this process (a reused actor), in a new thread, and
        # glibc serves threads from several heaps (arenas) that each keep what their trials
        # freed: without this a worker grew by ~250 MB a trial, to 5.7-6.1 GB in 20-25
        # trials (benchmarks/README.md, "Memory per evaluating worker").
        release_freed_memory()

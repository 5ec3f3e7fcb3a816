"""The short training a search runs per candidate (`search --signal short-training`).

The training engine of `neonas train` (neonas/train/engine.py: data loading, timm parts,
seeded epochs) with the `short` recipe on a fixed random subset of the data, in one process
(a Ray Tune trial, usually one torch thread), without a run folder. Its defaults are
SHORT_TRAINING_DEFAULTS's (neonas/train/recipe.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from neonas.train.augment import data_config, eval_transform, train_transform
from neonas.train.data import (
    build_datasets,
    build_train_loader,
    build_val_loader,
    detect_layout,
    load_split,
)
from neonas.train.distributed import DistContext, resolve_device
from neonas.train.engine import Engine, build_step
from neonas.train.epoch import DivergedError, validate
from neonas.train.recipe import SHORT_TRAINING_DEFAULTS, get_recipe

__all__ = ["DivergedError", "data_batches", "short_train"]


def short_train(
    model: nn.Module,
    data_dir: str | Path,
    *,
    epochs: int = SHORT_TRAINING_DEFAULTS.epochs,
    image_size: int | None = None,
    batch_size: int = SHORT_TRAINING_DEFAULTS.batch_size,
    max_train_images: int | None = SHORT_TRAINING_DEFAULTS.max_train_images,
    max_val_images: int | None = SHORT_TRAINING_DEFAULTS.max_val_images,
    lr: float | None = None,
    seed: int = 0,
    validate_every: int = 1,
    on_epoch: Callable[[int, dict], None] | None = None,
    device: str = "cpu",
    workers: int = 0,
) -> dict[str, Any]:
    """Train `model` in place for a few epochs; returns val_top1 (percent), losses and images/s.

    image_size: None for SHORT_TRAINING_DEFAULTS.image_size of the model's input size.
    `on_epoch(epoch, metrics)` is called after each validated epoch (1-based), e.g. to report to
    Ray Tune; `validate_every` validates only every n-th epoch and the last (long benchmark runs).
    Raises DivergedError (a FloatingPointError) when the loss becomes NaN or infinite, and
    UserError for a missing or malformed data folder or a head that does not fit its classes.
    """
    if image_size is None:
        native = data_config(model, get_recipe("short"))["input_size"][-1]
        image_size = SHORT_TRAINING_DEFAULTS.image_size(native)
    recipe = get_recipe(
        "short",
        {
            "epochs": epochs,
            "batch_size": batch_size,
            "image_size": image_size,
            "lr": lr,
            "seed": seed,
        },
    )
    layout = detect_layout(data_dir)
    _check_head(model, len(layout.classes))
    inputs = data_config(model, recipe)
    datasets = build_datasets(
        layout,
        train_transform(recipe, inputs),
        eval_transform(inputs),
        max_train_images=max_train_images,
        max_val_images=max_val_images,
        seed=seed,
    )
    context = DistContext(rank=0, world_size=1, local_rank=0, device=resolve_device(device))
    train_loader = build_train_loader(
        datasets.train, batch_size=min(batch_size, len(datasets.train)), workers=workers, seed=seed
    )
    val_loader = build_val_loader(datasets.val, batch_size=max(batch_size, 128), workers=workers)

    model.to(context.device)
    engine = Engine(
        step=build_step(model, recipe, device=context.device, updates_per_epoch=len(train_loader)),
        train_loader=train_loader,
        context=context,
        seed=seed,
        epochs=epochs,
        updates_per_epoch=len(train_loader),
    )
    metrics: dict[str, Any] = {}
    train_time, images = 0.0, 0
    start = time.perf_counter()

    def end_of_epoch(epoch: int, stats: dict[str, float]) -> None:
        nonlocal metrics, train_time, images
        train_time += stats["train_time_s"]
        images += len(train_loader) * train_loader.batch_size
        if (epoch + 1) % validate_every and epoch + 1 < epochs:
            return
        val = validate(model, val_loader, context=context)
        metrics = {
            "epochs": epoch + 1,
            "train_loss": stats["train_loss"],
            "val_loss": val["loss"],
            "val_top1": val["top1"],
            "val_top5": val["top5"],
            "images_per_s": images / max(train_time, 1e-9),
            "seconds": time.perf_counter() - start,
        }
        if on_epoch is not None:
            on_epoch(epoch + 1, dict(metrics))

    engine.run(0, epochs, end_of_epoch)
    return metrics


def data_batches(
    model: nn.Module,
    data_dir: str | Path,
    *,
    batch_size: int = 32,
    count: int = 2,
    image_size: int = 32,
    seed: int = 0,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`count` batches of (images, labels) from the training split, as evaluation sees them.

    The real-data input of the zero-cost proxies (evaluators/proxies.py): a fixed random subset
    (seeded), resized and normalised for `model` like validation images, no augmentation.
    """
    recipe = get_recipe("short", {"image_size": image_size})
    layout = detect_layout(data_dir)
    images = load_split(
        layout,
        "train",
        eval_transform(data_config(model, recipe)),
        max_images=batch_size * count,
        seed=seed,
    )
    loader = build_val_loader(images, batch_size=batch_size, workers=0)
    batches = [(x, y) for x, y in loader]
    return [batch for batch in batches if len(batch[0]) == batch_size] or batches


def _check_head(model: nn.Module, num_classes: int) -> None:
    from neonas.errors import UserError

    classes = getattr(model, "num_classes", None)
    if classes is not None and classes != num_classes:
        raise UserError(
            f"the model has {classes} outputs but the data has {num_classes} classes: build it with num_classes={num_classes}"
        )

"""The short training a search runs per candidate (`search --signal short-training`).

Same data loading, timm parts and training epoch as `neonas train`, with the `proxy` recipe on
a fixed random subset of the data, in one process (a Ray Tune trial, usually one torch thread).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from neonas.train.augment import data_config, eval_transform, train_loss, train_transform
from neonas.train.data import build_train_loader, build_val_loader, detect_layout, load_split
from neonas.train.distributed import DistContext, resolve_device
from neonas.train.epoch import DivergedError, TrainStep, train_one_epoch, validate
from neonas.train.optim import build_optimizer, build_scheduler
from neonas.train.recipe import get_recipe
from neonas.train.trainer import epoch_seed, seed_everything

__all__ = ["DivergedError", "data_batches", "short_train"]


def short_train(
    model: nn.Module,
    data_dir: str | Path,
    *,
    epochs: int = 3,
    image_size: int = 32,
    batch_size: int = 64,
    max_train_images: int | None = 2000,
    max_val_images: int | None = 500,
    lr: float | None = None,
    seed: int = 0,
    validate_every: int = 1,
    on_epoch: Callable[[int, dict], None] | None = None,
    device: str = "cpu",
    workers: int = 0,
) -> dict[str, Any]:
    """Train `model` in place for a few epochs; returns val_top1 (percent), losses and images/s.

    `on_epoch(epoch, metrics)` is called after each validated epoch (1-based), e.g. to report to
    Ray Tune; `validate_every` validates only every n-th epoch and the last (long benchmark runs).
    Raises DivergedError (a FloatingPointError) when the loss becomes NaN or infinite, and
    UserError for a missing or malformed data folder or a head that does not fit its classes.
    """
    recipe = get_recipe(
        "proxy",
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
    train_set = load_split(
        layout, "train", train_transform(recipe, inputs), max_images=max_train_images, seed=seed
    )
    val_set = load_split(
        layout, "val", eval_transform(inputs), max_images=max_val_images, seed=seed
    )
    context = DistContext(rank=0, world_size=1, local_rank=0, device=resolve_device(device))
    train_loader = build_train_loader(
        train_set, batch_size=min(batch_size, len(train_set)), workers=workers, seed=seed
    )
    val_loader = build_val_loader(val_set, batch_size=max(batch_size, 128), workers=workers)

    model.to(context.device)
    optimizer = build_optimizer(model, recipe)
    step = TrainStep(
        model=model,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, recipe, len(train_loader)),
        loss_fn=train_loss(recipe),
        scaler=torch.amp.GradScaler(context.device.type, enabled=False),
    )
    metrics: dict[str, Any] = {}
    train_time, images = 0.0, 0
    start = time.perf_counter()
    for epoch in range(epochs):
        seed_everything(epoch_seed(seed, epoch, 0))
        train_loader.sampler.set_epoch(epoch)
        stats = train_one_epoch(step, train_loader, epoch=epoch, context=context)
        train_time += stats["train_time_s"]
        images += len(train_loader) * train_loader.batch_size
        if (epoch + 1) % validate_every and epoch + 1 < epochs:
            continue
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
    recipe = get_recipe("proxy", {"image_size": image_size})
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

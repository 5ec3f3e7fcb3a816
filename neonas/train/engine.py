"""The one training engine: `neonas train`, short training and the supernet's training run on it.

What the three have in common lives here: the optimiser, schedule, loss and AMP of a recipe
(`build_step`), the epoch loop with its per-epoch seeding (`Engine`), the resumable state of a
step (`Engine.state` / `Engine.restore`) and, for runs with a folder, metrics.csv and last.pt
(`RunRecord`). What differs is passed in: what one micro-batch does is the step's `StepHook`
(the supernet samples its subnets there), and what happens after an epoch (validation, the
checkpoint's other contents, a callback) is the caller's `end_of_epoch`.

Each epoch's randomness (shuffle, augmentation, Mixup, drop path) is seeded from
(seed, epoch, rank), so a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from neonas.errors import UserError
from neonas.io import copy_atomic
from neonas.train.augment import train_loss
from neonas.train.checkpoint import BEST, LAST, save_checkpoint
from neonas.train.data import DataError
from neonas.train.distributed import DistContext
from neonas.train.epoch import StepHook, TrainStep, train_one_epoch
from neonas.train.logs import EpochLog, EpochProgress
from neonas.train.optim import build_optimizer, build_scheduler
from neonas.train.recipe import Recipe
from neonas.train.resume import stopped_note

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `--amp` on this device (None: full precision)."""
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp not in AMP_DTYPES:
        raise UserError(f"unknown --amp {amp!r}: use auto, none, bf16 or fp16")
    return AMP_DTYPES[amp]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy (timm's Mixup and RandAugment use it) and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of one epoch on one rank: a resumed run reproduces it without stored RNG states."""
    return (seed * 1_000_003 + epoch * 10_007 + rank) % 2**63


def build_step(
    model: nn.Module,
    recipe: Recipe,
    *,
    device: torch.device,
    updates_per_epoch: int,
    wrapped: nn.Module | None = None,
    amp_dtype: torch.dtype | None = None,
    **settings: Any,
) -> TrainStep:
    """The recipe's optimiser (on `model`'s parameters), per-update schedule, loss and scaler.

    wrapped: the module the step runs (e.g. `model` inside DistributedDataParallel).
    settings: further TrainStep fields (mixup, ema, accum_steps, clip_grad, channels_last, hook).
    The GradScaler scales only under fp16, where gradients could underflow.
    """
    optimizer = build_optimizer(model, recipe)
    return TrainStep(
        model=model if wrapped is None else wrapped,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, recipe, updates_per_epoch),
        loss_fn=train_loss(recipe).to(device),
        scaler=torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16),
        amp_dtype=amp_dtype,
        **settings,
    )


@dataclass
class Engine:
    """A model's step, its training loader and the seeding of each epoch."""

    step: TrainStep
    train_loader: Any  # a build_train_loader DataLoader (its sampler reshuffles per epoch)
    context: DistContext
    seed: int
    epochs: int  # the run's length, shown in the progress bar
    updates_per_epoch: int

    @property
    def model(self) -> nn.Module:
        """The bare model (what checkpoints hold)."""
        return self.step.bare_model

    def train_epoch(self, epoch: int, progress: EpochProgress | None = None) -> dict[str, float]:
        """Seed the epoch from (seed, epoch, rank) and train it; the epoch's training stats."""
        seed_everything(epoch_seed(self.seed, epoch, self.context.rank))
        self.train_loader.sampler.set_epoch(epoch)
        if progress is None:
            return train_one_epoch(self.step, self.train_loader, epoch=epoch, context=self.context)
        with progress.epoch(epoch + 1, self.epochs, self.updates_per_epoch) as report:
            return train_one_epoch(
                self.step, self.train_loader, epoch=epoch, context=self.context, progress=report
            )

    def run(
        self,
        start: int,
        end: int,
        end_of_epoch: Callable[[int, dict[str, float]], None],
        *,
        progress: EpochProgress | None = None,
        checkpoint: Path | None = None,
    ) -> None:
        """Train epochs [start, end), calling `end_of_epoch(epoch, stats)` after each.

        checkpoint: the run's last.pt; a data error then also says which epoch it keeps.
        """
        for epoch in range(start, end):
            try:
                stats = self.train_epoch(epoch, progress)
                end_of_epoch(epoch, stats)
            except DataError as err:
                if checkpoint is None:
                    raise
                raise DataError(f"{err}; {stopped_note(checkpoint, epoch)}") from None

    def state(self) -> dict[str, Any]:
        """Model, optimiser, schedule and scaler: what a resume restores (checkpoint keys)."""
        step = self.step
        return {
            "model": self.model.state_dict(),
            "optimizer": step.optimizer.state_dict(),
            "scheduler": step.scheduler.state_dict(),
            "scaler": step.scaler.state_dict(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load what `state()` saved (and the EMA where both have one)."""
        step = self.step
        self.model.load_state_dict(state["model"])
        step.optimizer.load_state_dict(state["optimizer"])
        step.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):  # empty when saved without fp16; fp16 then starts a new scale
            step.scaler.load_state_dict(state["scaler"])
        if step.ema is not None and state.get("ema") is not None:
            step.ema.load_state_dict(state["ema"])


class RunRecord:
    """A run folder's record, written by rank 0: metrics.csv (and TensorBoard), last.pt, best.pt.

    A row is logged before its checkpoint is saved: a resume drops rows past its epoch.
    """

    def __init__(self, output: Path, *, start_epoch: int) -> None:
        self.output = output
        self.log = EpochLog(output, start_epoch=start_epoch)

    def write(self, row: dict[str, Any], state: dict[str, Any], *, best: bool = False) -> None:
        """Log `row`, save `state` as last.pt and, if `best`, copy it to best.pt."""
        self.log.write(row)
        save_checkpoint(self.output / LAST, state)
        if best:
            copy_atomic(self.output / LAST, self.output / BEST)

    def close(self) -> None:
        self.log.close()


__all__ = [
    "AMP_DTYPES",
    "Engine",
    "RunRecord",
    "StepHook",
    "build_step",
    "epoch_seed",
    "resolve_amp",
    "seed_everything",
]

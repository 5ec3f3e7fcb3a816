"""One training epoch and one validation pass: the inner loop of the training engine.

`train`, short training and the supernet's training all run `train_one_epoch`; what one
micro-batch does (one network on the labels, or several subnets of a supernet) is its
`StepHook`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from timm.utils import dispatch_clip_grad
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from neonas.train.distributed import DistContext, all_reduce_sum

# The loss is read back (a device sync, and an all-reduce under DDP) every this many updates.
CHECK_EVERY_UPDATES = 10


class DivergedError(FloatingPointError):
    """The training loss became NaN or infinite: the run cannot recover, stop it."""


@dataclass
class TrainStep:
    """What one optimiser update needs: model, optimiser, schedule, loss and their settings."""

    model: nn.Module  # possibly wrapped in DistributedDataParallel
    optimizer: torch.optim.Optimizer
    scheduler: Any  # timm Scheduler, stepped per update
    loss_fn: nn.Module
    scaler: torch.amp.GradScaler
    mixup: Callable | None = None
    ema: Any | None = None  # timm ModelEmaV3
    amp_dtype: torch.dtype | None = None
    accum_steps: int = 1
    clip_grad: float | None = None
    channels_last: bool = False
    hook: StepHook | None = None  # None: the base StepHook, the model on the labels

    @property
    def bare_model(self) -> nn.Module:
        """The model without its DDP wrapper (what EMA and checkpoints hold)."""
        return self.model.module if isinstance(self.model, DistributedDataParallel) else self.model


# Per micro-batch, each logged loss as (sum over its images, images); "train_loss" is required.
Losses = dict[str, tuple[torch.Tensor, int]]


class StepHook:
    """What one micro-batch does between loading and the optimiser update: the step hook.

    The default trains `step.model` on the labels; the supernet's hook runs the subnets it
    samples for the step. `backward` leaves the gradients in the parameters and returns the
    losses to log; `before_update` runs once per update, before clipping and the optimiser.
    """

    def backward(
        self,
        step: TrainStep,
        images: torch.Tensor,
        targets: torch.Tensor,
        *,
        epoch: int,
        micro: int,
        is_update: bool,
    ) -> Losses:
        model = step.model
        # Under DDP, gradients are all-reduced only on the micro-batch that completes an update.
        no_sync = not is_update and isinstance(model, DistributedDataParallel)
        with model.no_sync() if no_sync else nullcontext():
            with torch.autocast(
                images.device.type, dtype=step.amp_dtype, enabled=step.amp_dtype is not None
            ):
                loss = step.loss_fn(model(images), targets)
            step.scaler.scale(loss / step.accum_steps).backward()
        return {"train_loss": (loss.detach().double() * images.size(0), images.size(0))}

    def before_update(self, step: TrainStep) -> None:
        """Nothing by default: DDP has already averaged the gradients."""


LABEL_STEP = StepHook()

ProgressFn = Callable[[int, int, float, float], None]  # (updates done, updates total, loss, lr)


def train_one_epoch(
    step: TrainStep,
    loader: DataLoader,
    *,
    epoch: int,
    context: DistContext,
    progress: ProgressFn | None = None,
) -> dict[str, float]:
    """Train on every full accumulation group of `loader`; returns the losses, LR and images/s."""
    model, device = step.model, context.device
    hook = step.hook or LABEL_STEP
    model.train()
    updates_total = len(loader) // step.accum_steps
    num_updates = epoch * updates_total
    sums: dict[str, torch.Tensor] = {}  # per loss: (sum over images, images), float64
    seen, mean_loss = 0, float("nan")
    step.optimizer.zero_grad(set_to_none=True)
    start = time.perf_counter()
    for micro, (images, targets) in enumerate(loader):
        if micro >= updates_total * step.accum_steps:
            break  # an incomplete accumulation group at the end is dropped, like drop_last
        images, targets = _to_device(images, targets, device, step)
        is_update = (micro + 1) % step.accum_steps == 0
        losses = hook.backward(step, images, targets, epoch=epoch, micro=micro, is_update=is_update)
        for name, (total, count) in losses.items():
            if name not in sums:
                sums[name] = torch.zeros(2, device=device, dtype=torch.float64)
            sums[name][0] += total
            sums[name][1] += count
        seen += images.size(0)
        if not is_update:
            continue
        hook.before_update(step)
        if step.clip_grad is not None:
            step.scaler.unscale_(step.optimizer)
            dispatch_clip_grad(model.parameters(), step.clip_grad)
        step.scaler.step(step.optimizer)
        step.scaler.update()
        step.optimizer.zero_grad(set_to_none=True)
        num_updates += 1
        step.scheduler.step_update(num_updates=num_updates)
        if step.ema is not None:
            step.ema.update(step.bare_model, step=num_updates)
        done = num_updates - epoch * updates_total
        if done % CHECK_EVERY_UPDATES == 0 or done == updates_total:
            mean_loss = _checked_mean(sums["train_loss"], context, epoch, done)
        if progress is not None:  # the bar moves every update; the loss shown is the last checked
            progress(done, updates_total, mean_loss, current_lr(step.optimizer))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    others = {name: _mean(total, context) for name, total in sums.items() if name != "train_loss"}
    return {
        "train_loss": mean_loss,
        **others,
        "lr": current_lr(step.optimizer),
        "images_per_s": seen * context.world_size / max(elapsed, 1e-9),
        "train_time_s": elapsed,
    }


@torch.no_grad()
def validate(
    model: nn.Module,
    loader: DataLoader,
    *,
    context: DistContext,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> dict[str, float]:
    """Cross-entropy, top-1 and top-5 (percent) over the whole split, summed over all ranks."""
    model.eval()
    device = context.device
    totals = torch.zeros(4, dtype=torch.float64)  # loss sum, top-1 hits, top-5 hits, images
    for images, targets in loader:
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(images)
        logits = logits.float()
        top = logits.topk(min(5, logits.size(1)), dim=1).indices
        hits = top.eq(targets[:, None])
        totals += torch.stack(
            [
                nn.functional.cross_entropy(logits, targets, reduction="sum").double().cpu(),
                hits[:, :1].sum().double().cpu(),
                hits.sum().double().cpu(),
                torch.tensor(float(targets.numel()), dtype=torch.float64),
            ]
        )
    loss, top1, top5, count = all_reduce_sum(totals, context).tolist()
    count = max(count, 1.0)
    return {
        "loss": loss / count,
        "top1": 100.0 * top1 / count,
        "top5": 100.0 * top5 / count,
        "images": int(count),
    }


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The largest LR over the parameter groups (they differ only by weight decay here)."""
    return max(group["lr"] for group in optimizer.param_groups)


def _to_device(
    images: torch.Tensor, targets: torch.Tensor, device: torch.device, step: TrainStep
) -> tuple:
    images = images.to(device, non_blocking=True)
    targets = targets.to(device, non_blocking=True)
    if step.mixup is not None:
        images, targets = step.mixup(images, targets)
    if step.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, targets


def _mean(total: torch.Tensor, context: DistContext) -> float:
    """A loss's (sum, images) as its mean over every rank's images."""
    # a copy: all_reduce_sum reduces in place, and the running sums must stay this rank's
    summed = all_reduce_sum(total.detach().to("cpu", copy=True), context)
    return (summed[0] / summed[1].clamp(min=1)).item()


def _checked_mean(total: torch.Tensor, context: DistContext, epoch: int, update: int) -> float:
    # Summed over ranks, so every rank takes the same decision and none waits forever on the others.
    mean = _mean(total, context)
    if not torch.isfinite(torch.tensor(mean)):
        raise DivergedError(
            f"the training loss became {mean} at epoch {epoch + 1}, update {update}: lower the LR"
        )
    return mean

"""The optimiser and LR schedule of a recipe, from timm's factories."""

from __future__ import annotations

from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.scheduler.scheduler import Scheduler
from torch import nn
from torch.optim import Optimizer

from neonas.errors import UserError
from neonas.train.recipe import Recipe


def build_optimizer(model: nn.Module, recipe: Recipe) -> Optimizer:
    """timm optimiser at the recipe's peak LR; no weight decay on 1-d tensors or no_weight_decay()."""
    try:
        return create_optimizer_v2(
            model,
            opt=recipe.opt,
            lr=recipe.peak_lr,
            weight_decay=recipe.weight_decay,
            momentum=recipe.momentum,
            betas=recipe.betas,
            filter_bias_and_bn=True,
        )
    except (ValueError, AssertionError) as err:
        raise UserError(f"recipe opt {recipe.opt!r}: {err}") from None


def build_scheduler(optimizer: Optimizer, recipe: Recipe, updates_per_epoch: int) -> Scheduler:
    """timm schedule stepped per optimiser update: linear warm-up to the peak, then the decay.

    As in ConvNeXt, the decay (e.g. cosine) starts at the peak after warm-up and spans the
    remaining epochs, so warm-up plus decay is `recipe.epochs`.
    """
    try:
        scheduler, _ = create_scheduler_v2(
            optimizer,
            sched=recipe.sched,
            num_epochs=recipe.epochs - recipe.warmup_epochs,
            warmup_prefix=True,
            warmup_epochs=recipe.warmup_epochs,
            warmup_lr=recipe.warmup_lr,
            min_lr=recipe.min_lr,
            step_on_epochs=False,
            updates_per_epoch=updates_per_epoch,
        )
    except (ValueError, AssertionError) as err:
        raise UserError(f"recipe sched {recipe.sched!r}: {err}") from None
    if scheduler is None:
        raise UserError(f"recipe sched {recipe.sched!r} is not a schedule: use e.g. cosine or step")
    return scheduler

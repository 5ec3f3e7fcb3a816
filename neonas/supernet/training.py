"""Training the supernet, on the parts of `neonas train`. Two sampling rules:

- `sandwich` (BigNAS): each step runs the largest subnet on the labels, then the smallest and
  `random_subnets` random subnets on the largest's (detached) predictions, summing their
  gradients into one optimiser update (Yu et al., BigNAS, ECCV 2020; sandwich rule and in-place
  distillation from Slimmable/US-Nets);
- `uniform` (single-path one-shot, Guo et al., ECCV 2020): each step runs `random_subnets`
  subnets drawn uniformly from the space, each on the labels, one update from the summed
  gradients. No network is favoured: each is trained as often as a uniform draw picks it.

The sandwich trains the largest and smallest networks' choices (their transition ratios among
them) at every step and the others only through the random draws; on the tiny space that bias
decides the ranking (benchmarks/README.md, "Accuracy signals").

Data layouts, transforms, the timm optimiser and schedule, atomic checkpoints, metrics.csv,
TensorBoard and the progress bar are those of `neonas train`; the recipe is the `proxy` preset
(AdamW, light augmentation) renamed `supernet`.

Exact resume: the epoch's randomness (shuffle, augmentation) is seeded from (seed, epoch, rank)
and each step's subnets from (seed, epoch, step), so a run killed and resumed from last.pt
ends with the same weights as one that was never interrupted.

Distributed: under torchrun every process computes its shard's gradients for the same
subnets, which are then averaged over processes (all-reduce), i.e. the update DDP would make;
plain all-reduce instead of DDP, because each subnet uses a different part of the weights.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from timm.loss import SoftTargetCrossEntropy
from torch import nn

from neonas.arch import ArchConfig
from neonas.errors import UserError
from neonas.io import write_json_atomic
from neonas.options import check_resumed
from neonas.space import SearchSpace, load_space, space_from_yaml
from neonas.supernet.checkpoint import SPEC_KEY
from neonas.supernet.coverage import sandwich
from neonas.supernet.network import SuperNet
from neonas.supernet.scoring import CALIB_IMAGES, ScoringData, evaluate_subnet
from neonas.train.augment import data_config, eval_transform, train_loss, train_transform
from neonas.train.checkpoint import LAST, load_checkpoint, save_checkpoint
from neonas.train.data import (
    DataError,
    build_train_loader,
    build_val_loader,
    detect_layout,
    load_split,
)
from neonas.train.distributed import DistContext, barrier, run_distributed
from neonas.train.epoch import DivergedError, current_lr
from neonas.train.logs import EpochLog, EpochProgress
from neonas.train.optim import build_optimizer, build_scheduler
from neonas.train.options import (
    MIN_STEPS,
    RANDOM_SUBNETS,
    SAMPLINGS,
    SUPERNET_BATCH,
    SUPERNET_EPOCHS,
    SUPERNET_RUN_OPTIONS,
    SUPERNET_SEED,
    SUPERNET_TRAIN_OPTIONS,
)
from neonas.train.recipe import Recipe, get_recipe
from neonas.train.resume import stopped_note
from neonas.train.trainer import epoch_seed, preflight, resolve_amp, seed_everything

DEFAULT_EPOCHS = SUPERNET_EPOCHS
# SupernetJob fields recorded in the checkpoint (declared in neonas/train/options.py): they
# decide every batch and subnet, so a resume uses the recorded ones and refuses others.
RUN_OPTIONS = SUPERNET_RUN_OPTIONS


@dataclass
class SupernetJob:
    """A supernet training as plain data (what `neonas supernet train` parsed)."""

    output_dir: str
    space: str | None = None  # name or YAML file; on resume, the checkpoint's space is used
    data_dir: str | None = None
    epochs: int | None = None  # None: default_epochs(optimizer steps per epoch)
    batch_size: int = SUPERNET_BATCH
    lr: float | None = None
    seed: int = SUPERNET_SEED
    random_subnets: int | None = None  # None: RANDOM_SUBNETS[sampling]
    sampling: str = SAMPLINGS[0]
    max_train_images: int | None = None
    max_val_images: int | None = None
    calib_images: int = CALIB_IMAGES
    resume: bool = False
    stop_after: int | None = None  # epochs to run in this invocation (then --resume continues)
    device: str = "auto"
    amp: str = "auto"  # auto: bf16 (fp16 without bf16 support) on CUDA, none on CPU
    workers: int = 0
    progress: bool = True
    # RUN_OPTIONS the command line gave to a resume: each must equal the recorded value, so
    # the command that started the run, re-run with --resume added, continues it.
    given: dict[str, Any] = field(default_factory=dict)


def default_epochs(updates_per_epoch: int) -> int:
    """DEFAULT_EPOCHS, or more when that would make fewer than MIN_STEPS optimizer steps."""
    return max(DEFAULT_EPOCHS, math.ceil(MIN_STEPS / updates_per_epoch))


def supernet_recipe(epochs: int, batch_size: int, lr: float | None, seed: int) -> Recipe:
    """The `proxy` preset (AdamW, light augmentation), renamed: short runs on small images."""
    recipe = get_recipe("proxy", {"batch_size": batch_size, "lr": lr, "seed": seed})
    warmup = min(recipe.warmup_epochs, epochs / 2)
    return dataclasses.replace(recipe, name="supernet", epochs=epochs, warmup_epochs=warmup)


def train_supernet(
    space: str | Path,
    data_dir: str | Path,
    *,
    output_dir: str | Path,
    epochs: int | None = None,
    resume: bool = False,
    **options: Any,
) -> Path:
    """Train (or resume) the supernet of `space` on `data_dir`; returns the last.pt path.

    epochs: None for default_epochs (10, more on a small data set).
    resume: continue the run in output_dir; options given must equal the recorded ones.
    options: SupernetJob fields (batch_size, lr, seed, random_subnets, sampling,
    max_train_images, max_val_images, calib_images, device, workers, progress; progress
    defaults off here).
    """
    options.setdefault("progress", False)
    given = {
        key: value
        for key, value in {**options, "epochs": epochs}.items()
        if key in RUN_OPTIONS and value is not None
    }
    job = SupernetJob(
        output_dir=str(output_dir),
        space=str(space),
        data_dir=str(data_dir),
        epochs=epochs,
        resume=resume,
        given=given if resume else {},
        **options,
    )
    run_supernet_training(job)
    return Path(output_dir) / LAST


def run_supernet_training(job: SupernetJob) -> dict[str, Any]:
    """Train (or resume) the run `job` describes; returns the summary written to metrics.json."""
    return run_distributed(job, job.device, _train)


@dataclass
class _Run:
    space: SearchSpace
    recipe: Recipe
    job: SupernetJob
    classes: tuple[str, ...]
    data_dir: str
    inputs: dict[str, Any]
    supernet: SuperNet
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loss_fn: nn.Module
    amp_dtype: torch.dtype | None
    scaler: torch.amp.GradScaler
    train_loader: Any
    images: tuple[int, int]  # training and validation images
    scoring: ScoringData
    updates_per_epoch: int


def checked_sampling(job: SupernetJob) -> SupernetJob:
    """`job` with its sampling rule checked and the default subnet count filled in."""
    if job.sampling not in SAMPLINGS:
        raise UserError(f"--sampling must be one of {', '.join(SAMPLINGS)}, got {job.sampling!r}")
    count = RANDOM_SUBNETS[job.sampling] if job.random_subnets is None else job.random_subnets
    least = 1 if job.sampling == "uniform" else 0  # the sandwich has its largest and smallest
    if count < least:
        raise UserError(
            f"--random-subnets must be {least} or more with --sampling {job.sampling}"
            + (" (--sampling sandwich trains the largest and smallest alone)" if least else "")
        )
    return dataclasses.replace(job, random_subnets=count)


def _train(job: SupernetJob, context: DistContext) -> dict[str, Any]:
    output = Path(job.output_dir).expanduser()
    state = _resume_state(job, output)
    if state:
        job = _stored_job(job, state)
        if int(state["world_size"]) != context.world_size:
            raise UserError(
                f"this supernet trained on {state['world_size']} process(es); resume it on the same "
                f"number (now {context.world_size}) so that every step sees the same batches"
            )
    job = checked_sampling(job)
    run = _prepare(job, context, state)
    start_epoch = int(state["epoch"]) if state else 0
    if state:
        run.supernet.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):  # empty without fp16
            run.scaler.load_state_dict(state["scaler"])
        if start_epoch >= run.recipe.epochs:
            raise UserError(
                f"the supernet in {output} already finished all {run.recipe.epochs} epochs"
            )
    if context.is_main:
        print(_start_line(run, context, start_epoch), flush=True)
    log = EpochLog(output, start_epoch=start_epoch) if context.is_main else None
    progress = EpochProgress(enabled=job.progress and context.is_main)
    row: dict[str, Any] = dict(state["metrics"]) if state else {}
    end_epoch = run.recipe.epochs
    if job.stop_after is not None:
        end_epoch = min(end_epoch, start_epoch + job.stop_after)
    try:
        for epoch in range(start_epoch, end_epoch):
            try:
                with progress.epoch(epoch + 1, run.recipe.epochs, run.updates_per_epoch) as report:
                    stats = _train_epoch(run, context, epoch, report)
            except DataError as err:
                raise DataError(f"{err}; {stopped_note(output / LAST, epoch)}") from None
            row = {"epoch": epoch + 1, **stats}
            if context.is_main:
                row.update(_validate(run))
                log.write(row)
                save_checkpoint(output / LAST, _checkpoint(run, context, row))
                print(_summary_line(row, run.recipe.epochs), flush=True)
            barrier(context)
    finally:
        if log is not None:
            log.close()
    summary = {
        "space": run.space.name,
        "epochs": run.recipe.epochs,
        "epochs_done": end_epoch,
        "finished": end_epoch >= run.recipe.epochs,
        "classes": len(run.classes),
        "params": sum(p.numel() for p in run.supernet.parameters()),
        **{key: value for key, value in row.items() if key != "epoch"},
    }
    if context.is_main:
        write_json_atomic(output / "metrics.json", summary)
    return summary


def _prepare(job: SupernetJob, context: DistContext, state: dict[str, Any] | None) -> _Run:
    if state:
        info = state["model_spec"][SPEC_KEY]
        space = space_from_yaml(info["space_text"], info["space_source"])
    else:
        if not job.space:
            raise UserError("give --space NAME|FILE, the search space the supernet covers")
        space = load_space(job.space)
    if not job.data_dir:
        raise UserError(
            "no data: pass --data DIR (an ImageFolder tree or a CIFAR-10 python folder)"
        )
    recipe = supernet_recipe(job.epochs or DEFAULT_EPOCHS, job.batch_size, job.lr, job.seed)
    layout = detect_layout(job.data_dir)
    if state and list(state["classes"]) != list(layout.classes):
        raise UserError(f"{job.data_dir} has other classes than the supernet was trained on")
    seed_everything(recipe.seed)  # the same initial weights on every rank
    supernet = SuperNet(space, len(layout.classes))
    inputs = dict(data_config(supernet, recipe))
    train_set = load_split(
        layout,
        "train",
        train_transform(recipe, inputs),
        max_images=job.max_train_images,
        seed=recipe.seed,
    )
    val_set = load_split(
        layout, "val", eval_transform(inputs), max_images=job.max_val_images, seed=recipe.seed
    )
    if recipe.batch_size % context.world_size:
        raise UserError(
            f"batch size {recipe.batch_size} does not split over {context.world_size} processes"
        )
    device_batch = recipe.batch_size // context.world_size
    train_loader = build_train_loader(
        train_set,
        batch_size=device_batch,
        workers=job.workers,
        seed=recipe.seed,
        rank=context.rank,
        world_size=context.world_size,
    )
    updates = len(train_loader)
    if updates == 0:
        raise UserError(
            f"the training split has {len(train_set)} images, fewer than one batch of "
            f"{recipe.batch_size}: lower --batch-size"
        )
    if job.epochs is None:
        job = dataclasses.replace(job, epochs=default_epochs(updates))
        recipe = supernet_recipe(job.epochs, job.batch_size, job.lr, job.seed)
    supernet.to(context.device)
    optimizer = build_optimizer(supernet, recipe)
    amp_dtype = resolve_amp(job.amp, context.device)
    calib = load_split(
        layout, "train", eval_transform(inputs), max_images=job.calib_images, seed=recipe.seed
    )
    scoring = ScoringData(
        calib=[images for images, _ in build_val_loader(calib, batch_size=128, workers=0)],
        val=list(build_val_loader(val_set, batch_size=128, workers=job.workers)),
    )
    return _Run(
        space=space,
        recipe=recipe,
        job=job,
        classes=layout.classes,
        data_dir=str(Path(job.data_dir).expanduser().resolve()),
        inputs=inputs,
        supernet=supernet,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, recipe, updates),
        loss_fn=train_loss(recipe).to(context.device),
        amp_dtype=amp_dtype,
        scaler=torch.amp.GradScaler(context.device.type, enabled=amp_dtype == torch.float16),
        train_loader=train_loader,
        images=(len(train_set), len(val_set)),
        scoring=scoring,
        updates_per_epoch=updates,
    )


def step_subnets(
    space: SearchSpace, sampling: str, random_subnets: int, seed: int, epoch: int, step: int
) -> list[ArchConfig]:
    """The subnets of one step, drawn from (seed, epoch, step): the same on every rank and in
    every resumed run. With the sandwich the first one teaches the others."""
    rng = random.Random(f"{seed}-{epoch}-{step}")
    if sampling == "uniform":
        return [space.sample(rng) for _ in range(random_subnets)]
    return sandwich(space, rng, random_subnets)


def _train_epoch(run: _Run, context: DistContext, epoch: int, report: Any) -> dict[str, float]:
    seed_everything(epoch_seed(run.recipe.seed, epoch, context.rank))
    run.train_loader.sampler.set_epoch(epoch)
    supernet, device = run.supernet, context.device
    supernet.train()
    distill = SoftTargetCrossEntropy()

    def autocast() -> torch.autocast:
        return torch.autocast(device.type, dtype=run.amp_dtype, enabled=run.amp_dtype is not None)

    distilling = run.job.sampling == "sandwich"  # the first subnet teaches the others
    # label loss, its subnets, distillation loss, its subnets (all times images), images
    sums = torch.zeros(5, dtype=torch.float64)
    start = time.perf_counter()
    for step, (images, targets) in enumerate(run.train_loader):
        images, targets = images.to(device), targets.to(device)
        teacher = None
        count = images.size(0)
        job = run.job
        for config in step_subnets(
            run.space, job.sampling, job.random_subnets, run.recipe.seed, epoch, step
        ):
            with autocast():
                logits = supernet(images, config).float()
                if teacher is None:
                    loss = run.loss_fn(logits, targets)
                else:
                    loss = distill(logits, teacher)
            if not torch.isfinite(loss):  # before the update: the last checkpoint stays good
                raise DivergedError(
                    f"the supernet's loss became {loss.item()} at epoch {epoch + 1}: lower --lr"
                )
            run.scaler.scale(loss).backward()
            column = 0 if teacher is None else 2
            sums[column] += loss.item() * count
            sums[column + 1] += count
            if distilling and teacher is None:
                teacher = logits.detach().softmax(dim=1)
        if context.is_distributed:
            _average_gradients(supernet, context.world_size)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.optimizer.zero_grad(set_to_none=True)
        run.scheduler.step_update(num_updates=epoch * run.updates_per_epoch + step + 1)
        sums[4] += count
        if report is not None:
            report(
                step + 1,
                run.updates_per_epoch,
                sums[0].item() / sums[1].item(),
                current_lr(run.optimizer),
            )
    elapsed = time.perf_counter() - start
    if context.is_distributed:
        dist.all_reduce(sums)
    stats = {"train_loss": sums[0].item() / sums[1].item()}
    if distilling:  # the smallest subnet is always a student
        stats["distill_loss"] = sums[2].item() / sums[3].item()
    return {
        **stats,
        "lr": current_lr(run.optimizer),
        "images_per_s": sums[4].item() / max(elapsed, 1e-9),
        "train_time_s": elapsed,
    }


def _average_gradients(module: nn.Module, world_size: int) -> None:
    """Average gradients over processes. Every rank ran the same subnets, so the same
    parameters have gradients everywhere; the others stay without one, as in one process."""
    for param in module.parameters():
        if param.grad is not None:
            dist.all_reduce(param.grad)
            param.grad /= world_size


def _validate(run: _Run) -> dict[str, float]:
    """Held-out top-1 of the largest and smallest subnets, BatchNorm re-estimated for each."""
    row = {}
    for name, config in (("largest", run.supernet.largest), ("smallest", run.space.smallest())):
        metrics = evaluate_subnet(run.supernet, config, run.scoring)
        row[f"{name}_val_top1"] = metrics["top1"]
        row[f"{name}_val_loss"] = metrics["loss"]
    run.supernet.train()
    return row


def _checkpoint(run: _Run, context: DistContext, row: dict[str, Any]) -> dict[str, Any]:
    job = run.job
    return {
        "epoch": row["epoch"],
        "model": run.supernet.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(),
        "recipe": run.recipe.to_dict(),
        "model_spec": {SPEC_KEY: {"space_text": run.space.text, "space_source": run.space.source}},
        "classes": list(run.classes),
        "data_dir": run.data_dir,
        "data_config": run.inputs,
        "metrics": row,
        "world_size": context.world_size,
        "run_options": {key: getattr(job, key) for key in RUN_OPTIONS},
    }


def preflight_supernet(job: SupernetJob) -> None:
    """Check the folder, the data and the space before starting workers; UserError if wrong."""
    preflight(job)  # the folder and the data, as `neonas train` checks them
    checked_sampling(job)
    if job.space and not job.resume:
        load_space(job.space)


def _resume_state(job: SupernetJob, output: Path) -> dict[str, Any] | None:
    preflight(job)
    if not job.resume:
        return None
    state = load_checkpoint(output / LAST)
    if SPEC_KEY not in state.get("model_spec", {}):
        raise UserError(f"{output / LAST} is not a supernet checkpoint")
    return state


def _stored_job(job: SupernetJob, state: dict[str, Any]) -> SupernetJob:
    """The job with the options the run started with (they decide every batch and subnet).

    Options given again are accepted when equal to the recorded ones and refused otherwise,
    as `neonas train --resume` does; so is a --space that is another space.
    """
    check_resumed(job.given, state["run_options"], SUPERNET_TRAIN_OPTIONS)
    options = {"sampling": "sandwich", **state["run_options"]}  # older runs: the sandwich
    info = state["model_spec"][SPEC_KEY]
    if job.space and load_space(job.space).spec != space_from_yaml(info["space_text"]).spec:
        raise UserError(
            f"--space {job.space} is another space than the {info['space_source']} this "
            "training started with: leave it out to continue, or start a new --output"
        )
    return dataclasses.replace(job, **options, data_dir=job.data_dir or state["data_dir"])


def _start_line(run: _Run, context: DistContext, start_epoch: int) -> str:
    params = sum(p.numel() for p in run.supernet.parameters())
    if run.job.sampling == "uniform":
        rule = f"{run.job.random_subnets} uniformly drawn subnets per step on the labels"
    else:
        rule = f"sandwich of largest + smallest + {run.job.random_subnets} random per step"
    text = (
        f"supernet {run.space.name}: {params / 1e6:.2f}M parameters, {run.images[0]} train / "
        f"{run.images[1]} val images, {len(run.classes)} classes, {rule}, "
        f"{run.recipe.epochs} epochs of {run.updates_per_epoch} steps, "
        f"batch {run.recipe.batch_size} on "
        f"{context.world_size} process(es), peak lr {run.recipe.peak_lr:.3g}, device {context.device}"
    )
    return text + (f", resuming after epoch {start_epoch}" if start_epoch else "")


def _summary_line(row: dict[str, Any], epochs: int) -> str:
    distill = f"distill_loss {row['distill_loss']:.4f}  " if "distill_loss" in row else ""
    return (
        f"epoch {row['epoch']}/{epochs}  train_loss {row['train_loss']:.4f}  "
        f"{distill}top1 largest {row['largest_val_top1']:.2f} "
        f"smallest {row['smallest_val_top1']:.2f}  lr {row['lr']:.3g}  "
        f"{row['images_per_s']:.0f} img/s  {row['train_time_s']:.1f}s"
    )

"""Training the supernet, on the parts of `neonas train`. Three sampling rules:

- `sandwich` (BigNAS): each step runs the largest subnet on the labels, then the smallest and
  `random_subnets` random subnets on the largest's (detached) predictions, summing their
  gradients into one optimiser update (Yu et al., BigNAS, ECCV 2020; sandwich rule and in-place
  distillation from Slimmable/US-Nets);
- `uniform` (single-path one-shot, Guo et al., ECCV 2020): each step runs `random_subnets`
  subnets drawn uniformly from the space, each on the labels, one update from the summed
  gradients. No network is favoured: each is trained as often as a uniform draw picks it.
- `fair` (FairNAS strict fairness, Chu et al., ICCV 2021): as `uniform`, but the step's subnets
  are drawn together so that every choice (each depth, width, matrix size, transition plan...)
  comes up equally often within the step, not only on average
  (`SearchSpace.sample_balanced`).

The sandwich trains the largest and smallest networks' choices (their transition ratios among
them) at every step and the others only through the random draws; on the tiny space that bias
decides the ranking (benchmarks/README.md, "Accuracy signals").

It runs on the training engine of `neonas train` (neonas/train/engine.py): data layouts,
transforms, the timm optimiser and schedule, the epoch loop, atomic checkpoints, metrics.csv,
TensorBoard and the progress bar are the engine's; the subnets are sampled in the engine's step
hook (`SubnetStep`). The recipe is the `short` preset (AdamW, light augmentation) renamed
`supernet`.

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
from neonas.train.augment import data_config, eval_transform, train_transform
from neonas.train.checkpoint import LAST, load_checkpoint
from neonas.train.data import (
    build_datasets,
    build_train_loader,
    build_val_loader,
    detect_layout,
    load_split,
)
from neonas.train.distributed import DistContext, barrier, run_distributed
from neonas.train.engine import (
    Engine,
    RunRecord,
    StepHook,
    build_step,
    resolve_amp,
    seed_everything,
)
from neonas.train.epoch import DivergedError, Losses, TrainStep
from neonas.train.logs import EpochProgress
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
from neonas.train.trainer import plan_batches, preflight

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
    init_path: str | None = None  # a supernet checkpoint to start from (few-shot sub-supernets)
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
    """The `short` preset (AdamW, light augmentation), renamed: short runs on small images."""
    recipe = get_recipe("short", {"batch_size": batch_size, "lr": lr, "seed": seed})
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
    engine: Engine
    images: tuple[int, int]  # training and validation images
    scoring: ScoringData


def checked_sampling(job: SupernetJob) -> SupernetJob:
    """`job` with its sampling rule checked and the default subnet count filled in."""
    if job.sampling not in SAMPLINGS:
        raise UserError(f"--sampling must be one of {', '.join(SAMPLINGS)}, got {job.sampling!r}")
    count = RANDOM_SUBNETS[job.sampling] if job.random_subnets is None else job.random_subnets
    least = 0 if job.sampling == "sandwich" else 1  # the sandwich has its largest and smallest
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
        run.engine.restore(state)
        if start_epoch >= run.recipe.epochs:
            raise UserError(
                f"the supernet in {output} already finished all {run.recipe.epochs} epochs"
            )
    if context.is_main:
        print(_start_line(run, context, start_epoch), flush=True)
    record = RunRecord(output, start_epoch=start_epoch) if context.is_main else None
    progress = EpochProgress(enabled=job.progress and context.is_main)
    row: dict[str, Any] = dict(state["metrics"]) if state else {}
    end_epoch = run.recipe.epochs
    if job.stop_after is not None:
        end_epoch = min(end_epoch, start_epoch + job.stop_after)

    def end_of_epoch(epoch: int, stats: dict[str, float]) -> None:
        nonlocal row
        row = {"epoch": epoch + 1, **stats}
        if record is not None:  # only rank 0 validates; the others wait at the barrier
            row.update(_validate(run))
            record.write(row, _checkpoint(run, context, row))
            print(_summary_line(row, run.recipe.epochs), flush=True)
        barrier(context)

    try:
        run.engine.run(
            start_epoch, end_epoch, end_of_epoch, progress=progress, checkpoint=output / LAST
        )
    finally:
        if record is not None:
            record.close()
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
    if job.init_path and not state:  # a resume restores its own weights
        copied = load_shared_weights(supernet, job.init_path)
        if context.is_main:
            total = len(supernet.state_dict())
            print(f"initialised {copied} of {total} tensors from {job.init_path}", flush=True)
    inputs = dict(data_config(supernet, recipe))
    datasets = build_datasets(
        layout,
        train_transform(recipe, inputs),
        eval_transform(inputs),
        max_train_images=job.max_train_images,
        max_val_images=job.max_val_images,
        seed=recipe.seed,
    )
    # No accumulation: each update is one batch per process, as the subnets' BatchNorm saw it.
    plan = plan_batches(
        recipe.batch_size,
        context.world_size,
        max(recipe.batch_size // context.world_size, 1),
        even=False,
    )
    train_loader = build_train_loader(
        datasets.train,
        batch_size=plan.device_batch,
        workers=job.workers,
        seed=recipe.seed,
        rank=context.rank,
        world_size=context.world_size,
    )
    updates = len(train_loader)
    if updates == 0:
        raise UserError(
            f"the training split has {len(datasets.train)} images, fewer than one batch of "
            f"{recipe.batch_size}: lower --batch-size"
        )
    if job.epochs is None:
        job = dataclasses.replace(job, epochs=default_epochs(updates))
        recipe = supernet_recipe(job.epochs, job.batch_size, job.lr, job.seed)
    supernet.to(context.device)
    step = build_step(
        supernet,
        recipe,
        device=context.device,
        updates_per_epoch=updates,
        amp_dtype=resolve_amp(job.amp, context.device),
        hook=SubnetStep(space, job, context),
    )
    calib = load_split(
        layout, "train", eval_transform(inputs), max_images=job.calib_images, seed=recipe.seed
    )
    scoring = ScoringData(
        calib=[images for images, _ in build_val_loader(calib, batch_size=128, workers=0)],
        val=list(build_val_loader(datasets.val, batch_size=128, workers=job.workers)),
    )
    return _Run(
        space=space,
        recipe=recipe,
        job=job,
        classes=layout.classes,
        data_dir=str(Path(job.data_dir).expanduser().resolve()),
        inputs=inputs,
        supernet=supernet,
        engine=Engine(
            step=step,
            train_loader=train_loader,
            context=context,
            seed=recipe.seed,
            epochs=recipe.epochs,
            updates_per_epoch=updates,
        ),
        images=(len(datasets.train), len(datasets.val)),
        scoring=scoring,
    )


def load_shared_weights(supernet: SuperNet, checkpoint: str | Path) -> int:
    """Copy every tensor of `checkpoint`'s supernet that `supernet` has under the same name;
    returns how many. The few-shot split (Zhao et al., ICML 2021): a sub-supernet over a part
    of the space (one transition plan) starts from the shared supernet's weights, and a
    tensor the part does not use (another plan's transition matrices) is left behind. A
    tensor of another shape means another space: a UserError naming it."""
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise UserError(f"--init {checkpoint}: no such checkpoint")
    state = load_checkpoint(path)
    if SPEC_KEY not in state.get("model_spec", {}):
        raise UserError(f"--init {checkpoint} is not a supernet checkpoint")
    source, target = state["model"], supernet.state_dict()
    copied = 0
    for name, tensor in target.items():
        if name not in source:
            continue
        if source[name].shape != tensor.shape:
            raise UserError(
                f"--init {checkpoint} is a supernet of another space: {name} is "
                f"{tuple(source[name].shape)} there and {tuple(tensor.shape)} here"
            )
        tensor.copy_(source[name])
        copied += 1
    if not copied:
        raise UserError(f"--init {checkpoint} shares no tensor with this supernet")
    return copied


def step_subnets(
    space: SearchSpace, sampling: str, random_subnets: int, seed: int, epoch: int, step: int
) -> list[ArchConfig]:
    """The subnets of one step, drawn from (seed, epoch, step): the same on every rank and in
    every resumed run. With the sandwich the first one teaches the others."""
    rng = random.Random(f"{seed}-{epoch}-{step}")
    if sampling == "uniform":
        return [space.sample(rng) for _ in range(random_subnets)]
    if sampling == "fair":
        return space.sample_balanced(rng, random_subnets)
    return sandwich(space, rng, random_subnets)


class SubnetStep(StepHook):
    """The engine's step hook for a supernet: the step's subnets, their losses and gradients.

    Each subnet's loss is checked before its backward, so the last checkpoint stays good;
    under torchrun the gradients are averaged over processes before the update.
    """

    def __init__(self, space: SearchSpace, job: SupernetJob, context: DistContext) -> None:
        self.space, self.job, self.context = space, job, context
        self.distill = SoftTargetCrossEntropy()

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
        job, device = self.job, images.device
        distilling = job.sampling == "sandwich"  # the first subnet teaches the others
        teacher = None
        labels, students = [], []  # the losses on the labels and on the teacher's predictions
        configs = step_subnets(self.space, job.sampling, job.random_subnets, job.seed, epoch, micro)
        for config in configs:
            with torch.autocast(
                device.type, dtype=step.amp_dtype, enabled=step.amp_dtype is not None
            ):
                logits = step.model(images, config).float()
                if teacher is None:
                    loss = step.loss_fn(logits, targets)
                else:
                    loss = self.distill(logits, teacher)
            if not torch.isfinite(loss):  # before the update: the last checkpoint stays good
                raise DivergedError(
                    f"the supernet's loss became {loss.item()} at epoch {epoch + 1}: lower --lr"
                )
            step.scaler.scale(loss).backward()
            (labels if teacher is None else students).append(loss.item())
            if distilling and teacher is None:
                teacher = logits.detach().softmax(dim=1)
        losses = {"train_loss": _summed(labels, images.size(0), device)}
        if distilling:  # the smallest subnet is always a student
            losses["distill_loss"] = _summed(students, images.size(0), device)
        return losses

    def before_update(self, step: TrainStep) -> None:
        if self.context.is_distributed:
            _average_gradients(step.model, self.context.world_size)


def _summed(losses: list[float], images: int, device: torch.device) -> tuple[torch.Tensor, int]:
    """Subnet losses of one batch as the engine logs them: (sum over images, images)."""
    total = sum(loss * images for loss in losses)
    return torch.tensor(total, dtype=torch.float64, device=device), images * len(losses)


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
        **run.engine.state(),
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
    if job.init_path and not job.resume and not Path(job.init_path).expanduser().is_file():
        raise UserError(f"--init {job.init_path}: no such checkpoint")


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
    elif run.job.sampling == "fair":
        rule = f"{run.job.random_subnets} balanced subnets per step on the labels"
    else:
        rule = f"sandwich of largest + smallest + {run.job.random_subnets} random per step"
    text = (
        f"supernet {run.space.name}: {params / 1e6:.2f}M parameters, {run.images[0]} train / "
        f"{run.images[1]} val images, {len(run.classes)} classes, {rule}, "
        f"{run.recipe.epochs} epochs of {run.engine.updates_per_epoch} steps, "
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

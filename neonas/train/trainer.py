"""A whole training run: one process, one of several under torchrun, or a Ray Train worker.

Built on the training engine (neonas/train/engine.py). The training folder is the whole truth of a run: recipe.yaml, config.yaml (ArchConfig models),
last.pt and best.pt (by validation top-1), metrics.csv, tensorboard/ and, at the end,
metrics.json. Only rank 0 writes. `--resume` continues from last.pt exactly: each epoch's
randomness (shuffle, augmentation, Mixup, drop path) is seeded from (seed, epoch, rank), so an
interrupted and resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.utils import ModelEmaV3
from torch.nn.parallel import DistributedDataParallel

from neonas.errors import UserError
from neonas.io import write_json_atomic, write_text_atomic
from neonas.options import check_resumed, plain
from neonas.train.augment import build_mixup, data_config, eval_transform, train_transform
from neonas.train.checkpoint import LAST, load_checkpoint
from neonas.train.data import (
    build_datasets,
    build_train_loader,
    build_val_loader,
    detect_layout,
)
from neonas.train.distributed import DistContext, barrier, run_distributed, sync_buffers
from neonas.train.engine import (
    AMP_DTYPES,
    Engine,
    RunRecord,
    build_step,
    epoch_seed,
    resolve_amp,
    seed_everything,
)
from neonas.train.epoch import validate
from neonas.train.logs import EpochProgress
from neonas.train.model_spec import (
    build_training_model,
    load_initial_weights,
    model_label,
    rebuild_model,
)
from neonas.train.options import RESUMED_OPTIONS, TRAIN_OPTIONS
from neonas.train.recipe import Recipe, canonical_name, coerce_field, get_recipe

# seed_everything, epoch_seed, resolve_amp and AMP_DTYPES live in the engine; imported from
# here by older code.
__all__ = [
    "AMP_DTYPES",
    "DEFAULT_MAX_DEVICE_BATCH",
    "BatchPlan",
    "TrainJob",
    "epoch_seed",
    "plan_batches",
    "preflight",
    "resolve_amp",
    "run_training",
    "seed_everything",
]

# Largest per-device micro-batch chosen by default; gradient accumulation makes up the rest.
DEFAULT_MAX_DEVICE_BATCH = 128


@dataclass
class TrainJob:
    """A training run as plain data (what `neonas train` parsed); picklable for Ray workers."""

    output_dir: str
    data_dir: str | None = None
    model_name: str | None = None
    config_path: str | None = None
    init_path: str | None = None  # start from this checkpoint's weights (e.g. `supernet extract`)
    recipe: Recipe | None = None  # None: the preset `full`, or on resume the checkpoint's recipe
    resume: bool = False
    # Recipe fields the command line gave (`name` for --recipe): a resume checks that they
    # equal the recorded ones, so the same command re-run with --resume is accepted.
    recipe_given: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    amp: str = "auto"  # auto: bf16 (fp16 without bf16 support) on CUDA, none on CPU
    channels_last: bool | None = None  # None: on for CUDA
    device_batch: int | None = None  # per-device micro-batch; None: up to DEFAULT_MAX_DEVICE_BATCH
    workers: int = 4
    max_train_images: int | None = None
    max_val_images: int | None = None
    stop_after: int | None = None  # epochs to run in this invocation (then --resume continues)
    progress: bool = True


@dataclass(frozen=True)
class BatchPlan:
    """How the recipe's global batch splits into devices x micro-batch x accumulation steps."""

    global_batch: int
    device_batch: int
    accum_steps: int


def run_training(job: TrainJob) -> dict[str, Any]:
    """Train (or resume) the run `job` describes; returns the summary also written to metrics.json."""
    return run_distributed(job, job.device, _train)


def plan_batches(
    global_batch: int, world_size: int, device_batch: int | None, *, even: bool
) -> BatchPlan:
    """Split the global batch over processes and accumulation steps; UserError if it cannot.

    Without `device_batch`, the micro-batch is the largest divisor of the per-device batch up
    to DEFAULT_MAX_DEVICE_BATCH (even when Mixup/CutMix pair the images of a batch).
    """
    if global_batch % world_size:
        raise UserError(
            f"batch size {global_batch} does not split over {world_size} processes: "
            f"use a multiple of {world_size}"
        )
    per_device = global_batch // world_size
    if device_batch is None:
        limit = min(per_device, DEFAULT_MAX_DEVICE_BATCH)
        fitting = [d for d in range(limit, 0, -1) if per_device % d == 0 and not (even and d % 2)]
        device_batch = fitting[0] if fitting else per_device
    if per_device % device_batch:
        raise UserError(
            f"--device-batch {device_batch} does not divide the per-device batch {per_device} "
            f"(batch {global_batch} / {world_size} processes)"
        )
    if even and device_batch % 2:
        raise UserError(
            f"Mixup/CutMix need an even per-device batch, got {device_batch}: "
            "change --batch-size or --device-batch"
        )
    return BatchPlan(global_batch, device_batch, per_device // device_batch)


@dataclass
class _Run:
    """Everything one training process holds, built by `_prepare`."""

    output: Path
    recipe: Recipe
    spec: dict[str, Any]
    classes: tuple[str, ...]
    data_dir: str
    inputs: dict[str, Any]  # timm data config: input size, mean/std, crop
    plan: BatchPlan
    model: Any  # the bare model (DDP wraps it inside the engine's step)
    engine: Engine
    val_loader: Any
    images: tuple[int, int]  # training and validation images (all ranks)
    options: dict[str, Any]  # the RESUMED_OPTIONS this run was started with


def _train(job: TrainJob, context: DistContext) -> dict[str, Any]:
    output = Path(job.output_dir).expanduser()
    state = _resume_state(job, output)
    if state:
        job = _with_stored_options(job, state, context)
        _check_same_training(job, state)
    run = _prepare(job, context, output, state)
    start_epoch, best_top1, best_epoch = 0, -1.0, 0
    if state:
        start_epoch = _restore(run, state)
        best_top1, best_epoch = float(state["best_val_top1"]), int(state["best_epoch"])
    end_epoch = run.recipe.epochs
    if job.stop_after is not None:
        end_epoch = min(end_epoch, start_epoch + job.stop_after)
    if context.is_main:
        if not state:
            write_text_atomic(output / "recipe.yaml", run.recipe.to_yaml())
            if "arch_config" in run.spec:
                write_text_atomic(output / "config.yaml", run.model.config.to_yaml())
        print(_start_line(run, context, start_epoch), flush=True)

    record = RunRecord(output, start_epoch=start_epoch) if context.is_main else None
    progress = EpochProgress(enabled=job.progress and context.is_main)
    row: dict[str, Any] = dict(state["metrics"]) if state else {}
    speeds: list[float] = []

    def end_of_epoch(epoch: int, stats: dict[str, float]) -> None:
        nonlocal row, best_top1, best_epoch
        row = {"epoch": epoch + 1, **stats, **_validate(run, context)}
        speeds.append(row["images_per_s"])
        improved = row["val_top1"] > best_top1
        if improved:
            best_top1, best_epoch = row["val_top1"], epoch + 1
        if record is not None:
            state_now = _checkpoint(run, context, row, best_top1, best_epoch)
            record.write(row, state_now, best=improved)
            print(_summary_line(row, run.recipe.epochs), flush=True)

    try:
        run.engine.run(
            start_epoch, end_epoch, end_of_epoch, progress=progress, checkpoint=output / LAST
        )
        barrier(context)
    finally:
        if record is not None:
            record.close()

    summary = {
        "model": model_label(run.spec),
        "recipe": run.recipe.name,
        "epochs_done": end_epoch,
        "epochs": run.recipe.epochs,
        "finished": end_epoch >= run.recipe.epochs,
        "best_val_top1": best_top1,
        "best_epoch": best_epoch,
        **{
            key: row[key]
            for key in ("val_top1", "val_top5", "val_loss", "train_loss")
            if key in row
        },
        "images_per_s": float(np.mean(speeds)) if speeds else None,
        "world_size": context.world_size,
        "device": str(context.device),
        "global_batch": run.plan.global_batch,
        "device_batch": run.plan.device_batch,
        "accum_steps": run.plan.accum_steps,
        "peak_lr": run.recipe.peak_lr,
    }
    if context.is_main:
        write_json_atomic(output / "metrics.json", summary)
    return summary


def _with_stored_options(job: TrainJob, state: dict[str, Any], context: DistContext) -> TrainJob:
    """The job with the data options of the run it resumes; a conflicting option is a UserError."""
    if int(state.get("world_size", context.world_size)) != context.world_size:
        raise UserError(
            f"this training ran on {state['world_size']} processes; resume it on the same number "
            f"(now {context.world_size}) so that every epoch sees the same batches"
        )
    stored = state.get("run_options") or {}
    given = {key: getattr(job, key) for key in RESUMED_OPTIONS if getattr(job, key) is not None}
    check_resumed(given, stored, TRAIN_OPTIONS)
    return replace(job, **{key: stored.get(key, getattr(job, key)) for key in RESUMED_OPTIONS})


def _check_same_training(job: TrainJob, state: dict[str, Any]) -> None:
    """Refuse a resume whose command line names another recipe value or another model.

    Options equal to the recorded ones are accepted, so a user can re-run the command that
    started the training with --resume added; a real difference is named.
    """
    recorded = Recipe.from_dict(state["recipe"])
    given = {key: coerce_field(key, value) for key, value in job.recipe_given.items()}
    flags = {key: "--recipe" if key == "name" else f"recipe {key}" for key in given}
    # A preset's old name is the preset: a run recorded as `proxy` continues with --recipe short.
    if "name" in given:
        given["name"] = canonical_name(given["name"])
    check_resumed(given, {**recorded.to_dict(), "name": canonical_name(recorded.name)}, names=flags)
    if job.model_name is None and job.config_path is None:
        return
    _, spec = build_training_model(
        job.model_name,
        job.config_path,
        num_classes=len(state["classes"]),
        image_size=recorded.image_size,
        drop_path=recorded.drop_path,
    )
    if plain(spec) != plain(state["model_spec"]):
        what = f"--config {job.config_path}" if job.config_path else f"--model {job.model_name}"
        raise UserError(
            f"{what} is another network than the {model_label(state['model_spec'])} this training "
            f"started with{_differing_fields(spec, state['model_spec'])}: leave it out to "
            "continue, or start a new --output"
        )


def _differing_fields(spec: dict[str, Any], recorded: dict[str, Any]) -> str:
    given, saved = (
        plain(spec.get("arch_config", spec)),
        plain(recorded.get("arch_config", recorded)),
    )
    keys = sorted(k for k in set(given) | set(saved) if given.get(k) != saved.get(k))
    return f" (differs in {', '.join(keys)})" if keys else ""


def _prepare(
    job: TrainJob, context: DistContext, output: Path, state: dict[str, Any] | None
) -> _Run:
    """Model, data, loaders, optimiser, schedule, scaler, EMA and DDP for this process."""
    recipe = Recipe.from_dict(state["recipe"]) if state else (job.recipe or get_recipe("full"))
    data_dir = job.data_dir or (state or {}).get("data_dir")
    if not data_dir:
        raise UserError(
            "no data: pass --data DIR (an ImageFolder tree or a CIFAR-10 python folder)"
        )
    layout = detect_layout(data_dir)
    seed_everything(recipe.seed)  # the same initial weights on every rank
    if state:
        if list(state["classes"]) != list(layout.classes):
            raise UserError(f"{data_dir} has other classes than the run in {output} was trained on")
        spec = state["model_spec"]
        model = rebuild_model(spec)
    else:
        model, spec = build_training_model(
            job.model_name,
            job.config_path,
            num_classes=len(layout.classes),
            image_size=recipe.image_size,
            drop_path=recipe.drop_path,
        )
        if job.init_path:
            load_initial_weights(model, job.init_path)

    inputs = data_config(model, recipe)
    datasets = build_datasets(
        layout,
        train_transform(recipe, inputs),
        eval_transform(inputs),
        max_train_images=job.max_train_images,
        max_val_images=job.max_val_images,
        seed=recipe.seed,
    )
    train_set, val_set = datasets.train, datasets.val
    plan = plan_batches(
        recipe.batch_size, context.world_size, job.device_batch, even=recipe.uses_mixup
    )
    device = context.device
    shard = {
        "rank": context.rank,
        "world_size": context.world_size,
        "pin_memory": device.type == "cuda",
    }
    train_loader = build_train_loader(
        train_set, batch_size=plan.device_batch, workers=job.workers, seed=recipe.seed, **shard
    )
    val_loader = build_val_loader(
        val_set, batch_size=plan.device_batch, workers=job.workers, **shard
    )
    updates_per_epoch = len(train_loader) // plan.accum_steps
    if updates_per_epoch == 0:
        raise UserError(
            f"the training split has {len(train_set)} images, fewer than one batch of "
            f"{plan.global_batch}: lower --batch-size"
        )

    channels_last = device.type == "cuda" if job.channels_last is None else job.channels_last
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    amp_dtype = resolve_amp(job.amp, device)
    wrapped = model
    if context.is_distributed:
        wrapped = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    step = build_step(
        model,
        recipe,
        device=device,
        updates_per_epoch=updates_per_epoch,
        wrapped=wrapped,
        amp_dtype=amp_dtype,
        mixup=build_mixup(recipe, len(layout.classes)),
        ema=ModelEmaV3(model, decay=recipe.ema_decay) if recipe.ema else None,
        accum_steps=plan.accum_steps,
        clip_grad=recipe.clip_grad,
        channels_last=channels_last,
    )
    engine = Engine(
        step=step,
        train_loader=train_loader,
        context=context,
        seed=recipe.seed,
        epochs=recipe.epochs,
        updates_per_epoch=updates_per_epoch,
    )
    return _Run(
        output=output,
        recipe=recipe,
        spec=spec,
        classes=layout.classes,
        data_dir=str(Path(data_dir).expanduser().resolve()),
        inputs=dict(inputs),
        plan=plan,
        model=model,
        engine=engine,
        val_loader=val_loader,
        images=(len(train_set), len(val_set)),
        options={key: getattr(job, key) for key in RESUMED_OPTIONS},
    )


def _restore(run: _Run, state: dict[str, Any]) -> int:
    """Load a checkpoint into the run; returns the number of epochs already done."""
    run.engine.restore(state)
    done = int(state["epoch"])
    if done >= run.recipe.epochs:
        raise UserError(
            f"the training in {run.output} already finished all {run.recipe.epochs} epochs; "
            f"see {run.output / 'metrics.json'}"
        )
    return done


def _validate(run: _Run, context: DistContext) -> dict[str, float]:
    """Validate the model (and its EMA) on every rank: the validation columns of a row."""
    step = run.engine.step
    row: dict[str, float] = {}
    models = {"val": run.model}
    if step.ema is not None:
        models["ema_val"] = step.ema.module
    for prefix, model in models.items():
        sync_buffers(model, context)  # BatchNorm statistics of rank 0, so all ranks agree
        val = validate(
            model,
            run.val_loader,
            context=context,
            amp_dtype=step.amp_dtype,
            channels_last=step.channels_last,
        )
        row.update(
            {
                f"{prefix}_loss": val["loss"],
                f"{prefix}_top1": val["top1"],
                f"{prefix}_top5": val["top5"],
            }
        )
    return row


def _checkpoint(
    run: _Run, context: DistContext, row: dict[str, Any], best_top1: float, best_epoch: int
) -> dict:
    """Everything `--resume` and `evaluate` need, as tensors and plain containers."""
    ema = run.engine.step.ema
    return {
        "epoch": row["epoch"],
        **run.engine.state(),
        "ema": ema.state_dict() if ema is not None else None,
        "recipe": run.recipe.to_dict(),
        "model_spec": run.spec,
        "classes": list(run.classes),
        "data_dir": run.data_dir,
        "data_config": run.inputs,
        "best_val_top1": best_top1,
        "best_epoch": best_epoch,
        "metrics": row,
        "world_size": context.world_size,
        "run_options": run.options,
    }


def preflight(job: TrainJob) -> None:
    """Check the training folder and the data before starting workers; UserError if wrong."""
    _check_output(job, Path(job.output_dir).expanduser())
    if job.data_dir:
        detect_layout(job.data_dir)


def _check_output(job: TrainJob, output: Path) -> None:
    last = output / LAST
    if job.resume and not last.is_file():
        raise UserError(
            f"nothing to resume in {output}: no {LAST}; leave out --resume to start a new training"
        )
    if not job.resume and last.exists():
        raise UserError(
            f"{output} already holds a training ({LAST}): pass --resume to continue it, or choose another --output"
        )


def _resume_state(job: TrainJob, output: Path) -> dict[str, Any] | None:
    _check_output(job, output)
    return load_checkpoint(output / LAST) if job.resume else None


def _start_line(run: _Run, context: DistContext, start_epoch: int) -> str:
    plan, step = run.plan, run.engine.step
    text = (
        f"train {model_label(run.spec)}: {run.images[0]} train / {run.images[1]} val images, "
        f"{len(run.classes)} classes, "
        f"recipe {run.recipe.name}, batch {plan.global_batch} = {context.world_size} x "
        f"{plan.device_batch} x {plan.accum_steps} accumulation, peak lr {run.recipe.peak_lr:.3g}, "
        f"device {context.device}"
    )
    if step.amp_dtype is not None:
        text += f", amp {str(step.amp_dtype).removeprefix('torch.')}"
    return text + (f", resuming after epoch {start_epoch}" if start_epoch else "")


def _summary_line(row: dict[str, Any], epochs: int) -> str:
    text = (
        f"epoch {row['epoch']}/{epochs}  train_loss {row['train_loss']:.4f}  val_loss {row['val_loss']:.4f}  "
        f"top1 {row['val_top1']:.2f}  top5 {row['val_top5']:.2f}"
    )
    if "ema_val_top1" in row:
        text += f"  ema_top1 {row['ema_val_top1']:.2f}"
    return (
        text + f"  lr {row['lr']:.3g}  {row['images_per_s']:.0f} img/s  {row['train_time_s']:.1f}s"
    )

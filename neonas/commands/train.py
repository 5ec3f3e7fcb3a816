"""`neonas train`: retrain an ArchConfig or a registered model with a recipe preset.

One process by default; the same command under `torchrun --nproc_per_node N` trains with DDP,
and `--address` runs it through Ray Train on a Ray cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from neonas.commands.arguments import add_device_options
from neonas.errors import UserError
from neonas.options import Option, add_options
from neonas.train.options import RECIPE_FIELDS, TRAIN_DEFAULTS, TRAIN_OPTIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `neonas train`: those that set the run are declared once, with those it shares
    with `supernet train`, in neonas/train/options.py."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", help="ArchConfig YAML file, e.g. from `neonas export`")
    source.add_argument(
        "--model", help="registered NeoNeXt (neonext_tiny, ...) or any timm model name"
    )
    add_options(parser, _declared("data_dir", "output_dir"), TRAIN_DEFAULTS)
    parser.add_argument("--resume", action="store_true", help="continue the training in --output")
    add_options(parser, _declared("init_path"), TRAIN_DEFAULTS)

    recipe = parser.add_argument_group("recipe (defaults: the preset's values)")
    recipe.add_argument("--recipe", help="preset: full (Table 2, default), cifar or short")
    add_options(recipe, _declared(*RECIPE_FIELDS), TRAIN_DEFAULTS)
    recipe.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="any recipe field, e.g. --set mixup=0.2 (repeatable)",
    )

    run = parser.add_argument_group("where and how it runs")
    add_device_options(run, what=" per device")
    run.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="default: on GPU",
    )
    add_options(run, _declared(*RUN_SETTINGS), TRAIN_DEFAULTS)
    run.add_argument("--json", action="store_true", help="print the final metrics as JSON")


# The declared options of the "where and how it runs" group, in the order of the help.
RUN_SETTINGS = (
    "device_batch",
    "max_train_images",
    "max_val_images",
    "stop_after",
    "no_progress",
    "address",
    "ray_workers",
)


def _declared(*settings: str) -> list[Option]:
    by_setting = {option.setting: option for option in TRAIN_OPTIONS}
    return [by_setting[setting] for setting in settings]


def run(args: argparse.Namespace) -> int:
    from neonas.cluster import on_ray
    from neonas.train.recipe import get_recipe, parse_assignments, warmup_note
    from neonas.train.trainer import TrainJob, run_training

    ray_train = on_ray(args.address)
    if args.ray_workers is not None and not ray_train:
        raise UserError(
            "--ray-workers sets the Ray Train workers: it needs --address or RAY_ADDRESS"
        )
    overrides = parse_assignments(args.set)
    overrides.update(
        {key: getattr(args, key) for key in RECIPE_FIELDS if getattr(args, key) is not None}
    )
    given = {**overrides, **({"name": args.recipe} if args.recipe else {})}
    recipe = None
    if args.resume:
        if not (args.output or args.config or args.model):
            raise UserError(
                "--resume needs --output, the training folder to continue (or the "
                "--config/--model that named it)"
            )
    else:
        if not (args.config or args.model):
            raise UserError("give --config FILE (an ArchConfig) or --model NAME")
        if not args.data:
            raise UserError("give --data DIR (an ImageFolder tree or a CIFAR-10 python folder)")
        recipe = get_recipe(args.recipe or "full", overrides)
    recipe_name = args.recipe or "full"
    job = TrainJob(
        output_dir=args.output
        or str(Path("results") / "train" / f"{_model_stem(args)}-{recipe_name}"),
        data_dir=args.data,
        model_name=args.model,
        config_path=args.config,
        init_path=args.init,
        recipe=recipe,
        resume=args.resume,
        recipe_given=given if args.resume else {},
        device=args.device,
        amp=args.amp,
        channels_last=args.channels_last,
        device_batch=args.device_batch,
        workers=args.workers,
        max_train_images=args.max_train_images,
        max_val_images=args.max_val_images,
        stop_after=args.stop_after,
        progress=not args.no_progress,
    )
    # With --json, stdout carries the JSON summary alone; progress lines go to stderr.
    lines_to = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    try:
        with lines_to:
            note = warmup_note(recipe, overrides) if recipe is not None else None
            if note and os.environ.get("RANK", "0") == "0":
                print(note, flush=True)
            if ray_train:
                from neonas.train.ray_launch import train_with_ray

                use_gpu = args.device.startswith("cuda")  # one GPU per Ray worker; auto means CPU
                summary = train_with_ray(
                    job, address=args.address, num_workers=args.ray_workers or 1, use_gpu=use_gpu
                )
            else:
                summary = run_training(job)
    except FloatingPointError as err:
        raise UserError(
            f"training diverged ({err}); lower --lr or raise --warmup-epochs, then --resume "
            "from the last good epoch or start again"
        ) from None
    if args.json and os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks
        print(json.dumps(summary, indent=2))
    return 0


def _model_stem(args: argparse.Namespace) -> str:
    return Path(args.config).stem if args.config else str(args.model).replace("/", "_")

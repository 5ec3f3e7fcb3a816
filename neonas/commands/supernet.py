"""`neonas supernet`: train the weight-sharing supernet of a search space, extract subnets.

    neonas supernet train --space tiny --data DIR [--epochs N] [--output DIR] [--resume]
    neonas supernet few-shot CKPT [--output DIR] [--epochs 3]
    neonas supernet extract CKPT --config FILE --out FILE [--data DIR]
    neonas supernet score CKPT --config FILE --data DIR

Then `neonas search --supernet CKPT --data DIR` scores every trial by its inherited weights
(CKPT: a supernet's last.pt or a few-shot folder).
See docs/supernet.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from neonas.commands.arguments import add_device_options
from neonas.errors import UserError
from neonas.options import add_options, positive_int
from neonas.train.options import FEW_SHOT_EPOCHS, SUPERNET_DEFAULTS, SUPERNET_TRAIN_OPTIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `neonas supernet train|extract|score`."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    train = actions.add_parser(
        "train",
        help="train the supernet of a space (random subnets per step, or the sandwich rule)",
    )
    # Declared once, with the options `train` shares, in neonas/train/options.py.
    add_options(train, SUPERNET_TRAIN_OPTIONS, SUPERNET_DEFAULTS)
    train.add_argument("--resume", action="store_true", help="continue the training in --output")
    add_device_options(train, what="")

    few_shot = actions.add_parser(
        "few-shot",
        help="one sub-supernet per transition plan, each trained on from a trained supernet",
    )
    few_shot.add_argument("checkpoint", metavar="CKPT", help="last.pt of `supernet train`")
    few_shot.add_argument(
        "--output", metavar="DIR", help="the few-shot folder (default: CKPT's folder + -few-shot)"
    )
    few_shot.add_argument(
        "--epochs",
        type=positive_int,
        default=FEW_SHOT_EPOCHS,
        help=f"epochs per part (default {FEW_SHOT_EPOCHS})",
    )
    few_shot.add_argument("--data", metavar="DIR", help="default: the data CKPT trained on")
    few_shot.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device_options(few_shot, what="")

    extract = actions.add_parser("extract", help="one subnet's weights as a normal checkpoint")
    extract.add_argument(
        "checkpoint", metavar="CKPT", help="last.pt of `supernet train`, or a few-shot folder"
    )
    extract.add_argument(
        "--config", required=True, help="ArchConfig YAML of a network of the space"
    )
    extract.add_argument("--out", required=True, metavar="FILE", help="checkpoint to write")
    extract.add_argument(
        "--data",
        metavar="DIR",
        help="re-estimate BatchNorm statistics on DIR's training images (recommended)",
    )

    score = actions.add_parser("score", help="top-1 of one subnet with inherited weights")
    score.add_argument(
        "checkpoint", metavar="CKPT", help="last.pt of `supernet train`, or a few-shot folder"
    )
    score.add_argument("--config", required=True, help="ArchConfig YAML of a network of the space")
    score.add_argument("--data", required=True, metavar="DIR", help="the data it was trained on")
    score.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    actions = {"train": _train, "few-shot": _few_shot, "extract": _extract, "score": _score}
    return actions[args.action](args)


def _train(args: argparse.Namespace) -> int:
    from neonas.cluster import on_ray
    from neonas.supernet.training import (
        RUN_OPTIONS,
        SupernetJob,
        preflight_supernet,
        run_supernet_training,
    )

    if args.resume and not (args.output or args.space):
        raise UserError(
            "--resume needs --output, the supernet folder to continue (or the --space that "
            "named it)"
        )
    if not args.resume and not (args.space and args.data):
        raise UserError("give --space NAME|FILE and --data DIR")
    stem = Path(str(args.space)).stem if args.space else "supernet"
    space = args.space
    if space and Path(space).is_file():  # Ray workers start in other folders
        space = str(Path(space).resolve())
    # On resume, options given again must equal the recorded ones (checked by the training).
    fields = {key: getattr(args, key, None) for key in RUN_OPTIONS}
    fields = {key: value for key, value in fields.items() if value is not None}
    job = SupernetJob(
        output_dir=args.output or str(Path("results") / "supernet" / stem),
        space=space,
        data_dir=args.data,
        resume=args.resume,
        device=args.device,
        amp=args.amp,
        workers=args.workers,
        stop_after=args.stop_after,
        init_path=args.init,
        progress=not args.no_progress,
        given=dict(fields) if args.resume else {},
        **fields,
    )
    try:
        if on_ray(args.address):
            from neonas.train.ray_launch import train_with_ray

            train_with_ray(
                job,
                address=args.address,
                num_workers=args.ray_workers or 1,
                use_gpu=args.device.startswith("cuda"),
                run=run_supernet_training,
                check=preflight_supernet,
            )
        else:
            run_supernet_training(job)
    except FloatingPointError as err:
        raise UserError(
            f"supernet training diverged ({err}); lower --lr, then start again"
        ) from None
    return 0


def _few_shot(args: argparse.Namespace) -> int:
    from neonas.supernet.few_shot_training import train_few_shot

    checkpoint = Path(args.checkpoint).expanduser()
    output = args.output or str(checkpoint.resolve().parent) + "-few-shot"

    def on_part(plan: str, index: int, count: int) -> None:
        print(f"part {index + 1}/{count}: transition plan {plan}", flush=True)

    try:
        folder = train_few_shot(
            checkpoint,
            output,
            epochs=args.epochs,
            data_dir=args.data,
            on_part=on_part,
            device=args.device,
            amp=args.amp,
            workers=args.workers,
            progress=not args.no_progress,
        )
    except FloatingPointError as err:
        raise UserError(f"a part diverged ({err}); run the same command to resume it") from None
    print(f"wrote {folder}: search with --supernet {folder}")
    return 0


def _extract(args: argparse.Namespace) -> int:
    from neonas.arch import ArchConfig
    from neonas.supernet.extract import write_subnet_checkpoint

    config = ArchConfig.load(args.config)
    path = write_subnet_checkpoint(args.checkpoint, config, args.out, data_dir=args.data)
    calibrated = (
        "BatchNorm re-estimated on " + args.data if args.data else "supernet BatchNorm statistics"
    )
    print(f"wrote {path} ({config.name}, {calibrated})")
    return 0


def _score(args: argparse.Namespace) -> int:
    from neonas.arch import ArchConfig
    from neonas.supernet.scoring import SubnetScorer

    config = ArchConfig.load(args.config)
    metrics = SubnetScorer(args.checkpoint, args.data).evaluate(config)
    if args.json:
        print(json.dumps({"config": args.config, **metrics}, indent=2))
    else:
        print(
            f"{config.name}: supernet top-1 {metrics['top1']:.2f}  top-5 {metrics['top5']:.2f}  "
            f"loss {metrics['loss']:.4f} on {metrics['images']} held-out images"
        )
    return 0

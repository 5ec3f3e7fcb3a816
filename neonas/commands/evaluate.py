"""`neonas evaluate`: top-1/top-5 of a training checkpoint on a data folder's validation split.

The scoring is `neonas.train.accuracy.checkpoint_accuracy`; this module parses and prints.
"""

from __future__ import annotations

import argparse
import json

from neonas.commands.arguments import add_device_options, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, help="best.pt or last.pt from `neonas train`"
    )
    parser.add_argument(
        "--data", required=True, help="ImageFolder tree (val/ is used) or CIFAR-10 python folder"
    )
    parser.add_argument(
        "--ema", action="store_true", help="evaluate the EMA weights (trained with --ema)"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=128, help="images per forward pass (default 128)"
    )
    add_device_options(parser, what="")
    parser.add_argument("--max-images", type=positive_int, help="evaluate a fixed random subset")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from neonas.train.accuracy import checkpoint_accuracy

    result = checkpoint_accuracy(
        args.checkpoint,
        args.data,
        ema=args.ema,
        batch_size=args.batch_size,
        device=args.device,
        amp=args.amp,
        workers=args.workers,
        max_images=args.max_images,
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['model']} (epoch {result['epoch']}, {result['weights']} weights) on {result['images']} images: "
            f"top1 {result['top1']:.2f}  top5 {result['top5']:.2f}  loss {result['loss']:.4f}"
        )
    return 0

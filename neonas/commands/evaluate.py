"""`neonas evaluate`: top-1/top-5 of a training checkpoint on a data folder's validation split.

The checkpoint carries the model spec, the class names and the input preprocessing, so neither
the ArchConfig file nor the training data is needed: only images to evaluate on.
"""

from __future__ import annotations

import argparse
import json

from neonas.errors import UserError


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
        "--batch-size", type=int, default=128, help="images per forward pass (default 128)"
    )
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument(
        "--amp",
        default="auto",
        choices=("auto", "none", "bf16", "fp16"),
        help="default: bf16 on GPU",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        help="data loading processes (default 4, at most the CPUs available)",
    )
    parser.add_argument("--max-images", type=int, help="evaluate a fixed random subset")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from neonas.train.augment import eval_transform
    from neonas.train.checkpoint import load_checkpoint
    from neonas.train.data import build_val_loader, detect_layout, load_split
    from neonas.train.distributed import DistContext, resolve_device
    from neonas.train.epoch import evaluate
    from neonas.train.model_spec import model_label, rebuild_model
    from neonas.train.trainer import resolve_amp

    if (
        args.batch_size < 1
        or args.workers < 0
        or (args.max_images is not None and args.max_images < 1)
    ):
        raise UserError("--batch-size and --max-images must be positive, --workers 0 or more")
    state = load_checkpoint(args.checkpoint)
    model = rebuild_model(state["model_spec"])
    if args.ema:
        if state.get("ema") is None:
            raise UserError(f"{args.checkpoint} holds no EMA weights: it was trained without --ema")
        weights = {key.removeprefix("module."): value for key, value in state["ema"].items()}
    else:
        weights = state["model"]
    model.load_state_dict(weights)

    layout = detect_layout(args.data, classes=tuple(state["classes"]))
    dataset = load_split(
        layout, "val", eval_transform(state["data_config"]), max_images=args.max_images
    )
    device = resolve_device(args.device)
    context = DistContext(rank=0, world_size=1, local_rank=0, device=device)
    loader = build_val_loader(
        dataset, batch_size=args.batch_size, workers=args.workers, pin_memory=device.type == "cuda"
    )
    metrics = evaluate(
        model.to(device), loader, context=context, amp_dtype=resolve_amp(args.amp, device)
    )
    result = {
        "checkpoint": str(args.checkpoint),
        "model": model_label(state["model_spec"]),
        "epoch": int(state["epoch"]),
        "weights": "ema" if args.ema else "model",
        "top1": metrics["top1"],
        "top5": metrics["top5"],
        "loss": metrics["loss"],
        "images": metrics["images"],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['model']} (epoch {result['epoch']}, {result['weights']} weights) on {result['images']} images: "
            f"top1 {result['top1']:.2f}  top5 {result['top5']:.2f}  loss {result['loss']:.4f}"
        )
    return 0

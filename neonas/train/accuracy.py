"""Top-1/top-5 of a training checkpoint on a data folder's validation split (`neonas evaluate`).

The checkpoint carries the model spec, the class names and the input preprocessing, so
neither the ArchConfig file nor the training data is needed: only images to score it on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neonas.errors import UserError
from neonas.train.augment import eval_transform
from neonas.train.checkpoint import load_checkpoint
from neonas.train.data import build_val_loader, detect_layout, load_split
from neonas.train.distributed import DistContext, resolve_device
from neonas.train.engine import resolve_amp
from neonas.train.epoch import validate
from neonas.train.model_spec import model_label, rebuild_model


def checkpoint_accuracy(
    checkpoint: str | Path,
    data_dir: str | Path,
    *,
    ema: bool = False,
    batch_size: int = 128,
    device: str = "auto",
    amp: str = "auto",
    workers: int = 4,
    max_images: int | None = None,
) -> dict[str, Any]:
    """The model (or its EMA) of `checkpoint` scored on `data_dir`: top1, top5, loss, images.

    The classes of `data_dir` must be the checkpoint's (an ImageFolder needs only val/).
    """
    state = load_checkpoint(checkpoint)
    model = rebuild_model(state["model_spec"])
    if ema:
        if state.get("ema") is None:
            raise UserError(f"{checkpoint} holds no EMA weights: it was trained without --ema")
        weights = {key.removeprefix("module."): value for key, value in state["ema"].items()}
    else:
        weights = state["model"]
    model.load_state_dict(weights)

    layout = detect_layout(data_dir, classes=tuple(state["classes"]))
    dataset = load_split(layout, "val", eval_transform(state["data_config"]), max_images=max_images)
    torch_device = resolve_device(device)
    context = DistContext(rank=0, world_size=1, local_rank=0, device=torch_device)
    loader = build_val_loader(
        dataset, batch_size=batch_size, workers=workers, pin_memory=torch_device.type == "cuda"
    )
    metrics = validate(
        model.to(torch_device), loader, context=context, amp_dtype=resolve_amp(amp, torch_device)
    )
    return {
        "checkpoint": str(checkpoint),
        "model": model_label(state["model_spec"]),
        "epoch": int(state["epoch"]),
        "weights": "ema" if ema else "model",
        "top1": metrics["top1"],
        "top5": metrics["top5"],
        "loss": metrics["loss"],
        "images": metrics["images"],
    }

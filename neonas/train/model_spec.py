"""The model of a training run, and the plain-data spec a checkpoint carries to rebuild it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from neonas.errors import UserError


def build_training_model(
    model_name: str | None,
    config_path: str | Path | None,
    *,
    num_classes: int,
    image_size: int | None = None,
    drop_path: float | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """The untrained model for `--model`/`--config`, and its spec for `rebuild_model`."""
    from neonas.models import resolve_model

    model, arch = resolve_model(
        model_name,
        config_path,
        num_classes=num_classes,
        input_size=image_size,
        drop_path_rate=drop_path,
    )
    if arch is not None:
        return model, {"arch_config": arch.to_dict()}
    return model, {"model_name": model_name, "num_classes": num_classes}


def rebuild_model(spec: dict[str, Any]) -> nn.Module:
    """The model described by a checkpoint's spec, with freshly initialised weights."""
    from neonas.arch import ArchConfig
    from neonas.models import build_model, resolve_model

    if "arch_config" in spec:
        return build_model(
            ArchConfig.from_dict(spec["arch_config"], source="checkpoint arch_config")
        )
    if "model_name" in spec:
        return resolve_model(spec["model_name"], num_classes=int(spec["num_classes"]))[0]
    raise UserError("the checkpoint has no model spec (arch_config or model_name)")


def model_label(spec: dict[str, Any]) -> str:
    """A short name for logs and folder names."""
    if "arch_config" in spec:
        return str(spec["arch_config"].get("name", "neonext"))
    return str(spec.get("model_name", "model"))


def load_initial_weights(model: nn.Module, path: str | Path) -> None:
    """Fine-tuning: copy a checkpoint's weights into `model`; UserError if they do not fit."""
    from neonas.train.checkpoint import load_checkpoint

    load_weights(
        model,
        load_checkpoint(path)["model"],
        f"--init {path}",
        "pass the --config the checkpoint was made for",
    )


def load_weights(model: nn.Module, weights: dict[str, Any], what: str, fix: str) -> None:
    """model.load_state_dict(weights); a mismatch is one UserError line: what, why, the fix."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        lines = str(err).strip().splitlines()
        detail = lines[1].strip() if len(lines) > 1 else lines[0]
        raise UserError(f"{what}: its weights do not fit ({detail}); {fix}") from None

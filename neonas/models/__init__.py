"""NeoNeXt networks from ArchConfigs, the registered family, and model lookup for the CLI.

`import neonas.models` registers `neonext_tiny`, `neonext_small`, `neonext_base` and the
authors' code's `neonext_tiny_ref`, `neonext_small_ref`, `neonext_base_ref` with timm.
"""

from __future__ import annotations

from pathlib import Path

import timm
from torch import nn

from neonas.arch import ArchConfig
from neonas.errors import UserError
from neonas.models.family import neonext_base, neonext_small, neonext_tiny, variant_config
from neonas.models.folding import (
    fold_for_inference,
    fuse_for_inference,  # noqa: F401  (deprecated name)
)
from neonas.models.neonext import NeoNeXt


def build_model(config: ArchConfig, **overrides: object) -> NeoNeXt:
    """The torch module for an ArchConfig (overrides: ArchConfig fields, e.g. num_classes)."""
    return NeoNeXt(config, **overrides)


def resolve_model(
    name: str | None = None,
    config: str | Path | None = None,
    *,
    num_classes: int | None = None,
    input_size: int | None = None,
    drop_path_rate: float | None = None,
) -> tuple[nn.Module, ArchConfig | None]:
    """A model from the command line: a timm model name (ours included), or an ArchConfig file.

    Returns the model (untrained, no weights are downloaded) and its ArchConfig when it has one.
    A name is built by `timm.create_model`, the one build path of every registered model;
    `input_size` rebuilds a NeoNeXt for that resolution (its feature maps are part of the config).
    """
    if (name is None) == (config is None):
        raise UserError("give exactly one of --model NAME or --config FILE")
    if config is not None:
        model = build_model(
            ArchConfig.load(config),
            num_classes=num_classes,
            input_size=input_size,
            drop_path_rate=drop_path_rate,
        )
        return model, model.config
    if not timm.list_models(name):
        close = timm.list_models(f"*{name}*")[:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else " (see timm.list_models())"
        raise UserError(f"unknown model {name!r}{hint}")
    kwargs = {"num_classes": num_classes, "drop_path_rate": drop_path_rate}
    if input_size is not None and name in timm.list_models("neonext_*"):
        kwargs["img_size"] = input_size  # other timm CNNs take any size and no img_size
    model = timm.create_model(name, pretrained=False, **kwargs)
    return model, getattr(model, "config", None)


def default_input_size(model: nn.Module) -> tuple[int, int, int]:
    """(C, H, W) the model expects, from its timm pretrained_cfg (224 px when it has none)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    size = cfg.get("input_size", (3, 224, 224))
    return tuple(int(v) for v in size)  # type: ignore[return-value]


__all__ = [
    "ArchConfig",
    "NeoNeXt",
    "build_model",
    "default_input_size",
    "fold_for_inference",
    "neonext_base",
    "neonext_small",
    "neonext_tiny",
    "resolve_model",
    "variant_config",
]

"""NeoNeXt-T/S/B registered with timm: the paper's variants and the authors' code's (`*_ref`).

Each factory holds its model arguments in one line, as timm's do. The paper's variants
(arXiv 2403.11251, section 4; docs/archconfig.md): stages 1-3 split the channels into two
halves, 4x4 and 7x7 matrices, both shifted; stage 4 uses 7x7 matrices, no shift; drop path
0.1 / 0.4 / 0.5 (Table 2).
The `*_ref` variants are built as github.com/HapKoM/neonext builds them with its defaults:
4x4 + 7x7 shifted in stages 1-2, 7x7 shifted in stage 3, 7x7 plain in stage 4, pointwise
before the down-sampling NeoCell, no layer scale, no MLP or stem biases, and a down-sampling
that rounds odd maps down (15x15 -> 7x7 at 240 px; docs/archconfig.md).
"""

from __future__ import annotations

from typing import Any

import timm
from pydantic import ValidationError
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from neonas.arch import ArchConfig, CellSpec, StageSpec, first_error
from neonas.errors import UserError
from neonas.models.neonext import BASE_CFG, NeoNeXt

MIXED_SHIFTED = (CellSpec(size=4, share=0.5, shift=True), CellSpec(size=7, share=0.5, shift=True))
SEVEN_SHIFTED = (CellSpec(size=7, share=1.0, shift=True),)
SEVEN_PLAIN = (CellSpec(size=7, share=1.0, shift=False),)

# Cells per stage of the authors' code's default `kernel_spec` (the paper's: see neonext_config).
REFERENCE_CELLS = (MIXED_SHIFTED, MIXED_SHIFTED, SEVEN_SHIFTED, SEVEN_PLAIN)
# What the authors' code does unlike our paper-following variants (ArchConfig fields).
REFERENCE_ARGS: dict[str, Any] = dict(
    cells=REFERENCE_CELLS,
    layer_scale_init=None,
    mlp_bias=False,
    stem_bias=False,
    transition="pointwise_first",
    rounding="floor",
)


def neonext_config(
    name: str,
    depths: tuple[int, ...],
    widths: tuple[int, ...],
    cells: tuple[tuple[CellSpec, ...], ...] | None = None,
    input_size: int = 224,
    **fields: Any,
) -> ArchConfig:
    """A NeoNeXt whose later stages each halve the map; cells per stage default to the paper's
    (4x4 + 7x7 shifted halves, the last stage 7x7 plain). A size it cannot be built at (e.g.
    not a multiple of the stem patch) is a UserError of one line."""
    if cells is None:
        cells = (MIXED_SHIFTED,) * (len(depths) - 1) + (SEVEN_PLAIN,)
    stages = tuple(
        StageSpec(
            depth=depth,
            width=width,
            cells=stage_cells,
            sampling=None if index == 0 else (2, 2, 1, 1),
        )
        for index, (depth, width, stage_cells) in enumerate(zip(depths, widths, cells, strict=True))
    )
    try:
        return ArchConfig(name=name, input_size=input_size, stages=stages, **fields)
    except ValidationError as err:
        raise UserError(f"{name} at {input_size} px: {first_error(err)}") from None


def _cfg(**overrides: Any) -> dict[str, Any]:
    return {
        **BASE_CFG,
        "input_size": (3, 224, 224),
        "pool_size": (7, 7),
        "crop_pct": 0.875,
        **overrides,
    }


default_cfgs = generate_default_cfgs(
    {
        name: _cfg()
        for name in (
            "neonext_tiny",
            "neonext_small",
            "neonext_base",
            "neonext_tiny_ref",
            "neonext_small_ref",
            "neonext_base_ref",
        )
    }
)


def _create_neonext(variant: str, pretrained: bool = False, **kwargs: Any) -> NeoNeXt:
    """Build through timm (features_only, pretrained_cfg): ArchConfig fields in, NeoNeXt out."""
    if pretrained:
        raise ValueError(f"{variant}: neonas ships no pretrained weights (convert-checkpoint)")
    model_fields = {key: kwargs.pop(key) for key in list(kwargs) if key in NEONEXT_KWARGS}
    config = neonext_config(variant, input_size=kwargs.pop("img_size", None) or 224, **model_fields)
    size = config.input_size
    overlay = {
        "input_size": (config.in_chans, size, size),
        "pool_size": config.feature_sizes()[-1],
        "crop_pct": 0.875 if size <= 224 else 1.0,
    }
    return build_model_with_cfg(
        NeoNeXt,
        variant,
        pretrained=False,
        pretrained_cfg_overlay={**overlay, **(kwargs.pop("pretrained_cfg_overlay", None) or {})},
        feature_cfg={"out_indices": tuple(range(len(config.stages))), "flatten_sequential": True},
        config=config,
        **kwargs,
    )


# Keyword arguments of the factories that become ArchConfig fields (the rest go to NeoNeXt).
NEONEXT_KWARGS = {
    "depths",
    "widths",
    "cells",
    "drop_path_rate",
    "layer_scale_init",
    "mlp_bias",
    "stem_bias",
    "transition",
    "rounding",
    "in_chans",
    "stem_patch",
}


def variant_config(name: str, input_size: int = 224, num_classes: int = 1000) -> ArchConfig:
    """ArchConfig of a registered variant, e.g. `variant_config("neonext_tiny", 384)`."""
    return timm.create_model(name, img_size=input_size, num_classes=num_classes).config


@register_model
def neonext_tiny(pretrained: bool = False, **kwargs: Any) -> NeoNeXt:
    args = dict(depths=(3, 3, 9, 3), widths=(96, 192, 384, 768), drop_path_rate=0.1)
    return _create_neonext("neonext_tiny", pretrained, **{**args, **kwargs})


@register_model
def neonext_small(pretrained: bool = False, **kwargs: Any) -> NeoNeXt:
    args = dict(depths=(3, 3, 27, 3), widths=(96, 192, 384, 768), drop_path_rate=0.4)
    return _create_neonext("neonext_small", pretrained, **{**args, **kwargs})


@register_model
def neonext_base(pretrained: bool = False, **kwargs: Any) -> NeoNeXt:
    args = dict(depths=(3, 3, 27, 3), widths=(128, 256, 512, 1024), drop_path_rate=0.5)
    return _create_neonext("neonext_base", pretrained, **{**args, **kwargs})


@register_model
def neonext_tiny_ref(pretrained: bool = False, **kwargs: Any) -> NeoNeXt:
    args = dict(depths=(3, 3, 9, 3), widths=(96, 192, 384, 768), drop_path_rate=0.1)
    return _create_neonext("neonext_tiny_ref", pretrained, **{**args, **REFERENCE_ARGS, **kwargs})


@register_model
def neonext_small_ref(pretrained: bool = False, **kwargs: Any) -> NeoNeXt:
    args = dict(depths=(3, 3, 27, 3), widths=(96, 192, 384, 768), drop_path_rate=0.4)
    return _create_neonext("neonext_small_ref", pretrained, **{**args, **REFERENCE_ARGS, **kwargs})


@register_model
def neonext_base_ref(pretrained: bool = False, **kwargs: Any) -> NeoNeXt:
    args = dict(depths=(3, 3, 27, 3), widths=(128, 256, 512, 1024), drop_path_rate=0.5)
    return _create_neonext("neonext_base_ref", pretrained, **{**args, **REFERENCE_ARGS, **kwargs})

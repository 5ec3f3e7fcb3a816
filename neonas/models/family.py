"""The paper's NeoNeXt-T/S/B as ArchConfigs, registered with timm.

Each variant is one line of depths and widths, as in ConvNeXt. Stages 1-3 split the channels
into two halves, 4x4 and 7x7 matrices, both shifted; stage 4 uses 7x7 matrices, no shift
(NEONEXT.md, section 4). Drop path 0.1 / 0.4 / 0.5 as in Table 2.
"""

from __future__ import annotations

from typing import Any

from timm.models import build_model_with_cfg, register_model

from neonas.arch import ArchConfig, CellSpec, StageSpec
from neonas.models.neonext import NeoNeXt, default_cfg

MIXED_SHIFTED = (CellSpec(size=4, share=0.5, shift=True), CellSpec(size=7, share=0.5, shift=True))
SEVEN_PLAIN = (CellSpec(size=7, share=1.0, shift=False),)


def neonext_config(
    name: str,
    depths: tuple[int, ...],
    widths: tuple[int, ...],
    drop_path_rate: float,
    input_size: int = 224,
    num_classes: int = 1000,
) -> ArchConfig:
    """A four-stage NeoNeXt in the paper's pattern: mixed shifted cells, then plain 7x7."""
    stages = []
    for index, (depth, width) in enumerate(zip(depths, widths, strict=True)):
        cells = SEVEN_PLAIN if index == len(depths) - 1 else MIXED_SHIFTED
        sampling = None if index == 0 else (2, 2, 1, 1)
        stages.append(StageSpec(depth=depth, width=width, cells=cells, sampling=sampling))
    return ArchConfig(
        name=name,
        input_size=input_size,
        num_classes=num_classes,
        stages=tuple(stages),
        drop_path_rate=drop_path_rate,
    )


VARIANTS: dict[str, dict[str, Any]] = {
    "neonext_tiny": dict(depths=(3, 3, 9, 3), widths=(96, 192, 384, 768), drop_path_rate=0.1),
    "neonext_small": dict(depths=(3, 3, 27, 3), widths=(96, 192, 384, 768), drop_path_rate=0.4),
    "neonext_base": dict(depths=(3, 3, 27, 3), widths=(128, 256, 512, 1024), drop_path_rate=0.5),
}


def variant_config(name: str, input_size: int = 224, num_classes: int = 1000) -> ArchConfig:
    """ArchConfig of a registered variant, e.g. `variant_config("neonext_tiny", 384)`."""
    return neonext_config(name, input_size=input_size, num_classes=num_classes, **VARIANTS[name])


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> NeoNeXt:
    if pretrained:
        raise ValueError(f"{variant}: neonas ships no pretrained weights (pretrained=False)")
    input_size = kwargs.pop("img_size", None) or 224
    config = variant_config(variant, input_size=input_size)
    # timm passes the registry's cfg (None here: no weights are registered); ours describes inputs.
    kwargs.pop("pretrained_cfg", None)
    return build_model_with_cfg(
        NeoNeXt,
        variant,
        pretrained=False,
        pretrained_cfg={"architecture": variant, **default_cfg(config)},
        feature_cfg={"out_indices": tuple(range(len(config.stages))), "flatten_sequential": True},
        config=config,
        **kwargs,
    )


@register_model
def neonext_tiny(pretrained: bool = False, **kwargs: Any) -> NeoNeXt:
    return _create("neonext_tiny", pretrained, **kwargs)


@register_model
def neonext_small(pretrained: bool = False, **kwargs: Any) -> NeoNeXt:
    return _create("neonext_small", pretrained, **kwargs)


@register_model
def neonext_base(pretrained: bool = False, **kwargs: Any) -> NeoNeXt:
    return _create("neonext_base", pretrained, **kwargs)

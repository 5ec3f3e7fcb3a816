"""BatchNorm folding for inference: every BatchNorm folds into the linear operator before it.

NeoNeXt uses BatchNorm instead of LayerNorm precisely so that this is possible (paper
section 4): after folding, a block is NeoCell(+bias) -> pointwise -> GELU -> pointwise.
Layer scales fold into the pointwise layer before them. The head's LayerNorm keeps its
normalisation (it depends on the sample); its affine part folds into the classifier.
"""

from __future__ import annotations

import copy
import warnings

import torch
from timm.layers import LayerNorm2d
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from neonas.models.neonext import (
    NeoNeXt,
    NeoNeXtBlock,
    PointwiseFirstTransition,
    SpaceToDepthStem,
    Transition,
)
from neonas.ops import NeoCell, fold_batchnorm


@torch.no_grad()
def fold_for_inference(model: NeoNeXt) -> NeoNeXt:
    """An eval-mode copy of `model` with every BatchNorm and layer scale folded away."""
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if isinstance(module, SpaceToDepthStem):
            module.conv, module.norm = fuse_conv_bn_eval(module.conv, module.norm), nn.Identity()
        elif isinstance(module, Transition):
            module.neocell, module.norm1 = (
                fold_batchnorm(module.neocell, module.norm1),
                nn.Identity(),
            )
            module.conv, module.norm2 = fuse_conv_bn_eval(module.conv, module.norm2), nn.Identity()
        elif isinstance(module, PointwiseFirstTransition):
            module.neocell, module.norm = fold_batchnorm(module.neocell, module.norm), nn.Identity()
        elif isinstance(module, NeoNeXtBlock):
            own_bias = module.neocell.bias is not None
            module.neocell, module.norm = fold_batchnorm(module.neocell, module.norm), nn.Identity()
            if not own_bias:  # the folded bias is then the BN shift: one value per channel
                _move_channel_bias(module.neocell, module.fc1)
            if hasattr(module.layer_scale, "gamma"):
                gamma = module.layer_scale.gamma
                module.fc2.weight.mul_(gamma.view(-1, 1, 1, 1))
                if module.fc2.bias is not None:
                    module.fc2.bias.mul_(gamma)
                module.layer_scale = nn.Identity()
    head = folded.head
    if isinstance(head.norm, LayerNorm2d) and head.norm.elementwise_affine:
        if isinstance(head.fc, nn.Linear):
            head.fc, head.norm = _fold_affine_into_linear(head.norm, head.fc)
    return folded


def fuse_for_inference(model: NeoNeXt) -> NeoNeXt:
    """Deprecated name of `fold_for_inference`, kept so existing callers keep working.

    Renamed because "fusion" in neonas is operator fusion on the Ascend model
    (evaluators/latency/fusion.py); this folds BatchNorms and layer scales away.
    """
    warnings.warn(
        "fuse_for_inference is deprecated: use fold_for_inference", DeprecationWarning, stacklevel=2
    )
    return fold_for_inference(model)


def _move_channel_bias(cell: NeoCell, pointwise: nn.Conv2d) -> None:
    """Move a NeoCell bias that is one value per channel into the pointwise layer after it.

    A cell without a learned bias gets, from BatchNorm folding, the BN shift t, constant over
    each channel's map; the pointwise layer is linear: W (y + t) + b = W y + (W t + b). So the
    block runs no bias pass over the NeoCell's output (benchmarks/model_breakdown.py).
    Decided by structure, not by comparing values, so it also runs on the meta device.
    """
    shift = torch.cat([b[:, 0, 0] for b in cell.bias])
    bias = pointwise.weight.flatten(1) @ shift
    if pointwise.bias is not None:
        bias = bias + pointwise.bias
    pointwise.bias = nn.Parameter(bias)
    cell.bias = None
    cell.reset_caches()


def _fold_affine_into_linear(norm: LayerNorm2d, linear: nn.Linear) -> tuple[nn.Linear, LayerNorm2d]:
    """linear(norm(x)) with the norm's affine part moved into the linear layer.

    The normalisation itself depends on the sample and stays; its scale s and shift t fold:
    W (s n + t) + b = (W s) n + (W t + b).
    """
    plain = LayerNorm2d(norm.normalized_shape[0], eps=norm.eps, affine=False)
    folded = copy.deepcopy(linear)
    bias = linear.bias if linear.bias is not None else torch.zeros_like(linear.weight[:, 0])
    folded.bias = nn.Parameter(bias + linear.weight @ norm.bias)
    folded.weight.copy_(linear.weight * norm.weight)
    return folded, plain

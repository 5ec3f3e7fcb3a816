"""Inference fusion: every BatchNorm folds into the linear operator before it.

NeoNeXt uses BatchNorm instead of LayerNorm precisely so that this is possible (paper
section 4): after folding, a block is NeoCell(+bias) -> pointwise -> GELU -> pointwise.
The head's LayerNorm keeps its normalisation; its affine part folds into the classifier.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from neonas.models.neonext import (
    NeoNeXt,
    NeoNeXtBlock,
    NeoNeXtHead,
    SpaceToDepthStem,
    Transition,
)
from neonas.ops import fold_batchnorm


@torch.no_grad()
def fuse_for_inference(model: NeoNeXt) -> NeoNeXt:
    """An eval-mode copy of `model` with every BatchNorm and layer scale folded away."""
    fused = copy.deepcopy(model).eval()
    for module in fused.modules():
        if isinstance(module, SpaceToDepthStem):
            module.conv, module.norm = fuse_conv_bn_eval(module.conv, module.norm), nn.Identity()
        elif isinstance(module, Transition):
            module.neocell, module.norm1 = (
                fold_batchnorm(module.neocell, module.norm1),
                nn.Identity(),
            )
            module.conv, module.norm2 = fuse_conv_bn_eval(module.conv, module.norm2), nn.Identity()
        elif isinstance(module, NeoNeXtBlock):
            module.neocell, module.norm = fold_batchnorm(module.neocell, module.norm), nn.Identity()
            if hasattr(module.layer_scale, "gamma"):
                gamma = module.layer_scale.gamma
                module.fc2.weight.mul_(gamma.view(-1, 1, 1, 1))
                module.fc2.bias.mul_(gamma)
                module.layer_scale = nn.Identity()
        elif isinstance(module, NeoNeXtHead) and isinstance(module.fc, nn.Linear):
            module.fc, module.norm = _fold_affine_into_linear(module.norm, module.fc)
    return fused


def _fold_affine_into_linear(
    norm: nn.LayerNorm, linear: nn.Linear
) -> tuple[nn.Linear, nn.LayerNorm]:
    """linear(norm(x)) with the norm's affine part moved into the linear layer.

    The normalisation itself depends on the sample and stays; its scale s and shift t fold:
    W (s n + t) + b = (W s) n + (W t + b).
    """
    plain = nn.LayerNorm(
        norm.normalized_shape, eps=norm.eps, elementwise_affine=False, device=linear.weight.device
    )
    scale, shift = norm.weight, norm.bias
    folded = copy.deepcopy(linear)
    folded.bias.copy_(linear.bias + linear.weight @ shift)
    folded.weight.copy_(linear.weight * scale)
    return folded, plain

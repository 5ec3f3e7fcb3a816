"""Inference fusion: every BatchNorm folds into the linear operator before it.

NeoNeXt uses BatchNorm instead of LayerNorm precisely so that this is possible (paper
section 4): after folding, a block is NeoCell(+bias) -> pointwise -> GELU -> pointwise.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from neonas.models.neonext import (
    ClassifierHead,
    NeoNeXt,
    NeoNeXtBlock,
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
        elif isinstance(module, ClassifierHead) and isinstance(module.fc, nn.Linear):
            module.fc, module.norm = _fold_norm_into_linear(module.norm, module.fc), nn.Identity()
    return fused


def _fold_norm_into_linear(norm: nn.BatchNorm1d, linear: nn.Linear) -> nn.Linear:
    """linear(norm(x)) as one linear layer: W (s x + t) + b = (W s) x + (W t + b)."""
    scale = norm.weight * (norm.running_var + norm.eps).rsqrt()
    shift = norm.bias - norm.running_mean * scale
    folded = copy.deepcopy(linear)
    folded.bias.copy_(linear.bias + linear.weight @ shift)
    folded.weight.copy_(linear.weight * scale)
    return folded

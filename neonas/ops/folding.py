"""Folding an eval-mode BatchNorm2d into the NeoCell before it, for inference."""

from __future__ import annotations

import copy

import torch
from torch import nn

from neonas.errors import UserError
from neonas.ops.cell import NeoCell


@torch.no_grad()
def fold_batchnorm(cell: NeoCell, bn: nn.BatchNorm2d) -> NeoCell:
    """A new NeoCell (bias=True) whose outputs equal bn(cell(x)) with bn in eval mode."""
    if not isinstance(cell, NeoCell) or not isinstance(bn, nn.BatchNorm2d):
        raise UserError("fold_batchnorm expects a NeoCell and the nn.BatchNorm2d that follows it")
    if bn.num_features != cell.channels:
        raise UserError(
            f"cannot fold BatchNorm2d({bn.num_features}) into NeoCell({cell.channels}): channel counts differ"
        )
    if bn.running_mean is None or bn.running_var is None:
        raise UserError(
            "cannot fold a BatchNorm2d without running statistics (track_running_stats=False)"
        )
    # bn(y) = y * scale + shift per channel; y = L X R + b, so scale goes into L and into b.
    scale = bn.running_var.add(bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    folded = copy.deepcopy(cell)
    if folded.bias is None:
        folded.bias = nn.ParameterList(
            nn.Parameter(
                torch.zeros(
                    left.shape[0],
                    left.shape[1],
                    right.shape[2],
                    dtype=left.dtype,
                    device=left.device,
                )
            )
            for left, right in zip(folded.left, folded.right, strict=True)
        )
    start = 0
    for left, bias in zip(folded.left, folded.bias, strict=True):
        stop = start + left.shape[0]
        s = scale[start:stop].to(left.dtype)[:, None, None]
        left.mul_(s)
        bias.mul_(s).add_(shift[start:stop].to(bias.dtype)[:, None, None])
        start = stop
    folded.reset_caches()
    return folded

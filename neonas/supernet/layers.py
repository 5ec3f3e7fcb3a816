"""Elastic layers: one full-size tensor, any leading slice of it run as a smaller layer.

Width is elastic by taking the first channels, so every subnet's channel c is the supernet's
channel c. NeoCell layers hold a matrix of every candidate size on every channel; a subnet's
groups take the rows of their own size and channel range, and its shifts only rearrange what
the operator does with them (they cost no weights). The operator itself is
`neonas.ops.neocell`, run once per (group, shift) subgroup with the layout
`neonas.ops.groups.subgroups` gives, so a subnet computes exactly what its stand-alone
`NeoCell` computes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neonas.arch import CellSpec
from neonas.ops import CellGroup, neocell, neoinit_
from neonas.ops.groups import split_channels, subgroups


def size_key(size: int) -> str:
    """ParameterDict key of the matrices of one size."""
    return f"k{size}"


def ratio_key(ratio: Sequence[int]) -> str:
    """ParameterDict key of a transition ratio (h, w, h', w')."""
    return "r" + "_".join(str(value) for value in ratio)


def elastic_batch_norm(x: Tensor, norm: nn.modules.batchnorm._NormBase) -> Tensor:
    """BatchNorm over the first x.shape[1] channels of `norm` (its running statistics too)."""
    channels = x.shape[1]
    # Slices of the buffers are views: training updates the statistics of these channels only.
    running_mean = None if norm.running_mean is None else norm.running_mean[:channels]
    running_var = None if norm.running_var is None else norm.running_var[:channels]
    use_batch = norm.training or running_mean is None
    return F.batch_norm(
        x,
        running_mean,
        running_var,
        norm.weight[:channels],
        norm.bias[:channels],
        use_batch,
        0.0 if norm.momentum is None else norm.momentum,
        norm.eps,
    )


def elastic_norm(x: Tensor, norm: nn.Module) -> Tensor:
    """A BatchNorm or LayerNorm (over channels of [N, C]) restricted to x's channels."""
    if isinstance(norm, nn.modules.batchnorm._NormBase):
        return elastic_batch_norm(x, norm)
    if isinstance(norm, nn.LayerNorm):
        channels = x.shape[-1]
        return F.layer_norm(x, (channels,), norm.weight[:channels], norm.bias[:channels], norm.eps)
    raise TypeError(f"no elastic form of {type(norm).__name__}")


def elastic_pointwise(x: Tensor, conv: nn.Conv2d, out_channels: int) -> Tensor:
    """1x1 convolution from x's channels to the first `out_channels` outputs of `conv`."""
    weight = conv.weight[:out_channels, : x.shape[1]]
    bias = None if conv.bias is None else conv.bias[:out_channels]
    return F.conv2d(x, weight, bias)


class ElasticNeoCell(nn.Module):
    """NeoCell matrices for every candidate size on every channel of a block.

    Args:
        channels: the most channels any subnet gives the block.
        sizes: every candidate matrix size k (k x k matrices, as the space's cells have).
    """

    def __init__(self, channels: int, sizes: Sequence[int]) -> None:
        super().__init__()
        self.channels = channels
        self.left = nn.ParameterDict()
        self.right = nn.ParameterDict()
        for size in sizes:
            self.left[size_key(size)] = nn.Parameter(neoinit_(torch.empty(channels, size, size)))
            self.right[size_key(size)] = nn.Parameter(neoinit_(torch.empty(channels, size, size)))

    def group_weights(
        self, width: int, cells: Sequence[CellSpec]
    ) -> list[tuple[CellGroup, Tensor, Tensor]]:
        """(group, left [C_g, k, k], right [C_g, k, k]) of each group of a subnet's cells."""
        counts = split_channels(width, [cell.share for cell in cells])
        weights, start = [], 0
        for cell, count in zip(cells, counts, strict=True):
            key = size_key(cell.size)
            group = CellGroup(size=cell.size, share=cell.share, shift=cell.shift)
            weights.append(
                (
                    group,
                    self.left[key][start : start + count],
                    self.right[key][start : start + count],
                )
            )
            start += count
        return weights

    def forward(self, x: Tensor, cells: Sequence[CellSpec]) -> Tensor:
        """[N, C, H, W] -> [N, C, H, W] with the groups of `cells` over x's C channels."""
        width = x.shape[1]
        weights = self.group_weights(width, cells)
        groups = [group for group, _, _ in weights]
        starts = [0]
        for _, left, _ in weights[:-1]:
            starts.append(starts[-1] + left.shape[0])
        outputs = []
        for sub in subgroups(width, groups):
            _, left, right = weights[sub.group]
            begin, end = sub.start - starts[sub.group], sub.stop - starts[sub.group]
            outputs.append(
                neocell(
                    x[:, sub.start : sub.stop], left[begin:end], right[begin:end], shift=sub.shift
                )
            )
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)


class ElasticTransitionCell(nn.Module):
    """Transition NeoCell matrices, one pair per ratio (h, w -> h', w'), on every input channel."""

    def __init__(self, channels: int, ratios: Sequence[tuple[int, int, int, int]]) -> None:
        super().__init__()
        self.left = nn.ParameterDict()
        self.right = nn.ParameterDict()
        for ratio in ratios:
            h, w, h_out, w_out = ratio
            self.left[ratio_key(ratio)] = nn.Parameter(neoinit_(torch.empty(channels, h_out, h)))
            self.right[ratio_key(ratio)] = nn.Parameter(neoinit_(torch.empty(channels, w, w_out)))

    def weights(self, width: int, ratio: Sequence[int]) -> tuple[Tensor, Tensor]:
        """left [C, h', h] and right [C, w, w'] of the first `width` channels for `ratio`."""
        key = ratio_key(ratio)
        return self.left[key][:width], self.right[key][:width]

    def forward(self, x: Tensor, ratio: Sequence[int]) -> Tensor:
        left, right = self.weights(x.shape[1], ratio)
        return neocell(x, left, right)

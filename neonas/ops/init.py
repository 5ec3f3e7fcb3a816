"""Initialisation of NeoCell matrices: NeoInit (paper Algorithm 1) and the random-normal baseline."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def neoinit_base(rows: int, cols: int) -> Tensor:
    """The noise-free NeoInit matrix: identity, or a 'skewed identity' that averages (pools)."""
    base = torch.zeros(rows, cols, dtype=torch.float64)
    if rows == cols:
        return torch.eye(rows, dtype=torch.float64)
    # Rows < cols: row i averages a run of `step` columns; rows > cols: the transpose pattern.
    short, long = min(rows, cols), max(rows, cols)
    step = round(long / short)
    for i in range(short):
        start, end = i * step, min((i + 1) * step, long)
        if end <= start:  # Algorithm 1 leaves such a line zero (only when round() rounds up)
            continue
        if rows < cols:
            base[i, start:end] = 1.0 / (end - start)
        else:
            base[start:end, i] = 1.0 / (end - start)
    return base


@torch.no_grad()
def neoinit_(weight: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """NeoInit (Algorithm 1) in place on the last two dims of `weight`, every leading index alike.

    Square matrices start as identity, non-square ones as average pooling; then N(0, std) noise
    with std = 1 / sqrt(rows * cols) is added element-wise (fresh noise for every matrix).
    """
    if weight.dim() < 2:
        raise ValueError(
            f"neoinit_ needs a tensor of at least 2 dims, got shape {tuple(weight.shape)}"
        )
    rows, cols = weight.shape[-2:]
    base = neoinit_base(rows, cols).to(device=weight.device, dtype=weight.dtype)
    noise = torch.randn(weight.shape, generator=generator, dtype=weight.dtype, device="cpu")
    weight.copy_(base + noise.to(weight.device) / math.sqrt(rows * cols))
    return weight


@torch.no_grad()
def normal_init_(left: Tensor, right: Tensor, generator: torch.Generator | None = None) -> None:
    """The paper's ablation baseline: L ~ N(0, 1/sqrt(h)), R ~ N(0, 1/sqrt(w)) (std = 1/sqrt)."""
    # left [C, h', h] contracts over h (its last dim), right [C, w, w'] over w (its first matrix dim).
    for weight, fan_in in ((left, left.shape[-1]), (right, right.shape[-2])):
        noise = torch.randn(weight.shape, generator=generator, dtype=weight.dtype, device="cpu")
        weight.copy_(noise.to(weight.device) / math.sqrt(fan_in))

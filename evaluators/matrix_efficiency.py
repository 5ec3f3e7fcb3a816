"""Matrix efficiency (the MEM of ISyNet): the share of a matrix unit's work that is useful.

A Da Vinci cube multiplies 16x16 by 16x16 fp16 fractals, so every product is padded to
multiples of 16 in M, K and N; a 1x49 depthwise "GEMM" wastes most of each fractal, a
384x384 pointwise one almost none. Matrix efficiency = useful multiply-adds / padded ones,
over every convolution (as im2col GEMM), linear, matmul and NeoCell product. NeoCells count
in the tiled form the cube executes (evaluators.tiled_neocell): the zeros of a block-diagonal
tile are multiplied, so they are waste, not work (7x7 patches: 98 of 256 entries of a tile).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from torch import nn

from evaluators.op_trace import OpRecord, record_ops
from neonas.arch import ArchConfig
from neonas.errors import UserError
from neonas.models import build_model

CUBE_FRACTAL = 16  # Da Vinci cube: 16x16x16 fp16 multiply-adds per cycle (see latency/ascend.py)


@dataclass(frozen=True)
class MatrixEfficiency:
    """Useful and padded multiply-adds, in total and per module (innermost, fvcore names)."""

    useful_macs: int
    padded_macs: int
    by_module: dict[str, tuple[int, int]] = field(repr=False)  # name -> (useful, padded)

    @property
    def total(self) -> float:
        """Useful / padded over the network; 1.0 for a network without matrix work."""
        return self.useful_macs / self.padded_macs if self.padded_macs else 1.0

    def per_module(self) -> dict[str, float]:
        """Efficiency of each module that runs matrix work."""
        return {name: useful / padded for name, (useful, padded) in self.by_module.items()}

    def grouped(self, group: Callable[[str], str]) -> dict[str, float]:
        """Efficiency per group of modules, e.g. per stage with `evaluators.segments.stage_of`."""
        sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for name, (useful, padded) in self.by_module.items():
            sums[group(name)][0] += useful
            sums[group(name)][1] += padded
        return {name: useful / padded for name, (useful, padded) in sums.items()}


def efficiency_of_ops(ops: Iterable[OpRecord], fractal: int = CUBE_FRACTAL) -> MatrixEfficiency:
    """Matrix efficiency of recorded ops (so the Ascend model can share one recording)."""
    by_module: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for op in ops:
        for gemm in op.gemms:
            by_module[op.module][0] += gemm.macs
            by_module[op.module][1] += gemm.padded_macs(fractal)
    useful = sum(u for u, _ in by_module.values())
    padded = sum(p for _, p in by_module.values())
    return MatrixEfficiency(useful, padded, {k: (u, p) for k, (u, p) in by_module.items()})


def matrix_efficiency_report(
    model: nn.Module, input_shape: Sequence[int], fractal: int = CUBE_FRACTAL
) -> MatrixEfficiency:
    """Matrix efficiency of `model` on `input_shape` ((C, H, W) or (N, C, H, W)), per module."""
    return efficiency_of_ops(record_ops(model, input_shape), fractal)


def matrix_efficiency(
    model: nn.Module, input_shape: Sequence[int], fractal: int = CUBE_FRACTAL
) -> float:
    """One number for a search metric or constraint: useful / padded multiply-adds."""
    return matrix_efficiency_report(model, input_shape, fractal).total


@dataclass(frozen=True)
class EfficiencySpread:
    """Matrix efficiency over a sample of networks (e.g. drawn from a search space)."""

    mean: float
    std: float
    min: float
    max: float
    samples: int


def efficiency_spread(configs: Iterable[ArchConfig]) -> EfficiencySpread:
    """Mean and spread of matrix efficiency over the networks `configs` describe."""
    values = [
        matrix_efficiency(build_model(c), (c.in_chans, c.input_size, c.input_size)) for c in configs
    ]
    if not values:
        raise UserError("matrix efficiency of a sample needs at least one network")
    return EfficiencySpread(
        mean=statistics.fmean(values),
        std=statistics.pstdev(values),
        min=min(values),
        max=max(values),
        samples=len(values),
    )

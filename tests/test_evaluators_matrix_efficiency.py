"""Matrix efficiency: useful over 16-fractal-padded multiply-adds, from the recorded aten ops."""

import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evaluators.matrix_efficiency import (
    efficiency_of_ops,
    efficiency_spread,
    matrix_efficiency,
    matrix_efficiency_report,
)
from evaluators.op_trace import Gemm, record_ops
from evaluators.segments import stage_of
from neonas.models import build_model
from neonas.models.family import neonext_config
from neonas.ops import NeoCell
from neonas.search import load_space


class Attention(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(x, x, x)


def test_full_fractals_are_fully_efficient() -> None:
    assert matrix_efficiency(nn.Linear(32, 16), (16, 32)) == 1.0


def test_linear_pads_every_dimension_to_16() -> None:
    # one sample: M=1 -> 16, K=10 -> 16, N=10 -> 16
    assert matrix_efficiency(nn.Linear(10, 10), (1, 10)) == pytest.approx(100 / 16**3)


def test_convolution_is_an_im2col_gemm() -> None:
    ops = record_ops(nn.Conv2d(3, 16, 3), (1, 3, 6, 6))
    assert ops[0].gemms == (Gemm(m=16, k=27, n=16, count=1),)
    assert matrix_efficiency(nn.Conv2d(3, 16, 3), (1, 3, 6, 6)) == pytest.approx(27 / 32)


def test_depthwise_convolution_is_one_narrow_gemm_per_channel() -> None:
    ops = record_ops(nn.Conv2d(8, 8, 3, padding=1, groups=8), (2, 8, 4, 4))
    assert ops[0].gemms == (Gemm(m=1, k=9, n=16, count=16),)


def test_neocell_is_recorded_in_the_tiled_form_the_cube_runs() -> None:
    cell = NeoCell(16, 4)  # 4x4 patches: tiles of 16 rows hold four patches each
    ops = record_ops(cell, (1, 16, 32, 32))
    assert [op.op for op in ops] == ["neocell"]
    useful = 4 * 16 * 32 * 16  # per tile: 4 blocks of 4x4, times N*W=32 columns, 16 channels
    assert list(ops[0].gemms) == [
        *[Gemm(16, 16, 32, 16, useful)] * 2,  # A @ X: two 16-row tiles along H
        *[Gemm(32, 16, 16, 16, useful)] * 2,  # (A X) @ B: two 16-row tiles along W
    ]
    # Zeros inside a tile are waste: 4 of 16 rows of every column block are useful.
    assert matrix_efficiency(cell, (1, 16, 32, 32)) == pytest.approx(0.25)


def test_seven_by_seven_patches_use_fourteen_of_sixteen_rows_two_patches_per_tile() -> None:
    ops = record_ops(NeoCell(8, 7), (1, 8, 56, 56))
    left = ops[0].gemms[0]
    assert (left.m, left.k, left.n, left.count) == (14, 14, 56, 8)
    assert left.macs == 2 * 49 * 56 * 8
    # useful 2 * 49 of a padded 16 x 16, over N*W = 56 padded to 64
    assert matrix_efficiency(NeoCell(8, 7), (1, 8, 56, 56)) == pytest.approx(98 * 56 / (256 * 64))


def test_neocell_is_recorded_tiled_whatever_the_cpu_would_run() -> None:
    cell = NeoCell(16, 2)  # 2x2 matrices on a 64x64 map: 'auto' picks the patch form on the CPU
    gemms = [gemm for op in record_ops(cell, (1, 16, 64, 64)) for gemm in op.gemms]
    assert gemms[0] == Gemm(16, 16, 64, 16, 8 * 4 * 64 * 16)
    assert cell.impl == "auto"


def test_attention_is_two_batched_gemms() -> None:
    ops = record_ops(Attention(), (2, 4, 20, 8))  # batch 2, 4 heads, 20 tokens, dim 8
    gemms = [gemm for op in ops for gemm in op.gemms]
    assert gemms == [Gemm(20, 8, 20, 8), Gemm(20, 20, 8, 8)]  # Q K^T, then softmax(.) V


def test_views_are_not_recorded_and_ops_name_their_innermost_module() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 4, 1), nn.Flatten(), nn.Sequential(nn.ReLU(), nn.Linear(4 * 4, 2))
    )
    ops = record_ops(model, (1, 3, 2, 2))
    assert [(op.op, op.module) for op in ops] == [
        ("convolution", "0"),
        ("relu", "2.0"),
        ("addmm", "2.1"),
    ]
    # The flatten is a view: relu reads the convolution's output under the same key.
    assert ops[1].inputs[0].key == ops[0].outputs[0].key


def test_network_without_matrix_work_wastes_nothing() -> None:
    assert matrix_efficiency(nn.ReLU(), (1, 4, 4, 4)) == 1.0


def test_report_gives_layers_and_stages() -> None:
    config = neonext_config(
        "t", (1, 1), (16, 32), drop_path_rate=0.0, input_size=64, num_classes=10
    )
    report = matrix_efficiency_report(build_model(config), (3, 64, 64))
    layers = report.per_module()
    assert layers["head.fc"] == pytest.approx(32 * 10 / (16 * 32 * 16))  # M=1, K=32, N=10
    stages = report.grouped(stage_of)
    assert set(stages) == {"stem", "stages.0", "stages.1", "head"}
    assert 0 < report.total < 1


def test_efficiency_of_ops_sums_useful_and_padded_work() -> None:
    ops = record_ops(nn.Linear(16, 16), (16, 16)) + record_ops(nn.Linear(8, 8), (8, 8))
    report = efficiency_of_ops(ops)
    assert (report.useful_macs, report.padded_macs) == (16**3 + 8**3, 2 * 16**3)


def test_a_sample_of_networks_gets_mean_and_spread() -> None:
    rng = random.Random(0)
    space = load_space("tiny")
    result = efficiency_spread(space.sample(rng) for _ in range(3))
    assert result.samples == 3
    assert 0 < result.min <= result.mean <= result.max <= 1 and result.std >= 0

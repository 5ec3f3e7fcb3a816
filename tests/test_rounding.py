"""Rounding of NeoCell output sizes on maps a patch does not divide: "ceil" (neonas's own
networks) and "floor" (the authors' code, the `*_ref` networks and converted checkpoints).

The expected matrices are built here, block by block, from each rule's output size; the sizes
are those of NeoNeXt-T's transitions at 200 and 240 px (stage maps 50/25/12.5, 60/30/15/7.5).
"""

from __future__ import annotations

import math

import pytest
import timm
import torch
from torch import Tensor

from neonas.cli import main
from neonas.errors import UserError
from neonas.ops import CellGroup, NeoCell
from neonas.ops.functional import DenseIndex, output_length


def block_diagonal(block: Tensor, rows: int, cols: int) -> Tensor:
    """[C, rows, cols]: block [C, a, b] at (i*a, i*b) for i = 0, 1, ..., cut at rows x cols."""
    channels, a, b = block.shape
    matrix = torch.zeros(channels, rows, cols, dtype=block.dtype)
    i = 0
    while i * a < rows and i * b < cols:
        keep_a, keep_b = min(a, rows - i * a), min(b, cols - i * b)
        matrix[:, i * a : i * a + keep_a, i * b : i * b + keep_b] = block[:, :keep_a, :keep_b]
        i += 1
    return matrix


# (map, patch h -> h', output length under ceil, under floor)
SIZES = [
    (15, 2, 1, 8, 7),  # NeoNeXt-T at 240 px, into stage 4: 7.5
    (25, 2, 1, 13, 12),  # at 200 px, into stage 3: 12.5
    (13, 2, 1, 7, 6),  # at 200 px, into stage 4 after ceil: 6.5
    (14, 2, 1, 7, 7),  # at 224 px: divides, both rules agree
    (7, 3, 2, 5, 4),  # a 3 -> 2 cell: 14/3
    (5, 2, 3, 8, 7),  # up-sampling 2 -> 3: 7.5
]


@pytest.mark.parametrize(("length", "h", "h_out", "ceil", "floor"), SIZES)
def test_output_length_by_rule(length: int, h: int, h_out: int, ceil: int, floor: int) -> None:
    assert output_length(length, h, h_out) == ceil  # the default stays neonas's rule
    assert output_length(length, h, h_out, "ceil") == ceil
    assert output_length(length, h, h_out, "floor") == floor


def test_floor_agrees_with_the_references_float_formula_for_its_2_to_1_cells() -> None:
    # The authors' code sizes its matrices as math.floor((H / float(h)) * h') (NeoCellCPP).
    for length in range(1, 4097):
        assert output_length(length, 2, 1, "floor") == math.floor((length / 2.0) * 1)


@pytest.mark.parametrize("rounding", ["ceil", "floor"])
@pytest.mark.parametrize(("length", "h", "h_out", "ceil", "floor"), SIZES)
def test_dense_operators_are_the_block_diagonal_matrices_of_each_rule(
    rounding: str, length: int, h: int, h_out: int, ceil: int, floor: int
) -> None:
    torch.manual_seed(0)
    cell = NeoCell(3, CellGroup(h, out=h_out), rounding=rounding)
    rows = ceil if rounding == "ceil" else floor
    width = length + 3  # a non-square map: both axes follow the rule on their own
    cols = output_length(width, h, h_out, rounding)
    with torch.no_grad():
        left, right, bias = cell.dense_operands(length, width, torch.device("cpu"), torch.float32)
    assert bias is None
    assert torch.equal(left, block_diagonal(cell.left[0], rows, length))
    assert torch.equal(right, block_diagonal(cell.right[0], width, cols))
    assert cell.output_size(length, width) == (rows, cols)


@pytest.mark.parametrize("impl", ["dense", "tiled", "patch"])
@pytest.mark.parametrize("rounding", ["ceil", "floor"])
def test_every_form_computes_a_x_b_with_the_rules_matrices(impl: str, rounding: str) -> None:
    torch.manual_seed(1)
    cell = NeoCell(4, CellGroup(2, out=1), bias=True, impl=impl, rounding=rounding).double()
    with torch.no_grad():
        cell.bias[0].normal_()
    x = torch.randn(2, 4, 15, 11, dtype=torch.float64)
    rows, cols = (8, 6) if rounding == "ceil" else (7, 5)
    a = block_diagonal(cell.left[0].detach(), rows, 15)
    b = block_diagonal(cell.right[0].detach(), 11, cols)
    expected = a @ x @ b + cell.bias[0].detach()  # 1x1 output patches: one bias per channel
    y = cell(x)
    assert y.shape == (2, 4, rows, cols)
    assert torch.allclose(y, expected, atol=1e-12)


def test_floor_is_the_leading_part_of_ceil_and_gradients_flow() -> None:
    torch.manual_seed(2)
    ceil = NeoCell(6, CellGroup((2, 3), out=(1, 2)), impl="dense")
    floor = NeoCell(6, CellGroup((2, 3), out=(1, 2)), impl="dense", rounding="floor")
    floor.load_state_dict(ceil.state_dict())
    x = torch.randn(1, 6, 15, 10, requires_grad=True)
    y_floor = floor(x)
    assert y_floor.shape[2:] == (7, 6) and ceil(x).shape[2:] == (8, 7)  # 20/3: 7 or 6
    assert torch.allclose(y_floor, ceil(x)[:, :, :7, :6])
    y_floor.sum().backward()
    assert floor.left[0].grad is not None and x.grad is not None
    assert torch.all(x.grad[:, :, 14] == 0)  # the last, partial patch row feeds no output


def test_dense_index_takes_the_rule() -> None:
    index = DenseIndex([(0, 0, 1, 0)], [(2, 2, 1, 1)], 15, 15, "floor")
    assert tuple(index.left.shape) == (1, 7, 15) and tuple(index.right.shape) == (1, 15, 7)
    assert tuple(DenseIndex([(0, 0, 1, 0)], [(2, 2, 1, 1)], 15, 15).left.shape) == (1, 8, 15)


def test_square_cells_keep_the_map_under_either_rule() -> None:
    groups = [CellGroup(4, share=0.5, shift=True), CellGroup(7, share=0.5)]
    ceil, floor = NeoCell(8, groups), NeoCell(8, groups, rounding="floor")
    floor.load_state_dict(ceil.state_dict())
    assert ceil.output_size(15, 13) == floor.output_size(15, 13) == (15, 13)
    x = torch.randn(1, 8, 15, 13)
    with torch.no_grad():
        assert torch.equal(ceil(x), floor(x))


def test_bad_rounding_and_an_emptied_map_are_one_line_errors() -> None:
    with pytest.raises(UserError, match="unknown NeoCell rounding 'round'"):
        NeoCell(2, CellGroup(2, out=1), rounding="round")
    cell = NeoCell(2, CellGroup(2, out=1), rounding="floor")
    with pytest.raises(UserError, match="turns the 1x5 map into 0x2"):
        cell(torch.randn(1, 2, 1, 5))
    assert "rounding='floor'" in repr(cell)


def test_unit_caches_tell_the_rules_apart() -> None:
    """FLOP and latency traces are shared by structure_key (built from extra_repr): a floor
    transition must not reuse a ceil one's trace, whose output is larger."""
    from evaluators.segments import structure_key

    ceil = NeoCell(4, CellGroup(2, out=1))
    floor = NeoCell(4, CellGroup(2, out=1), rounding="floor")
    assert structure_key(ceil) != structure_key(floor)
    assert structure_key(ceil) == structure_key(NeoCell(4, CellGroup(2, out=1)))


# --- the models --------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "last"), [("neonext_tiny", 8), ("neonext_tiny_ref", 7)])
def test_tiny_at_240_px_has_the_stage_maps_of_its_rule(name: str, last: int) -> None:
    """NeoNeXt-T's stage 4 at 240 px: 8x8 in neonas, 7x7 as the authors' code computes it."""
    model = timm.create_model(name, img_size=240, num_classes=10).eval()
    with torch.no_grad():
        features = model.forward_intermediates(torch.randn(1, 3, 240, 240), intermediates_only=True)
    sizes = [tuple(f.shape[2:]) for f in features]
    assert sizes == [(60, 60), (30, 30), (15, 15), (last, last)]
    assert sizes == model.config.feature_sizes()
    assert model.pretrained_cfg["pool_size"] == (last, last)


def test_a_ref_model_built_at_224_rounds_down_on_200_px_images() -> None:
    # One block per stage keeps the test fast; the transitions are NeoNeXt-T's.
    model = timm.create_model("neonext_tiny_ref", num_classes=10, depths=(1, 1, 1, 1)).eval()
    with torch.no_grad():
        features = model.forward_intermediates(torch.randn(1, 3, 200, 200), intermediates_only=True)
    assert [tuple(f.shape[2:]) for f in features] == [(50, 50), (25, 25), (12, 12), (6, 6)]


# --- the command line ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "neonext_tiny", "--res", "230"], "input_size 230 is not a multiple of"),
        (["--model", "neonext_tiny_ref", "--res", "200"], "larger than the 6x6 feature map"),
    ],
)
def test_profile_refuses_sizes_a_variant_cannot_be_built_at_in_one_line(
    argv: list[str], message: str, capsys
) -> None:
    assert main(["profile", *argv, "--hw", "ascend310", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and message in captured.err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["neonext_tiny", "neonext_tiny_ref"])
def test_profile_runs_at_240_px(name: str, capsys) -> None:
    assert main(["profile", "--model", name, "--res", "240", "--hw", "ascend310", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and '"input_size": [3, 240, 240]' in out

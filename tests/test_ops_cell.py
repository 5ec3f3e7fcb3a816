"""Specification of the NeoCell module: groups, channel splits, shifts, sizes, MACs, validation."""

import pytest
import torch
from torch import nn

from neonas.errors import UserError
from neonas.ops import CellGroup, NeoCell, native, neocell, split_channels
from neonas.ops.functional import choose_impl
from neonas.ops.groups import subgroups

NEONEXT_STAGE = [CellGroup(4, share=0.5, shift=True), CellGroup(7, share=0.5, shift=True)]


def randomized(cell: NeoCell, seed: int = 0) -> NeoCell:
    """The cell in float64 with random matrices and biases (NeoInit is too close to identity)."""
    generator = torch.Generator().manual_seed(seed)
    cell = cell.double()
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return cell


def test_split_channels_rounds_shares_and_gives_the_remainder_to_the_last_group():
    assert split_channels(96, [0.5, 0.5]) == [48, 48]
    assert split_channels(10, [1 / 3, 1 / 3, 1 / 3]) == [3, 3, 4]
    assert split_channels(7, [0.25, 0.75]) == [2, 5]


def test_split_channels_rejects_shares_not_summing_to_one_and_empty_groups():
    with pytest.raises(UserError, match="sum to"):
        split_channels(16, [0.5, 0.4])
    with pytest.raises(UserError, match="at least 1 channel"):
        split_channels(3, [0.1, 0.9])


def test_shifted_group_splits_into_k_subgroups_with_shifts_0_to_k_minus_1():
    layout = subgroups(96, NEONEXT_STAGE)
    four = [s for s in layout if s.group == 0]
    seven = [s for s in layout if s.group == 1]
    assert [s.shift for s in four] == [0, 1, 2, 3]
    assert [s.shift for s in seven] == list(range(7))
    assert layout[-1].stop == 96 and all(
        a.stop == b.start for a, b in zip(layout[:-1], layout[1:], strict=True)
    )


def test_weights_have_the_documented_per_group_layout():
    cell = NeoCell(
        10,
        [CellGroup((2, 3), out=(4, 6), share=0.3), CellGroup((1, 4), out=(2, 8), share=0.7)],
        bias=True,
    )
    assert cell.channels == 10
    assert [tuple(p.shape) for p in cell.left] == [(3, 4, 2), (7, 2, 1)]
    assert [tuple(p.shape) for p in cell.right] == [(3, 3, 6), (7, 4, 8)]
    assert [tuple(p.shape) for p in cell.bias] == [(3, 4, 6), (7, 2, 8)]


def test_int_and_single_group_arguments():
    assert NeoCell(8).groups == (CellGroup(7),)
    assert NeoCell(8, 3).groups == (CellGroup(3),)
    assert NeoCell(8, CellGroup(2, out=1)).groups == (CellGroup(2, out=1),)


def test_multi_group_module_equals_neocell_per_subgroup():
    cell = randomized(NeoCell(24, NEONEXT_STAGE, bias=True))
    x = torch.randn(2, 24, 14, 14, dtype=torch.float64)
    parts = []
    for sub in subgroups(24, cell.groups):
        start = cell._group_starts[sub.group]
        sl = slice(sub.start - start, sub.stop - start)
        parts.append(
            neocell(
                x[:, sub.start : sub.stop],
                cell.left[sub.group][sl],
                cell.right[sub.group][sl],
                shift=sub.shift,
                bias=cell.bias[sub.group][sl],
            )
        )
    for impl in ("dense", "tiled", "patch", "auto"):
        cell.impl = impl
        assert (cell(x) - torch.cat(parts, 1)).abs().max() < 1e-10


@pytest.mark.parametrize("size", [(56, 56), (14, 14), (7, 7), (9, 5)])
def test_dense_tiled_and_patch_forms_of_the_module_agree(size):
    cell = randomized(NeoCell(22, NEONEXT_STAGE, bias=True))
    x = torch.randn(3, 22, *size, dtype=torch.float64)
    dense = cell(x)
    for impl, tile in (("patch", 16), ("tiled", 16), ("tiled", 32), ("tiled", 5)):
        cell.impl, cell.tile = impl, tile
        assert (dense - cell(x)).abs().max() < 1e-10, (impl, tile)


def test_down_sampling_cell_halves_the_map():
    cell = NeoCell(4, CellGroup(2, out=1))
    assert cell(torch.randn(2, 4, 56, 56)).shape == (2, 4, 28, 28)
    assert cell(torch.randn(2, 4, 7, 7)).shape == (2, 4, 4, 4)  # ceil(7 / 2)
    assert cell.output_size(7, 7) == (4, 4)


def test_fractional_sampling_3_to_2():
    cell = randomized(NeoCell(6, [CellGroup(3, out=2, share=0.5), CellGroup(6, out=4, share=0.5)]))
    x = torch.randn(2, 6, 12, 9, dtype=torch.float64)
    assert cell.output_size(12, 9) == (8, 6)
    y = cell(x)
    assert y.shape == (2, 6, 8, 6)
    for impl in ("patch", "tiled"):
        cell.impl = impl
        assert (y - cell(x)).abs().max() < 1e-10


def test_groups_with_different_sampling_ratios_are_rejected():
    with pytest.raises(UserError, match="same sampling ratio"):
        NeoCell(8, [CellGroup(2, out=1, share=0.5), CellGroup(3, share=0.5)])


def test_macs_follow_the_dense_and_patch_formulas():
    cell = NeoCell(96, [CellGroup(4, share=0.5), CellGroup(7, share=0.5)])
    assert cell.macs(56, 56) == 96 * (56 * 56 * 56 + 56 * 56 * 56)
    assert cell.macs(56, 56, form="patch") == 48 * 2 * 56 * 56 * 4 + 48 * 2 * 56 * 56 * 7  # 2CHWk
    down = NeoCell(8, CellGroup(2, out=1))
    assert down.macs(7, 7) == 8 * (4 * 7 * 7 + 4 * 7 * 4)  # C (H' H W + H' W W')
    assert down.macs(7, 7, form="patch") == 8 * 4 * 4 * (1 * 2 * 2 + 1 * 2 * 1)


def test_patch_and_tiled_macs_count_the_shifted_grids_as_executed():
    # A shift s pads k - s in front: ceil((56 + 4 - s) / 4) = 15 patches per axis for s > 0.
    shifted = NeoCell(96, NEONEXT_STAGE)
    four = 12 * (14 * 14 + 3 * 15 * 15) * 2 * 4**3
    seven = (6 * 8 * 8 + (5 * 6 + 12) * 9 * 9) * 2 * 7**3  # 48 = 6 * 6 + 12 (reference split)
    assert shifted.macs(56, 56, form="patch") == four + seven
    assert shifted.macs(56, 56) == NeoCell(96, 7).macs(56, 56)  # the dense count ignores shifts
    # Tiled, target 16: 16-row tiles of four 4x4 patches, 14-row tiles of two 7x7 patches.
    tiles_four = 12 * (4 * 4 + 3 * 4 * 4) * 2 * 16**3  # ceil(56/16) = ceil(59/16) = 4
    tiles_seven = (6 * 4 * 4 + 42 * 5 * 5) * 2 * 14**3  # ceil(56/14) = 4, ceil(62/14) = 5
    assert shifted.macs(56, 56, form="tiled") == tiles_four + tiles_seven
    wide = NeoCell(96, NEONEXT_STAGE, tile=32)  # 32-row and 28-row tiles
    assert (
        wide.macs(56, 56, form="tiled")
        == 48 * 2 * 2 * 2 * 32**3 + (6 * 2 * 2 + 42 * 3 * 3) * 2 * 28**3
    )
    with pytest.raises(UserError, match="MAC form"):
        shifted.macs(56, 56, form="sparse")


def test_gradcheck_through_the_module():
    cell = randomized(
        NeoCell(5, [CellGroup(3, share=0.6, shift=True), CellGroup(2, share=0.4)], bias=True)
    )
    x = torch.randn(2, 5, 7, 6, dtype=torch.float64, requires_grad=True)
    for impl in ("dense", "tiled", "patch"):
        cell.impl = impl
        assert torch.autograd.gradcheck(cell, (x,))
        params = list(cell.parameters())
        grads = torch.autograd.grad(cell(x).square().sum(), params)
        assert all(g.abs().sum() > 0 for g in grads)


def test_eval_cache_follows_parameter_updates():
    cell = NeoCell(4, 2).eval()
    x = torch.randn(1, 4, 4, 4)
    with torch.no_grad():
        before = cell(x)
        cell.left[0].mul_(2.0)
        after = cell(x)
    torch.testing.assert_close(after, 2 * before)


def test_float32_input_on_float32_module():
    cell = NeoCell(8, NEONEXT_STAGE)
    y = cell(torch.randn(2, 8, 28, 28))
    assert y.dtype == torch.float32 and y.shape == (2, 8, 28, 28)


def test_state_dict_round_trips():
    cell = NeoCell(8, NEONEXT_STAGE, bias=True)
    other = NeoCell(8, NEONEXT_STAGE, bias=True)
    other.load_state_dict(cell.state_dict())
    x = torch.randn(1, 8, 8, 8)
    torch.testing.assert_close(other(x), cell(x))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(channels=0), "channel count"),
        (dict(channels=8, groups=[]), "groups"),
        (dict(channels=8, groups="7"), "groups"),
        (dict(channels=8, groups=[7]), "CellGroup"),
        (dict(channels=8, groups=0), "size"),
        (dict(channels=8, init="xavier"), "init"),
        (dict(channels=8, impl="fast"), "impl"),
        (dict(channels=8, bias=1), "bias"),
        (dict(channels=2, groups=[CellGroup(2, share=0.5)] * 3), "sum to"),
    ],
)
def test_bad_module_arguments_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        NeoCell(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(size=(2, 0)), "size"),
        (dict(size=2, out=(1, 2, 3)), "out"),
        (dict(size=2, share=0), "share"),
        (dict(size=2, share=1.5), "share"),
        (dict(size=(2, 3), shift=True), "square"),
        (dict(size=2, out=1, shift=True), "square"),
        (dict(size=2, shift=1), "shift"),
    ],
)
def test_bad_groups_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        CellGroup(**kwargs)


def test_wrong_input_channels_is_a_user_error():
    with pytest.raises(UserError, match=r"\[N, 8, H, W\]"):
        NeoCell(8)(torch.randn(1, 4, 7, 7))


def test_is_a_drop_in_for_a_depthwise_conv_in_a_sequential():
    block = nn.Sequential(NeoCell(16, NEONEXT_STAGE), nn.BatchNorm2d(16), nn.Conv2d(16, 32, 1))
    assert block(torch.randn(2, 16, 14, 14)).shape == (2, 32, 14, 14)


def test_auto_runs_dense_for_training_and_the_measured_rule_for_cpu_inference(monkeypatch):
    monkeypatch.setattr(native, "load", lambda: None)  # the rule without the fused kernel
    cell = NeoCell(8, NEONEXT_STAGE)
    x = torch.randn(1, 8, 56, 56)
    assert cell.resolved_impl(x) == "dense"
    with torch.no_grad():
        assert cell.resolved_impl(x) == "dense"  # dense/patch = 8.6x: MKL's products still win
        assert cell.resolved_impl(x.expand(8, -1, -1, -1)) == "patch"  # ... but not at batch 8
        one_block = NeoCell(8, 7)
        assert one_block.resolved_impl(torch.randn(8, 8, 7, 7)) == "patch"  # 1x: no zeros
    cell.impl = "patch"
    with torch.no_grad():
        assert cell.resolved_impl(x) == "patch"  # a named impl is never overridden


def test_sampling_cells_and_missing_kernels_use_the_pytorch_forms(monkeypatch):
    monkeypatch.setenv("NEONAS_NATIVE", "1")
    down = NeoCell(8, CellGroup(2, out=1)).eval()
    x = torch.randn(1, 8, 8, 8)
    with torch.no_grad():
        assert down.resolved_impl(x) != "fused"
        monkeypatch.setattr(native, "load", lambda: None)
        cell = NeoCell(8, NEONEXT_STAGE, impl="fused").eval()
        assert cell.resolved_impl(x) in ("dense", "tiled", "patch")
        torch.testing.assert_close(cell(x), cell_dense(cell, x))


def cell_dense(cell: NeoCell, x: torch.Tensor) -> torch.Tensor:
    cell.impl = "dense"
    return cell(x)


def test_neonas_native_0_keeps_the_fused_kernel_off(monkeypatch):
    monkeypatch.setenv("NEONAS_NATIVE", "0")  # on by default where built (test_ops_native_build)
    assert not native.available()
    cell = NeoCell(8, NEONEXT_STAGE).eval()
    with torch.no_grad():
        assert cell.resolved_impl(torch.randn(8, 8, 14, 14)) == "dense"


def test_auto_rule_with_the_fused_kernel():
    costs = {"dense": 86, "tiled": 32, "patch": 10}
    cpu = torch.device("cpu")
    with torch.no_grad():
        assert choose_impl(cpu, costs, batch=1, fused=True) == "fused"
        assert choose_impl(cpu, costs, batch=1, fused=False) == "dense"
        assert choose_impl(cpu, costs, batch=8, fused=False) == "patch"
        assert choose_impl(cpu, dict(costs, dense=10), fused=False) == "patch"
        assert choose_impl(torch.device("cuda"), costs, batch=8, fused=True) == "dense"
    assert choose_impl(cpu, costs, batch=8, fused=True) == "dense"  # training


def test_groups_from_yaml_lists_equal_groups_from_tuples():
    assert CellGroup([2, 3], out=[1, 2]) == CellGroup((2, 3), out=(1, 2))
    assert hash(CellGroup([2, 3])) == hash(CellGroup((2, 3)))

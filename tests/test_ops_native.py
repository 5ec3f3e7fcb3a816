"""The fused C++ kernel for CPU inference (neonas.ops.native): exact where it builds, never needed,
and what `auto` runs by default where it is built.

Slow: without `neonas build-native` first, the first run builds the extension (about a minute,
more on a loaded machine)."""

import pytest
import torch

from neonas.ops import CellGroup, NeoCell, native

STAGE = [CellGroup(4, share=0.5, shift=True), CellGroup(7, share=0.5, shift=True)]


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kernel():
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("NEONAS_NATIVE", raising=False)  # the default: used where built
        if native.load() is None:  # no compiler here: the PyTorch forms serve (tested elsewhere)
            pytest.skip("the fused NeoCell kernel does not build on this machine")
        yield native


def randomized(cell: NeoCell, seed: int = 0) -> NeoCell:
    generator = torch.Generator().manual_seed(seed)
    cell = cell.double().eval()
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return cell


def run(cell: NeoCell, x: torch.Tensor, impl: str) -> torch.Tensor:
    cell.impl = impl
    with torch.no_grad():
        return cell(x)


@pytest.mark.parametrize(
    "channels, groups, size",
    [
        (40, STAGE, (14, 14)),  # 2.5 blocks of 16 channels, 4x4 on a map it does not divide
        (22, STAGE, (9, 13)),  # non-square map, both groups partial
        (20, CellGroup(3, shift=True), (8, 8)),
        (33, CellGroup(7), (7, 7)),  # NeoNeXt-T stage 4
        (16, [CellGroup(2, share=0.25), CellGroup(5, share=0.75, shift=True)], (11, 6)),
    ],
)
def test_fused_kernel_equals_the_dense_form_in_float64(kernel, channels, groups, size):
    cell = randomized(NeoCell(channels, groups, bias=True))
    x = torch.randn(3, channels, *size, dtype=torch.float64)
    assert cell.resolved_impl(x) == "dense"  # grad mode: never fused
    with torch.no_grad():
        assert NeoCell.resolved_impl(cell, x) == "fused"
    fused, dense = run(cell, x, "fused"), run(cell, x, "dense")
    assert fused.shape == dense.shape
    assert (fused - dense).abs().max() < 1e-12


def test_fused_kernel_recovers_the_papers_shifted_matrix(kernel):
    # Identity input, identity right matrices: the output is the height operator A.
    cell = NeoCell(7, CellGroup(7, shift=True)).double().eval()
    block = torch.arange(1, 50, dtype=torch.float64).reshape(7, 7)
    with torch.no_grad():
        cell.left[0].copy_(block)
        cell.right[0].copy_(torch.eye(7, dtype=torch.float64))
    x = torch.eye(10, dtype=torch.float64).expand(1, 7, 10, 10).contiguous()
    y = run(cell, x, "fused")
    assert torch.equal(y, run(cell, x, "dense"))
    # channel 6 is the last subgroup (7 // 7 = 1 channel each): shift 6, so its 6 x 6 corner
    # holds the lower-right 6 x 6 part of the block, a whole block follows, nothing wraps.
    assert torch.equal(y[0, 6, :6, :6], block[1:, 1:])
    assert torch.equal(y[0, 6, 6:, 6:10], block[:4, :4])
    assert y[0, 6, 0, 6:].abs().sum() == 0 and y[0, 6, 9, :6].abs().sum() == 0


def test_fused_kernel_keeps_channels_last_layout(kernel):
    cell = randomized(NeoCell(24, STAGE, bias=True))
    x = torch.randn(2, 24, 14, 14, dtype=torch.float64)
    y = run(cell, x.to(memory_format=torch.channels_last), "fused")
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert (y - run(cell, x, "dense")).abs().max() < 1e-12


def test_fused_kernel_in_float32_and_after_a_parameter_update(kernel):
    cell = NeoCell(32, STAGE).eval()
    x = torch.randn(2, 32, 28, 28)
    with torch.no_grad():
        before = run(cell, x, "auto")
        cell.left[0].mul_(2.0)
        cell.left[1].mul_(2.0)
        after = run(cell, x, "auto")
    assert cell.resolved_impl(x) == "dense"
    torch.testing.assert_close(after, 2 * before)
    torch.testing.assert_close(after, run(cell, x, "dense"), rtol=1e-5, atol=1e-5)

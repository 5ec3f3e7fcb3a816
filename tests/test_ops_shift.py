"""Shifted NeoCells are the paper's matrix (section 3.5, as the authors' reference code builds it),
in every implementation: no wrap-around, partial blocks at both ends."""

import pytest
import torch

from neonas.ops import CellGroup, NeoCell, neocell
from neonas.ops.groups import subgroups

IMPLS = ["dense", "patch", "tiled"]
# (impl, tile target): the tiled form with its default 16-row tiles and with small 6-row ones,
# so that maps hold several tiles and patches larger than the target are tiles of their own.
FORMS = [("dense", 16), ("patch", 16), ("tiled", 16), ("tiled", 6)]


def paper_matrix(block: torch.Tensor, size: int, shift: int) -> torch.Tensor:
    """The shifted block-diagonal matrix written from the paper's sentence: the upper-left s x s
    corner holds the lower-right s x s part of the block, whole blocks follow from offset s, the
    last partial block holds the leading part of the block, every other entry is zero."""
    k = block.shape[0]
    matrix = torch.zeros(size, size, dtype=block.dtype)
    if shift:
        corner = min(shift, size)
        matrix[:corner, :corner] = block[
            k - shift : k - shift + corner, k - shift : k - shift + corner
        ]
    start = shift
    while start < size:
        stop = min(start + k, size)
        matrix[start:stop, start:stop] = block[: stop - start, : stop - start]
        start = stop
    return matrix


def rolled_matrix(block: torch.Tensor, size: int, shift: int) -> torch.Tensor:
    """What neonas computed before (roll by -s, unshifted operator, roll back): for the counts."""
    k = block.shape[0]
    unshifted = torch.block_diag(*[block] * -(-size // k))[:size, :size]
    return torch.roll(unshifted, shifts=(shift, shift), dims=(0, 1))


def recovered_left(
    block: torch.Tensor, size: int, shift: int, impl: str, tile: int = 16
) -> torch.Tensor:
    """The height operator A of `neocell`: identity input, identity right matrix -> Y = A."""
    k = block.shape[0]
    eye = torch.eye(size, dtype=block.dtype)[None, None]
    right = torch.eye(k, dtype=block.dtype)[None]
    return neocell(eye, block[None], right, shift=shift, impl=impl, tile=tile)[0, 0]


def recovered_right(
    block: torch.Tensor, size: int, shift: int, impl: str, tile: int = 16
) -> torch.Tensor:
    """The width operator B of `neocell`: identity input, identity left matrix -> Y = B."""
    k = block.shape[0]
    eye = torch.eye(size, dtype=block.dtype)[None, None]
    left = torch.eye(k, dtype=block.dtype)[None]
    return neocell(eye, left, block[None], shift=shift, impl=impl, tile=tile)[0, 0]


def numbered_block(k: int) -> torch.Tensor:
    """Entries 1 .. k*k: every entry distinct and non-zero, so any misplaced one shows."""
    return torch.arange(1, k * k + 1, dtype=torch.float64).reshape(k, k)


CASES = [
    (size, k, shift)
    for k in (2, 3, 4, 7)
    for size in (1, 2, 5, 6, 7, 8, 12, 13, 14, 16, 28)
    for shift in range(k)
]


@pytest.mark.parametrize("impl, tile", FORMS)
def test_the_recovered_operators_equal_the_papers_matrix(impl, tile):
    checked = 0
    for size, k, shift in CASES:
        block = numbered_block(k)
        expected = paper_matrix(block, size, shift)
        assert torch.equal(recovered_left(block, size, shift, impl, tile), expected), (size, k)
        right = recovered_right(block, size, shift, impl, tile)
        assert torch.equal(right, expected), (size, k, shift)
        checked += 1
    assert checked == len(CASES) == 4 * 11 + 11 * (2 + 3 + 4 + 7 - 4)


@pytest.mark.parametrize("impl", IMPLS)
def test_shift_equals_pad_apply_crop(impl):
    x = torch.randn(2, 3, 14, 10, dtype=torch.float64)
    left, right, bias = (torch.randn(3, 4, 4, dtype=torch.float64) for _ in range(3))
    for shift in range(1, 4):
        pad = 4 - shift
        padded = torch.nn.functional.pad(x, (pad, 0, pad, 0))
        expected = neocell(padded, left, right, bias=bias, impl=impl)[:, :, pad:, pad:]
        got = neocell(x, left, right, shift=shift, bias=bias, impl=impl)
        assert (got - expected).abs().max() < 1e-10


def test_the_issues_examples_differ_from_the_old_roll_in_exactly_the_wrapped_corners():
    # Issue 9: 8 px, 4x4 blocks, shift 1: 6 entries; 56 px, 7x7 blocks, shift 3: 24 entries
    # are non-zero in the rolled operator and zero in the paper's matrix.
    for size, k, shift, wrapped in ((8, 4, 1, 6), (56, 7, 3, 24)):
        block = numbered_block(k)
        paper = recovered_left(block, size, shift, "dense")
        old = rolled_matrix(block, size, shift)
        assert int(((old != 0) & (paper == 0)).sum()) == wrapped
        assert int(((old == 0) & (paper != 0)).sum()) == 0
        assert paper[0, -1] == paper[-1, 0] == 0  # the first and last pixels are never coupled


def test_bias_follows_the_shifted_grid():
    # shift 1 with 3x3 patches: output row/col i belongs to position (i + 2) % 3 of its patch.
    bias = torch.arange(9, dtype=torch.float64).reshape(1, 3, 3)
    zeros = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64)[None]
    positions = [(i + 2) % 3 for i in range(5)]
    expected = bias[0][positions][:, positions]
    for impl in IMPLS:
        got = neocell(zeros, eye, eye, shift=1, bias=bias, impl=impl)[0, 0]
        assert torch.equal(got, expected)


def test_shifted_groups_split_channels_like_the_reference_code():
    # C_g // k channels to each of the first k - 1 subgroups, the rest to the last.
    layout = subgroups(
        96, [CellGroup(4, share=0.5, shift=True), CellGroup(7, share=0.5, shift=True)]
    )
    assert [(s.shift, s.stop - s.start) for s in layout if s.group == 0] == [
        (0, 12),
        (1, 12),
        (2, 12),
        (3, 12),
    ]
    assert [(s.shift, s.stop - s.start) for s in layout if s.group == 1] == [
        (0, 6),
        (1, 6),
        (2, 6),
        (3, 6),
        (4, 6),
        (5, 6),
        (6, 12),
    ]
    # Fewer channels than shifts: the first subgroups are empty, the last has shift k - 1.
    assert [(s.shift, s.stop - s.start) for s in subgroups(3, [CellGroup(7, shift=True)])] == [
        (6, 3)
    ]


def test_module_matrices_are_the_papers_per_subgroup():
    cell = NeoCell(9, CellGroup(3, shift=True)).double()
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(torch.randn(p.shape, dtype=p.dtype))
    left, right, _ = cell.dense_operands(8, 8, torch.device("cpu"), torch.float64)
    shifts = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    for channel, shift in enumerate(shifts):
        assert torch.equal(left[channel], paper_matrix(cell.left[0][channel], 8, shift))
        assert torch.equal(right[channel], paper_matrix(cell.right[0][channel], 8, shift))

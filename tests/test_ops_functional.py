"""Specification of the functional NeoCell `neocell` (one channel group) and its implementations."""

import functools

import pytest
import torch

from neonas.errors import UserError
from neonas.ops import neocell
from neonas.ops.functional import block_index

IMPLS = ["dense", "patch", "tiled"]


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def eq1_reference(x, left, right, bias=None):
    """Eq. 1 of the paper, literally: Y[c, i, j] = L[c] X[c, i, j] R[c] (+ B[c]) per patch."""
    n, c, height, width = x.shape
    out_h, h = left.shape[1:]
    w, out_w = right.shape[1:]
    y = torch.zeros(n, c, height // h * out_h, width // w * out_w, dtype=x.dtype)
    for b in range(n):
        for ch in range(c):
            for i in range(height // h):
                for j in range(width // w):
                    patch = x[b, ch, i * h : (i + 1) * h, j * w : (j + 1) * w]
                    out = left[ch] @ patch @ right[ch]
                    if bias is not None:
                        out = out + bias[ch]
                    y[b, ch, i * out_h : (i + 1) * out_h, j * out_w : (j + 1) * out_w] = out
    return y


def truncated_block_diagonal(block, blocks, rows, cols):
    """blockdiag(block, ..., block) with `blocks` blocks, cropped to [:rows, :cols]."""
    return torch.block_diag(*[block] * blocks)[:rows, :cols]


@pytest.mark.parametrize("impl", IMPLS)
def test_divisible_sizes_compute_eq1_per_patch(impl):
    x, left, right, bias = (
        rand(2, 3, 8, 12),
        rand(3, 4, 4, seed=1),
        rand(3, 3, 3, seed=2),
        rand(3, 4, 3, seed=3),
    )
    y = neocell(x, left, right, bias=bias, impl=impl)
    torch.testing.assert_close(y, eq1_reference(x, left, right, bias), rtol=0, atol=1e-12)


def test_dense_and_patch_forms_agree_in_float64():
    x, left, right, bias = (
        rand(3, 5, 14, 11),
        rand(5, 4, 4, seed=1),
        rand(5, 4, 4, seed=2),
        rand(5, 4, 4, seed=3),
    )
    for shift in range(4):
        dense = neocell(x, left, right, shift=shift, bias=bias, impl="dense")
        patch = neocell(x, left, right, shift=shift, bias=bias, impl="patch")
        assert (dense - patch).abs().max() < 1e-10


def test_auto_matches_the_named_forms():
    x, left, right = rand(2, 4, 9, 9), rand(4, 3, 3, seed=1), rand(4, 3, 3, seed=2)
    torch.testing.assert_close(
        neocell(x, left, right, shift=1), neocell(x, left, right, shift=1, impl="dense")
    )


def test_shifted_dense_matrix_fills_only_the_corner_blocks():
    # Paper section 3.5: shift 1 on an 8-row map with 4x4 blocks: L[3, 3] alone in the corner,
    # a whole block at rows/cols 1..4, the leading 3x3 part of L at 5..7, nothing wrapped.
    index = block_index(8, 8, 4, 4, shift=1)
    assert index[0, 0] == 3 * 4 + 3  # L[3, 3] in the upper-left corner
    assert index[0, 7] == index[7, 0] == -1  # no wrap-around: first and last pixels uncoupled
    assert index[1, 1] == 0  # L[0, 0] starts the first shifted block
    assert index[7, 7] == 2 * 4 + 2  # the last partial block ends with L[2, 2]
    assert index[0, 1] == -1  # across blocks: zero


@pytest.mark.parametrize("impl", IMPLS)
def test_non_divisible_sizes_use_the_truncated_block_diagonal_matrix(impl):
    # 4x4 blocks on a 14 x 7 map (NeoNeXt-T stage 3 and 4): ceil(14/4) = 4 blocks, cropped.
    x, left, right = rand(2, 3, 14, 7), rand(3, 4, 4, seed=1), rand(3, 4, 4, seed=2)
    y = neocell(x, left, right, impl=impl)
    assert y.shape == (2, 3, 14, 7)
    for c in range(3):
        a = truncated_block_diagonal(left[c], 4, 14, 14)
        b = truncated_block_diagonal(right[c], 2, 7, 7)
        torch.testing.assert_close(y[:, c], a @ x[:, c] @ b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_non_divisible_sizes_equal_zero_pad_apply_crop(impl):
    x, left, right, bias = (
        rand(2, 3, 10, 5),
        rand(3, 3, 4, seed=1),
        rand(3, 2, 3, seed=2),
        rand(3, 3, 3, seed=3),
    )
    out_h, out_w = -(-10 * 3 // 4), -(-5 * 3 // 2)  # ceil(H h'/h), ceil(W w'/w)
    padded = torch.nn.functional.pad(x, (0, 1, 0, 2))  # to 12 x 6
    expected = eq1_reference(padded, left, right, bias)[:, :, :out_h, :out_w]
    y = neocell(x, left, right, bias=bias, impl=impl)
    assert y.shape == (2, 3, out_h, out_w) == (2, 3, 8, 8)
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_fractional_down_and_up_sampling(impl):
    x = rand(1, 2, 9, 6)
    down = neocell(x, rand(2, 2, 3, seed=1), rand(2, 3, 2, seed=2), impl=impl)  # 3 -> 2
    up = neocell(x, rand(2, 3, 2, seed=3), rand(2, 2, 3, seed=4), impl=impl)  # 2 -> 3
    assert down.shape == (1, 2, 6, 4)
    assert up.shape == (1, 2, 14, 9)  # ceil(9 * 3 / 2) = 14
    torch.testing.assert_close(down, eq1_reference(x, rand(2, 2, 3, seed=1), rand(2, 3, 2, seed=2)))


def test_bias_is_added_to_every_output_patch():
    x = torch.zeros(1, 2, 4, 6, dtype=torch.float64)
    bias = rand(2, 2, 3)
    y = neocell(x, rand(2, 2, 2, seed=1), rand(2, 3, 3, seed=2), bias=bias)
    torch.testing.assert_close(y, bias.repeat(1, 2, 2)[None])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shift", [0, 2])
def test_gradients_pass_gradcheck(impl, shift):
    x = rand(2, 2, 7, 5).requires_grad_()
    left, right, bias = (rand(2, 3, 3, seed=s).requires_grad_() for s in (1, 2, 3))
    assert torch.autograd.gradcheck(
        lambda x, left, right, bias: neocell(x, left, right, shift=shift, bias=bias, impl=impl),
        (x, left, right, bias),
    )


def test_gradients_of_fractional_sampling_pass_gradcheck():
    x = rand(1, 2, 5, 4).requires_grad_()
    left, right = rand(2, 2, 3, seed=1).requires_grad_(), rand(2, 2, 3, seed=2).requires_grad_()
    for impl in IMPLS:
        cell = functools.partial(neocell, impl=impl)
        assert torch.autograd.gradcheck(cell, (x, left, right))


@pytest.mark.parametrize(
    "args, message",
    [
        ((rand(3, 8, 8), rand(3, 2, 2), rand(3, 2, 2)), "N, C, H, W"),
        ((rand(1, 3, 8, 8), rand(2, 2, 2), rand(3, 2, 2)), "C = 3"),
        ((rand(1, 3, 8, 8), rand(3, 2, 2, 1), rand(3, 2, 2)), "left"),
    ],
)
def test_bad_operand_shapes_are_user_errors(args, message):
    with pytest.raises(UserError, match=message):
        neocell(*args)


def test_bad_bias_shift_and_impl_are_user_errors():
    x, sq, rect = rand(1, 3, 8, 8), rand(3, 2, 2), rand(3, 2, 1)
    with pytest.raises(UserError, match="bias"):
        neocell(x, sq, sq, bias=rand(3, 2, 3))
    with pytest.raises(UserError, match="square"):
        neocell(x, sq, rect, shift=1)
    with pytest.raises(UserError, match="shift"):
        neocell(x, sq, sq, shift=-1)
    with pytest.raises(UserError, match="smaller than the matrix size"):
        neocell(x, sq, sq, shift=2)
    with pytest.raises(UserError, match="impl"):
        neocell(x, sq, sq, impl="fast")

"""The dense form's training product (neonas.ops.dense_train): autograd's gradients, any layout."""

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from neonas.ops import CellGroup, NeoCell
from neonas.ops.dense_train import DenseProduct

STAGE = [CellGroup(4, share=0.5, shift=True), CellGroup(7, share=0.5, shift=True)]


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def composed(x, left, right):
    """A @ x @ B per channel from broadcast matmuls: autograd's own gradients."""
    return left[None] @ x @ right[None]


@pytest.mark.parametrize("size", [(7, 7), (14, 9), (5, 12)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_gradients_equal_autograds_for_any_gradient_layout(size, layout):
    height, width = size
    x = rand(3, 5, height, width).requires_grad_()
    left = rand(5, height + 1, height, seed=1).requires_grad_()  # H' != H: up-sampling rows
    right = rand(5, width, width - 1, seed=2).requires_grad_()
    grad = rand(3, 5, height + 1, width - 1, seed=3).contiguous(memory_format=layout)
    y = DenseProduct.apply(x, left, right)
    expected = composed(x, left, right)
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-12)
    got = torch.autograd.grad(y, (x, left, right), grad)
    want = torch.autograd.grad(expected, (x, left, right), grad)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-11)


def test_only_the_needed_gradients_pass_gradcheck():
    x = rand(2, 3, 6, 5).requires_grad_()
    left, right = rand(3, 6, 6, seed=1), rand(3, 5, 5, seed=2).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, r: DenseProduct.apply(x, left, r), (x, right))


def test_a_channels_last_gradient_runs_four_batched_products():
    # Autograd's own backward ran bmm matrix by matrix here (a select and a copy per channel).
    cell = NeoCell(48, CellGroup(7), impl="dense")
    x = torch.randn(2, 48, 7, 7, requires_grad=True)
    grad = torch.randn(2, 48, 7, 7).contiguous(memory_format=torch.channels_last)
    y = cell(x)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        y.backward(grad)
    counts = {event.key: event.count for event in prof.key_averages()}
    assert counts.get("aten::bmm") == 4
    assert counts.get("aten::select", 0) == 0


def test_the_cell_trains_with_the_same_gradients_in_both_layouts():
    cell = NeoCell(24, STAGE, bias=True).double()
    x = rand(2, 24, 14, 14).requires_grad_()
    grad = rand(2, 24, 14, 14, seed=4)
    grads = []
    for layout in (torch.contiguous_format, torch.channels_last):
        params = [x, *cell.parameters()]
        grads.append(torch.autograd.grad(cell(x), params, grad.contiguous(memory_format=layout)))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


def test_a_block_covering_the_map_trains_on_its_parameters_directly():
    # NeoNeXt-T stage 4 (7x7 on a 7x7 map): no gather, the same values and gradients.
    cell = NeoCell(6, CellGroup(7), bias=True).double()
    with torch.no_grad():
        cell.bias[0].copy_(rand(6, 7, 7, seed=5))
    x = rand(2, 6, 7, 7).requires_grad_()
    params = [x, cell.left[0], cell.right[0], cell.bias[0]]
    expected = composed(x, cell.left[0], cell.right[0]) + cell.bias[0]
    torch.testing.assert_close(cell(x), expected, rtol=0, atol=1e-12)
    grad = rand(2, 6, 7, 7, seed=6)
    got = torch.autograd.grad(cell(x), params, grad)
    for g, w in zip(got, torch.autograd.grad(expected, params, grad), strict=True):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-11)
    assert cell._dense_index(7, 7, x.device).plain
    assert not cell._dense_index(9, 9, x.device).plain


def test_a_cell_trains_under_bf16_autocast_close_to_float32():
    """`train --amp bf16` runs the products in bfloat16; the written-out backward must meet one
    dtype (it raised "expected m1 and m2 to have the same dtype" before) and hand back
    float32 gradients to float32 parameters."""
    torch.manual_seed(0)
    cell = NeoCell(32, [CellGroup(4, share=0.5, shift=True), CellGroup(7, share=0.5)]).train()
    x = torch.randn(2, 32, 14, 14, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = cell(x)
    assert y.dtype == torch.bfloat16
    y.float().square().sum().backward()
    low = [x.grad, *(p.grad for p in cell.parameters())]
    assert all(g is not None and g.dtype == torch.float32 for g in low)
    x.grad = None
    cell.zero_grad()
    cell(x).square().sum().backward()
    for got, want in zip(low, [x.grad, *(p.grad for p in cell.parameters())], strict=True):
        assert (got - want).abs().max() <= 3e-2 * want.abs().max()


def test_low_precision_operands_sum_their_gradients_in_the_parameters_dtype():
    """Under bf16 autocast each weight's gradient sums its block's repeats down the diagonal
    (14 on a 56 x 56 map of 4 x 4 blocks): gathered in float32 and cast afterwards, that sum is
    float32's, not bfloat16's (cast first and gathered in bfloat16, it was off by up to 5 %
    here)."""
    torch.manual_seed(0)
    cell = NeoCell(8, STAGE, bias=True)
    operands = cell.dense_operands(56, 56, torch.device("cpu"), torch.bfloat16)
    assert all(t.dtype == torch.bfloat16 for t in operands)
    upstream = [torch.randn(t.shape).to(torch.bfloat16) for t in operands]
    got = torch.autograd.grad(operands, list(cell.parameters()), upstream)
    exact = cell.double().dense_operands(56, 56, torch.device("cpu"), torch.float64)
    want = torch.autograd.grad(exact, list(cell.parameters()), [g.double() for g in upstream])
    for g, w in zip(got, want, strict=True):
        assert g.dtype == torch.float32
        torch.testing.assert_close(g.double(), w, rtol=1e-6, atol=1e-6)

"""The dense NeoCell product Y = A X B for training, with a backward written for its layouts.

Left to autograd, the dense form's backward took the gradient through the views and permutes of
the forward: a gradient arriving channels-last (as a channels-last consumer hands it back)
reached `bmm`'s backward with matrices that are neither contiguous nor transposed, and `bmm`
then ran one matrix at a time with a copy each (about 1,540 copies per step at NeoNeXt-T stage
4: 768 channels, two products). Here the backward puts the gradient into the product's layout
once, whatever layout it arrives in, and runs four batched products on contiguous or
transposed operands (benchmarks/README.md, "NeoCell operator", training rows).

Layouts, per channel c, with n the sample, h/w the input and i/j the output rows/columns:
x is read once as xr[c, h, (n, w)]; the left product t = A xr is [c, i, (n, w)], which is
also [c, (i, n), w], the right product's input. Keeping (i, n) adjacent lets every backward
product read t and the gradient without further copies.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable


class DenseProduct(torch.autograd.Function):
    """x [N, C, H, W], A [C, H', H], B [C, W, W'] -> A @ x @ B per channel, [N, C, H', W']
    (a strided view of the product's [C, W', (H', N)] result)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx, x: Tensor, left: Tensor, right: Tensor
    ) -> Tensor:
        # Under autocast, run the products in its dtype here and keep autocast out: the
        # backward then meets one dtype in every product (autograd casts each gradient back
        # to its input's dtype), as autocast's own bmm would have done.
        device_type = x.device.type
        if torch.is_autocast_enabled(device_type):
            dtype = torch.get_autocast_dtype(device_type)
            x, left, right = x.to(dtype), left.to(dtype), right.to(dtype)
        with torch.autocast(device_type, enabled=False):
            return DenseProduct._forward(ctx, x, left, right)

    @staticmethod
    def _forward(ctx: FunctionCtx, x: Tensor, left: Tensor, right: Tensor) -> Tensor:
        n, c, height, width = x.shape
        out_h, out_w = left.shape[1], right.shape[2]
        xr = x.permute(1, 2, 0, 3).reshape(c, height, n * width)  # [C, H, (N, W)], one copy
        t = torch.bmm(left, xr)  # [C, H', (N, W)] = [C, (H', N), W]
        # The right product transposed, B^T t^T, so that the long side comes last.
        y = torch.bmm(right.transpose(1, 2), t.view(c, out_h * n, width).transpose(1, 2))
        ctx.save_for_backward(xr, t, left, right)
        return y.view(c, out_w, out_h, n).permute(3, 0, 2, 1)  # [N, C, H', W']

    @staticmethod
    @once_differentiable
    def backward(  # type: ignore[override]
        ctx: FunctionCtx, grad: Tensor
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        xr, t, left, right = ctx.saved_tensors
        need_x, need_left, need_right = ctx.needs_input_grad
        n, c, out_h, out_w = grad.shape
        height, width = xr.shape[1], xr.shape[2] // n
        # The gradient in the layout of the forward's result, [C, W', (H', N)]: at most one
        # copy, whatever layout it arrives in.
        g = grad.to(t.dtype).permute(1, 3, 2, 0).reshape(c, out_w, out_h * n)
        grad_x = grad_left = grad_right = None
        if need_right:  # t^T g^T: [C, W, (H', N)] @ [C, (H', N), W']
            grad_right = torch.bmm(t.view(c, out_h * n, width).transpose(1, 2), g.transpose(1, 2))
        if need_x or need_left:
            # dL/dt^T = B g, long side last; then one copy into t's layout [C, H', (N, W)].
            gt = torch.bmm(right, g).view(c, width, out_h, n).permute(0, 2, 3, 1)
            gt = gt.reshape(c, out_h, n * width)
            if need_left:
                grad_left = torch.bmm(gt, xr.transpose(1, 2))  # [C, H', H]
            if need_x:
                grad_x = torch.bmm(left.transpose(1, 2), gt)  # [C, H, (N, W)]
                grad_x = grad_x.view(c, height, n, width).permute(2, 0, 1, 3)
        return grad_x, grad_left, grad_right

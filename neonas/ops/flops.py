"""Counting NeoCell multiply-adds: fvcore op handles and per-model totals in any form."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from neonas.errors import UserError
from neonas.ops.cell import MAC_FORMS, NeoCell


def _shape(value: Any) -> list[int]:
    return list(value.type().sizes())


def matmul_flop(inputs: list[Any], outputs: list[Any]) -> int:
    """aten::matmul / aten::bmm: prod(output shape) * contracted length, batch dims included."""
    # fvcore's stock matmul handle counts prod(shape(a)) * b[-1], which drops the batch of a
    # broadcast `W[C,H,H] @ X[N,C,H,W]`; the output shape carries every broadcast dim.
    a_shape, out_shape = _shape(inputs[0]), _shape(outputs[0])
    return math.prod(out_shape) * a_shape[-1]


def flop_handles() -> dict[str, Callable]:
    """Handles for FlopCountAnalysis(...).set_op_handle(**flop_handles()): NeoCell (any impl)
    is then counted as executed at any batch size; building A/B (gathers) is not counted."""
    return {"aten::matmul": matmul_flop, "aten::bmm": matmul_flop}


@contextlib.contextmanager
def use_impl(model: nn.Module, impl: str) -> Iterator[nn.Module]:
    """Temporarily runs every NeoCell in `model` with `impl` (e.g. "patch" to count that form)."""
    cells = [m for m in model.modules() if isinstance(m, NeoCell)]
    saved = [cell.impl for cell in cells]
    try:
        for cell in cells:
            cell.impl = impl
        yield model
    finally:
        for cell, old in zip(cells, saved, strict=True):
            cell.impl = old


@torch.no_grad()
def neocell_macs(model: nn.Module, example_input: Tensor, form: str = "dense") -> int:
    """Multiply-adds of all NeoCells of `model` on `example_input` (whole batch) by formula, in
    the dense, tiled or patch form."""
    if form not in MAC_FORMS:
        raise UserError(f"unknown NeoCell MAC form {form!r}: use one of {', '.join(MAC_FORMS)}")
    total = 0

    def count(cell: nn.Module, args: tuple[Tensor, ...], _: Tensor) -> None:
        nonlocal total
        x = args[0]
        total += x.shape[0] * cell.macs(x.shape[2], x.shape[3], form=form)

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, NeoCell)]
    try:
        model(example_input)
    finally:
        for hook in hooks:
            hook.remove()
    return total

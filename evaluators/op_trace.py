"""Every aten op of one eval forward, with its shapes, as matrix (cube) or vector/memory work.

Shared by the matrix-efficiency measure and the Ascend latency model. A
`TorchDispatchMode` sees the ops below autograd, after composite ops (linear, matmul,
einsum) have become addmm / mm / bmm, so any torch model is covered without per-layer
rules. Each op is charged to the innermost module running when it was dispatched.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from evaluators.flops import batched_shape
from evaluators.units import Shape, UnitCache, walk_units

# Ops that move no data: metadata changes and allocations (views are caught by `is_view`).
_FREE_OPS = {
    "_unsafe_view",
    "as_strided_",
    "empty",
    "empty_like",
    "empty_strided",
    "lift_fresh",
    "resize_",
    "set_",
}
_ATTENTION_OPS = {
    "_scaled_dot_product_attention_math",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_flash_attention_for_cpu",
}


@dataclass(frozen=True)
class Gemm:
    """`count` independent products [m, k] x [k, n], as a matrix unit computes them."""

    m: int
    k: int
    n: int
    count: int = 1

    @property
    def macs(self) -> int:
        """Useful multiply-adds."""
        return self.m * self.k * self.n * self.count

    def padded_macs(self, fractal: int = 16) -> int:
        """Multiply-adds the unit performs with every dimension padded to the fractal."""
        return _pad(self.m, fractal) * _pad(self.k, fractal) * _pad(self.n, fractal) * self.count


@dataclass(frozen=True)
class OpRecord:
    """One executed aten op: its name, its module, its matrix products and the data it moves."""

    op: str
    module: str
    gemms: tuple[Gemm, ...]
    read: int  # elements read, weights included
    written: int  # elements written

    @property
    def is_matrix(self) -> bool:
        """Matrix-unit work (convolution, matmul, attention) rather than vector/memory work."""
        return bool(self.gemms)

    def with_prefix(self, prefix: str) -> OpRecord:
        """The same record seen from a parent module at `prefix`."""
        module = f"{prefix}.{self.module}" if self.module else prefix
        return OpRecord(self.op, module, self.gemms, self.read, self.written)


# Unit recordings shared by every call (see evaluators.units).
_record_cache = UnitCache()


def record_ops(model: nn.Module, input_shape: Sequence[int], batch: int = 1) -> list[OpRecord]:
    """The ops of one eval forward of `model` on a zero input of `input_shape`, in order."""
    shape = batched_shape(input_shape, batch)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            units = walk_units(model, shape, _record, _record_cache)
            if units is None:
                return _record(model, shape)[0]
            return [op.with_prefix(unit.path) for unit in units for op in unit.value]
    finally:
        model.train(was_training)


def clear_cache() -> None:
    """Forget the shared unit recordings."""
    _record_cache.clear()


def _record(module: nn.Module, shape: Shape) -> tuple[list[OpRecord], Shape]:
    """Warm up once (NeoCell builds and caches its matrices), then record a second forward."""
    with _dense_neocells(module):
        return _record_dense(module, shape)


@contextlib.contextmanager
def _dense_neocells(module: nn.Module) -> Iterator[None]:
    """NeoCells with impl 'auto' run their dense block-diagonal form while recording.

    On the CPU 'auto' may pick the patch-wise form for speed; a matrix unit (Ascend's cube)
    runs the dense products, which is also the form FLOPs count (fvcore traces it).
    """
    from neonas.ops import NeoCell

    cells = [cell for cell in module.modules() if isinstance(cell, NeoCell) and cell.impl == "auto"]
    for cell in cells:
        cell.impl = "dense"
    try:
        yield
    finally:
        for cell in cells:
            cell.impl = "auto"


def _record_dense(module: nn.Module, shape: Shape) -> tuple[list[OpRecord], Shape]:
    example = torch.zeros(shape)
    module(example)
    stack: list[str] = [""]

    def leave(*_: object) -> None:
        stack.pop()  # returns None: a hook's return value would replace the module's output

    hooks = []
    for name, sub in module.named_modules():
        if name:
            hooks.append(
                sub.register_forward_pre_hook(lambda _m, _i, name=name: stack.append(name))
            )
            hooks.append(sub.register_forward_hook(leave))
    recorder = _Recorder(stack)
    try:
        with recorder:
            output = module(example)
    finally:
        for hook in hooks:
            hook.remove()
    return recorder.records, tuple(getattr(output, "shape", ()))


class _Recorder(TorchDispatchMode):
    """Records each dispatched aten op with the module on top of `stack`."""

    def __init__(self, stack: list[str]) -> None:
        super().__init__()
        self.stack = stack
        self.records: list[OpRecord] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if not (func.is_view or name in _FREE_OPS):
            inputs = _unique_tensors(tree_leaves((args, kwargs)))
            outputs = _unique_tensors(tree_leaves(out))
            self.records.append(
                OpRecord(
                    op=name,
                    module=self.stack[-1],
                    gemms=_gemms(name, args, out),
                    read=sum(t.numel() for t in inputs),
                    written=sum(t.numel() for t in outputs),
                )
            )
        return out


def _unique_tensors(leaves: Iterable[object]) -> list[torch.Tensor]:
    seen, tensors = set(), []
    for leaf in leaves:
        if isinstance(leaf, torch.Tensor) and id(leaf) not in seen:
            seen.add(id(leaf))
            tensors.append(leaf)
    return tensors


def _gemms(name: str, args: Sequence, out: object) -> tuple[Gemm, ...]:
    """The matrix products of a matrix op, or () for everything else."""
    if name in ("convolution", "_convolution", "mkldnn_convolution"):
        return (_conv_gemm(args[0], args[1], out, transposed=bool(args[6]), groups=int(args[8])),)
    if name in ("mm", "addmm"):
        a, b = (args[0], args[1]) if name == "mm" else (args[1], args[2])
        return (Gemm(a.shape[0], a.shape[1], b.shape[1]),)
    if name in ("bmm", "baddbmm"):
        a, b = (args[0], args[1]) if name == "bmm" else (args[1], args[2])
        return (Gemm(a.shape[1], a.shape[2], b.shape[2], a.shape[0]),)
    if name == "matmul" and args[0].dim() >= 2 and args[1].dim() >= 2:
        a, b = args[0], args[1]
        batch = math.prod(torch.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
        return (Gemm(a.shape[-2], a.shape[-1], b.shape[-1], batch),)
    if name == "linear":
        x, w = args[0], args[1]
        return (Gemm(math.prod(x.shape[:-1]), x.shape[-1], w.shape[0]),)
    if name in _ATTENTION_OPS:
        q, k, v = args[0], args[1], args[2]  # [B, heads, L, E], [B, heads, S, E], [B, heads, S, Ev]
        heads = math.prod(q.shape[:-2])
        length, source = q.shape[-2], k.shape[-2]
        return (Gemm(length, q.shape[-1], source, heads), Gemm(length, source, v.shape[-1], heads))
    return ()


def _conv_gemm(
    x: torch.Tensor, weight: torch.Tensor, out: torch.Tensor, *, transposed: bool, groups: int
) -> Gemm:
    """A convolution as im2col GEMM per group and sample: [C_out/g, C_in/g * k] x [., H_out*W_out]."""
    kernel = math.prod(weight.shape[2:])
    if transposed:  # weight [C_in, C_out/g, k...]
        out_per_group, in_per_group = weight.shape[1], weight.shape[0] // groups
    else:  # weight [C_out, C_in/g, k...]
        out_per_group, in_per_group = weight.shape[0] // groups, weight.shape[1]
    positions = math.prod(out.shape[2:])
    return Gemm(out_per_group, in_per_group * kernel, positions, x.shape[0] * groups)


def _pad(value: int, fractal: int) -> int:
    return -(-value // fractal) * fractal

"""Every aten op of one eval forward, with its shapes and tensors, as cube or vector work.

Shared by the matrix-efficiency measure and the Ascend latency model. A `TorchDispatchMode`
sees the ops below autograd, after composite ops (linear, matmul, einsum) have become
addmm / mm / bmm, so any torch model is covered without per-layer rules. Each op is charged
to the innermost module running when it was dispatched, and names the tensors it reads and
writes (views share their base's key), so the latency model can tell which intermediates a
fused operator keeps on chip.

The forward runs on PyTorch's "meta" device, through `torch.func.functional_call` with meta
copies of the parameters: shapes only, no arithmetic and no activation memory, whatever the
batch or resolution (a 224 px NeoNeXt-T records in a fraction of a second, a batch of 512 too).

A NeoCell is recorded as one op, "neocell", with the products of its tiled form
(evaluators.tiled_neocell): what a matrix unit runs, whatever implementation the CPU picks.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from evaluators.flops import batched_shape
from evaluators.segments import Shape, UnitCache, walk_units
from evaluators.tiled_neocell import tiled_products, tiled_weight_elements
from neonas.ops import NeoCell

# Ops that move no data: metadata changes and allocations (views are caught by `is_view`).
_FREE_OPS = {
    "_unsafe_view",
    "alias",
    "as_strided_",
    "detach",
    "empty",
    "empty_like",
    "empty_strided",
    "lift_fresh",
    "new_empty",
    "resize_",
    "set_",
    "zeros",
    "zeros_like",
}
_ATTENTION_OPS = {
    "_scaled_dot_product_attention_math",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_flash_attention_for_cpu",
}
INPUT_KEY = 0  # key of the recorded module's input tensor


@dataclass(frozen=True)
class Gemm:
    """`count` independent products [m, k] x [k, n], as a matrix unit computes them.

    `useful` overrides the useful multiply-adds where the [m, k] operand is known to hold
    zeros (a NeoCell tile is block-diagonal); by default every product is useful.
    """

    m: int
    k: int
    n: int
    count: int = 1
    useful: int | None = None

    @property
    def macs(self) -> int:
        """Useful multiply-adds."""
        return self.m * self.k * self.n * self.count if self.useful is None else self.useful

    def padded_macs(self, fractal: int = 16) -> int:
        """Multiply-adds the unit performs with every dimension padded to the fractal."""
        return _pad(self.m, fractal) * _pad(self.k, fractal) * _pad(self.n, fractal) * self.count


@dataclass(frozen=True)
class TensorUse:
    """A tensor an op reads or writes: its key within the recording, size, and whether it is a
    parameter or buffer (weights come from DRAM; activations may still be on chip)."""

    key: int
    elements: int
    weight: bool = False


@dataclass(frozen=True)
class OpRecord:
    """One executed aten op: its name, its module, its matrix products and its tensors."""

    op: str
    module: str
    gemms: tuple[Gemm, ...]
    inputs: tuple[TensorUse, ...] = ()
    outputs: tuple[TensorUse, ...] = ()

    @property
    def read(self) -> int:
        """Elements read, weights included."""
        return sum(t.elements for t in self.inputs)

    @property
    def written(self) -> int:
        """Elements written."""
        return sum(t.elements for t in self.outputs)

    def moved(self, prefix: str, keys: dict[int, int]) -> OpRecord:
        """The same record seen from a parent module at `prefix`, tensor keys renamed by `keys`."""
        module = f"{prefix}.{self.module}" if self.module else prefix

        def rename(uses: tuple[TensorUse, ...]) -> tuple[TensorUse, ...]:
            return tuple(TensorUse(keys[u.key], u.elements, u.weight) for u in uses)

        return OpRecord(self.op, module, self.gemms, rename(self.inputs), rename(self.outputs))


@dataclass(frozen=True)
class Recording:
    """The ops of one module's forward, the key of its output, and its output shape."""

    ops: tuple[OpRecord, ...]
    output_key: int
    keys: int  # keys used: 0 .. keys - 1


# Unit recordings shared by every call (see evaluators.segments).
_record_cache = UnitCache()


def record_ops(model: nn.Module, input_shape: Sequence[int], batch: int = 1) -> list[OpRecord]:
    """The ops of one eval forward of `model` on an input of `input_shape`, in order; tensor
    keys are unique over the network and key 0 is its input."""
    shape = batched_shape(input_shape, batch)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            units = walk_units(model, shape, _record, _record_cache)
            if units is None:
                return list(_record(model, shape)[0].ops)
            ops: list[OpRecord] = []
            previous_output, offset = INPUT_KEY, 1
            for unit in units:
                recording = unit.value
                keys = {key: offset + key - 1 for key in range(1, recording.keys)}
                keys[INPUT_KEY] = previous_output
                ops += [op.moved(unit.path, keys) for op in recording.ops]
                previous_output = keys[recording.output_key]
                offset += recording.keys - 1
            return ops
    finally:
        model.train(was_training)


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` whose parameters and buffers live on the meta device: the structure
    without the data (copying a NeoNeXt-T's weights would cost 110 MB; this costs ~1 MB).
    Predictions transform it (BatchNorm folding) instead of a real copy."""
    memo: dict[int, torch.Tensor] = {}
    for tensor in (*model.parameters(), *model.buffers()):
        empty = torch.empty_like(tensor, device="meta")
        if isinstance(tensor, nn.Parameter):
            empty = nn.Parameter(empty, requires_grad=tensor.requires_grad)
        memo[id(tensor)] = empty
    return copy.deepcopy(model, memo)


def clear_cache() -> None:
    """Forget the shared unit recordings."""
    _record_cache.clear()


def _record(module: nn.Module, shape: Shape) -> tuple[Recording, Shape]:
    """Record one forward on meta tensors; a warm-up call first lets NeoCells build their caches."""
    tensors = {
        name: torch.empty_like(t, device="meta")
        for name, t in (*module.named_parameters(), *module.named_buffers())
    }
    example = torch.zeros(shape, device="meta")
    functional_call(module, tensors, (example,))
    recorder = _Recorder({id(t) for t in tensors.values()})
    recorder.key_of(example)
    hooks = []
    for name, sub in module.named_modules():
        if isinstance(sub, NeoCell):
            hooks.append(sub.register_forward_pre_hook(recorder.cell_enter(name)))
            hooks.append(sub.register_forward_hook(recorder.cell_leave(name, sub)))
        elif name:
            hooks.append(sub.register_forward_pre_hook(recorder.enter(name)))
            hooks.append(sub.register_forward_hook(recorder.leave))
    try:
        with recorder:
            output = functional_call(module, tensors, (example,))
    finally:
        for hook in hooks:
            hook.remove()
    output_key = recorder.key_of(output)
    recording = Recording(tuple(recorder.records), output_key, recorder.next_key)
    return recording, tuple(getattr(output, "shape", ()))


class _Recorder(TorchDispatchMode):
    """Records each dispatched aten op with the module on top of the stack and its tensors."""

    def __init__(self, weight_ids: set[int]) -> None:
        super().__init__()
        self.stack: list[str] = [""]
        self.records: list[OpRecord] = []
        self.keys: dict[int, int] = {}
        self.weights: set[int] = set()
        self.weight_ids = weight_ids
        self.alive: list[torch.Tensor] = []  # held so that ids are not reused while recording
        self.inside_cell = 0
        self.next_key = 0

    def key_of(self, tensor: torch.Tensor, base: torch.Tensor | None = None) -> int:
        """The key of `tensor` (its base's key for a view), assigned on first sight."""
        if id(tensor) not in self.keys:
            key = self.key_of(base) if base is not None else self.fresh_key()
            self.keys[id(tensor)] = key
            self.alive.append(tensor)
            if id(tensor) in self.weight_ids or (base is not None and key in self.weights):
                self.weights.add(key)
        return self.keys[id(tensor)]

    def fresh_key(self) -> int:
        self.next_key += 1
        return self.next_key - 1

    def use(self, tensor: torch.Tensor) -> TensorUse:
        key = self.key_of(tensor)
        return TensorUse(key, tensor.numel(), key in self.weights)

    def enter(self, name: str):  # noqa: ANN202
        return lambda _module, _args: self.stack.append(name)

    def leave(self, *_: object) -> None:
        self.stack.pop()  # returns None: a hook's return value would replace the module's output

    def cell_enter(self, name: str):  # noqa: ANN202
        def hook(_module: nn.Module, args: tuple) -> None:
            self.stack.append(name)
            self.inside_cell += 1

        return hook

    def cell_leave(self, name: str, cell: NeoCell):  # noqa: ANN202
        def hook(_module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            self.inside_cell -= 1
            self.stack.pop()
            x = args[0]
            batch, _, height, width = x.shape
            gemms = tuple(
                Gemm(p.m, p.k, p.n, p.count, p.useful)
                for p in tiled_products(cell, height, width, batch)
            )
            weights = TensorUse(self.fresh_key(), tiled_weight_elements(cell, height, width), True)
            self.records.append(
                OpRecord("neocell", name, gemms, (self.use(x), weights), (self.use(output),))
            )

        return hook

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.inside_cell:
            return out
        name = func.overloadpacket.__name__
        tensors_in = _unique_tensors(tree_leaves((args, kwargs)))
        tensors_out = _unique_tensors(tree_leaves(out))
        if func.is_view and tensors_in:
            for tensor in tensors_out:
                self.key_of(tensor, base=tensors_in[0])
        elif name in _FREE_OPS:
            for tensor in tensors_out:
                self.key_of(tensor)
        else:
            inputs = tuple(self.use(t) for t in tensors_in)
            self.records.append(
                OpRecord(
                    op=name,
                    module=self.stack[-1],
                    gemms=_gemms(name, args, out),
                    inputs=tuple({u.key: u for u in inputs}.values()),
                    outputs=tuple(self.use(t) for t in tensors_out),
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

"""Operator fusion as Ascend's graph compiler (ATC / graph engine) does it, and the DRAM traffic
of each fused operator after on-chip buffers.

Fusion rules (one table, applied to the recorded aten ops in execution order):

| op kind   | examples                                   | fuses                                   |
|-----------|--------------------------------------------|-----------------------------------------|
| cube      | convolution, mm/addmm/bmm, linear, neocell | starts a fused op; never joins another  |
| epilogue  | batch norm, bias add, activations, add/mul | joins the fused op whose output it reads|
| vector    | layer norm, softmax, pooling, mean, concat | starts a fused op of its own            |

An epilogue joins the current fused op only if one of its inputs is that op's latest output
(dataflow, not mere order): conv + BN + ReLU + residual add is one operator, and only its
final result is written; the residual operand is an extra read. Everything else (a reshape
copy, an op nobody lists) runs as a vector op of its own: unknown ops are never assumed free.
These are the conv/matmul + elementwise "UB fusion" patterns the Ascend graph engine applies
(CANN "graph fusion" and "UB fusion" rules); attention's matmul-softmax-matmul fusion is not
modelled (transformers are charged three operators).

On-chip memory decides what reaches DRAM (see AscendChip for the sizes and their sources):
- inside a fused op, intermediates stay in the unified buffer / L0C (never written);
- between fused ops, activations live in the L2 cache while they fit: a tensor written by one
  operator and read by a later one is an L2 hit unless more than the L2 size was written in
  between (least recently used first) or it alone exceeds the L2; a dirty tensor evicted while
  a later operator still needs it is written to DRAM then and read from DRAM later;
- weights stream from DRAM on every inference (a network's weights exceed the L2);
- within a cube operator the larger operand is re-read from memory once per L1-sized block of
  the smaller one (output-stationary tiling over the cores' L1 buffers).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from evaluators.op_trace import Gemm, OpRecord, TensorUse

CUBE_OPS = frozenset(
    {
        "convolution",
        "_convolution",
        "mkldnn_convolution",
        "mm",
        "addmm",
        "bmm",
        "baddbmm",
        "matmul",
        "linear",
        "neocell",
        "_scaled_dot_product_attention_math",
        "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_flash_attention",
    }
)
# Elementwise ops and their cost in vector passes over their output (transcendentals take two).
EPILOGUE_PASSES = {
    "add": 1,
    "add_": 1,
    "sub": 1,
    "mul": 1,
    "mul_": 1,
    "div": 1,
    "neg": 1,
    "relu": 1,
    "relu_": 1,
    "hardtanh": 1,
    "hardtanh_": 1,
    "clamp": 1,
    "clamp_min": 1,
    "leaky_relu": 1,
    "where": 1,
    "native_batch_norm": 2,
    "_native_batch_norm_legit_no_training": 2,
    "gelu": 2,
    "silu": 2,
    "silu_": 2,
    "sigmoid": 2,
    "tanh": 2,
    "hardswish": 1,
    "hardswish_": 1,
    "hardsigmoid": 1,
    "elu": 2,
    "erf": 2,
    "exp": 2,
    "sqrt": 2,
    "rsqrt": 2,
    "_to_copy": 1,
    "clone": 1,
    "copy_": 1,
}
# Vector ops that start an operator of their own, in vector passes over the larger of their
# input and output (a norm reads twice and writes once; softmax: max, exp-sum, scale).
VECTOR_PASSES = {"native_layer_norm": 3, "_softmax": 3, "_safe_softmax": 3, "_log_softmax": 3}
DEFAULT_VECTOR_PASSES = 1


@dataclass
class FusedOp:
    """One operator as the chip runs it: its aten ops, cube products and vector passes."""

    module: str
    ops: list[OpRecord]
    gemms: list[Gemm] = field(default_factory=list)
    vector_elements: int = 0  # element-passes on the vector unit
    reads: list[TensorUse] = field(default_factory=list)  # external inputs, in order
    produced: dict[int, TensorUse] = field(default_factory=dict)
    latest: set[int] = field(default_factory=set)  # keys of the newest op's outputs
    # Filled by `memory_traffic`: elements moved to and from DRAM, and read from L2.
    dram_elements: int = 0
    l2_elements: int = 0

    @property
    def is_cube(self) -> bool:
        return bool(self.gemms)

    @property
    def name(self) -> str:
        return "+".join(op.op for op in self.ops)


def kind(op: OpRecord) -> str:
    """'cube', 'epilogue' or 'vector', by the fusion table."""
    if op.op in CUBE_OPS or op.gemms:
        return "cube"
    return "epilogue" if op.op in EPILOGUE_PASSES else "vector"


def fuse(ops: Sequence[OpRecord]) -> list[FusedOp]:
    """Group recorded ops into fused operators by the table above."""
    fused: list[FusedOp] = []
    for op in ops:
        op_kind = kind(op)
        current = fused[-1] if fused else None
        joins = (
            op_kind == "epilogue"
            and current is not None
            and any(u.key in current.latest for u in op.inputs)
        )
        if not joins:
            current = FusedOp(op.module, [])
            fused.append(current)
        assert current is not None
        current.ops.append(op)
        current.gemms += op.gemms
        if op_kind != "cube":
            passes = EPILOGUE_PASSES.get(op.op) or VECTOR_PASSES.get(op.op, DEFAULT_VECTOR_PASSES)
            largest = max(
                [u.elements for u in op.outputs] + [u.elements for u in op.inputs if not u.weight]
                or [0]
            )
            current.vector_elements += passes * largest
        for use in op.inputs:
            if use.key not in current.produced and all(r.key != use.key for r in current.reads):
                current.reads.append(use)
        current.latest = {u.key for u in op.outputs}
        for use in op.outputs:
            current.produced[use.key] = use
    return fused


def memory_traffic(
    fused: Sequence[FusedOp], l2_elements: float, l1_elements: float, network_output: int | None
) -> None:
    """Fill each operator's DRAM and L2 traffic (in elements) by the buffer rules above."""
    last_reader: dict[int, int] = {}
    for index, operator in enumerate(fused):
        for use in operator.reads:
            last_reader[use.key] = index
    cache: OrderedDict[int, int] = OrderedDict()  # L2: key -> elements, least recent first
    dirty_in_dram: set[int] = set()

    def evict_until(room: int, now: int) -> int:
        written = 0
        while cache and sum(cache.values()) > room:
            key, size = cache.popitem(last=False)
            if last_reader.get(key, -1) > now and key not in dirty_in_dram:
                written += size  # still needed later: written back to DRAM
                dirty_in_dram.add(key)
        return written

    for index, operator in enumerate(fused):
        dram = l2 = 0
        for use in operator.reads:
            if use.weight:
                dram += use.elements
            elif use.key in cache:
                l2 += use.elements
                cache.move_to_end(use.key)
            else:
                dram += use.elements
        dram += _reread_elements(operator, l1_elements)
        outputs = [
            use
            for key, use in operator.produced.items()
            if last_reader.get(key, -1) > index or key == network_output
        ]
        for use in outputs:
            if use.elements > l2_elements or use.key == network_output:
                dram += use.elements
                dirty_in_dram.add(use.key)
                continue
            cache[use.key] = use.elements
            dram += evict_until(int(l2_elements), index)
        operator.dram_elements, operator.l2_elements = dram, l2


def _reread_elements(operator: FusedOp, l1_elements: float) -> int:
    """Extra reads of the larger operand of a cube op whose smaller operand overflows the L1s."""
    if not operator.is_cube or not operator.reads:
        return 0
    weights = sum(u.elements for u in operator.reads if u.weight)
    activations = sum(u.elements for u in operator.reads if not u.weight)
    small, large = sorted((weights, activations))
    passes = math.ceil(small / l1_elements) if l1_elements > 0 else 1
    return large * max(passes - 1, 0)

"""FLOPs (multiply-adds, the fvcore convention) and parameters of any torch model.

`flops` counts the network as executed, NeoCell through `neonas.ops.flop_handles()` (the dense
block-diagonal products: the paper's count, Table 1 and the search budget); `flops_patchwise`
and `flops_tiled` replace every NeoCell's share by `NeoCell.macs(h, w, "patch")` (section 3.6)
and `NeoCell.macs(h, w, "tiled")` (tiles of `neonas.ops.tiling.tile_rows` rows, what a matrix
engine runs). Unit-shaped models (NeoNeXt,
ConvNeXt) are traced one distinct unit at a time, and traces are shared between calls.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from evaluators.segments import Shape, UnitCache, walk_units


@dataclass(frozen=True)
class FlopCount:
    """FLOPs as executed (dense NeoCells), patch-wise and tiled, parameters, and FLOPs per
    module (fvcore names, dense)."""

    flops: int
    flops_patchwise: int
    params: int
    flops_tiled: int
    by_module: dict[str, int] = field(repr=False)


@dataclass(frozen=True)
class _Trace:
    """What one traced module costs: fvcore totals and NeoCell's patch-wise correction."""

    flops: int
    patch_delta: int  # flops_patchwise - flops
    tiled_delta: int  # flops_tiled - flops
    by_module: dict[str, int]


# Traces of units seen before, shared by every call: a search scores many networks built
# from the same units.
_trace_cache = UnitCache()


def batched_shape(input_shape: Sequence[int], batch: int = 1) -> Shape:
    """(C, H, W) plus a batch size -> (N, C, H, W); any other rank is the full input shape."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        return (batch, *shape)
    if batch not in (1, shape[0]):
        raise ValueError(f"input shape {shape} already has batch {shape[0]}, not {batch}")
    return shape


def count_flops(model: nn.Module, input_shape: Sequence[int] = (1, 3, 224, 224)) -> FlopCount:
    """Count FLOPs and parameters of `model` on an input of `input_shape` (N, C, H, W)."""
    shape = batched_shape(input_shape)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            units = walk_units(model, shape, _trace, _trace_cache)
            if units is None:
                trace = _trace(model, shape)[0]
                flops, by_module = trace.flops, dict(trace.by_module)
                delta, tiled = trace.patch_delta, trace.tiled_delta
            else:
                flops, delta, tiled, by_module = _merge_units(units)
    finally:
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    return FlopCount(
        flops=flops,
        flops_patchwise=flops + delta,
        params=params,
        flops_tiled=flops + tiled,
        by_module=by_module,
    )


def clear_cache() -> None:
    """Forget the shared unit traces (after a change to NeoCell's counting, say)."""
    _trace_cache.clear()


def _merge_units(units) -> tuple[int, int, int, dict[str, int]]:
    """Sum unit traces into totals and a by-module table with full names and their ancestors."""
    by_module: Counter[str] = Counter()
    flops = delta = tiled = 0
    for unit in units:
        trace: _Trace = unit.value
        flops += trace.flops
        delta += trace.patch_delta
        tiled += trace.tiled_delta
        for name, value in trace.by_module.items():
            if name:
                by_module[f"{unit.path}.{name}"] += value
        parts = unit.path.split(".")
        for depth in range(len(parts) + 1):
            by_module[".".join(parts[:depth])] += trace.flops
    return flops, delta, tiled, dict(by_module)


def _trace(module: nn.Module, shape: Shape) -> tuple[_Trace, Shape]:
    """One fvcore analysis of `module`, with NeoCell input sizes taken by forward hooks."""
    with warnings.catch_warnings():
        # fvcore's import warns that torch.jit.script is deprecated: nothing the user can act on.
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import FlopCountAnalysis

    from neonas.ops import NeoCell, flop_handles

    cell_sizes: dict[str, list[tuple[int, int]]] = {}
    out_shape: list[Shape] = []

    # Sizes seen while jit-tracing are traced values: keep them as plain ints.
    def keep_output(_module: nn.Module, _inputs: tuple, output: object) -> None:
        out_shape.append(tuple(int(s) for s in getattr(output, "shape", ())))

    def keep_cell_input(name: str, inputs: tuple) -> None:
        cell_sizes[name].append((int(inputs[0].shape[-2]), int(inputs[0].shape[-1])))

    hooks = [module.register_forward_hook(keep_output)]
    for name, sub in module.named_modules():
        if isinstance(sub, NeoCell):
            cell_sizes[name] = []
            hooks.append(
                sub.register_forward_hook(
                    lambda _m, inputs, _o, name=name: keep_cell_input(name, inputs)
                )
            )
    example = torch.zeros(shape)
    try:
        analysis = (
            FlopCountAnalysis(module, (example,))
            .set_op_handle(**flop_handles())
            .unsupported_ops_warnings(False)
            .uncalled_modules_warnings(False)
            .tracer_warnings("none")
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _quiet_fvcore()
            by_module = dict(analysis.by_module())
    finally:
        for hook in hooks:
            hook.remove()
    cells = dict(module.named_modules())
    delta = {"patch": 0, "tiled": 0}
    for name, sizes in cell_sizes.items():
        for form in delta:
            count = sum(cells[name].macs(h, w, form=form) for h, w in sizes) * shape[0]
            delta[form] += count - by_module.get(name, 0)
    trace = _Trace(
        flops=by_module.get("", 0),
        patch_delta=delta["patch"],
        tiled_delta=delta["tiled"],
        by_module=by_module,
    )
    return trace, out_shape[-1]


def _quiet_fvcore() -> None:
    """fvcore logs every op it has no handle for (gelu, add, ...): not news for us."""
    logging.getLogger("fvcore.nn.jit_analysis").setLevel(logging.ERROR)

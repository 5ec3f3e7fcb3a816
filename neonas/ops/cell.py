"""NeoCell as a torch module: several channel groups, shifted subgroups, one dense matmul pair."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from neonas.errors import UserError
from neonas.ops import functional as F
from neonas.ops import native
from neonas.ops.groups import CellGroup, normalize_groups, split_channels, subgroups
from neonas.ops.init import neoinit_, normal_init_
from neonas.ops.tiling import DEFAULT_TILE_TARGET, tile_rows

INITS = ("neoinit", "normal")
MAC_FORMS = ("dense", "tiled", "patch")


class NeoCell(nn.Module):
    """Patch-wise matrix multiplication (NeoNeXt, paper section 3), a depthwise-conv replacement.

    Args:
        channels: input and output channels (no mixing across channels).
        groups: an int k (one k x k group), a CellGroup, or a list of them; every group gets
            round(share * channels) channels (the last the remainder) and its own matrices
            left [C_g, h', h] and right [C_g, w, w']. All groups must share one sampling ratio.
        bias: a trainable bias [C_g, h', w'] per group, added to every output patch.
        init: "neoinit" (Algorithm 1, the default) or "normal" (the paper's ablation baseline).
        impl: "auto", "dense" (block-diagonal matmuls: the whole cell, all groups and shifts,
            is one pair of batched matmuls), "tiled" (whole patches packed into tiles of about
            `tile` rows, one block-diagonal product per tile) or "patch" (batched per-patch
            matmuls). "auto" is "dense" while tracing/exporting; for CPU inference of square
            cells it runs the fused C++ kernel (neonas.ops.native) when it builds ("fused" asks
            for it explicitly and falls back like "auto"); otherwise see functional.choose_impl.
        tile: tile target of the tiled form (rows per tile: neonas.ops.tiling.tile_rows).
        rounding: output size on a map the patch does not divide (down- or up-sampling cells):
            "ceil" (neonas's rule: the last, partial patch gives outputs) or "floor" (the
            authors' code's rule, for the `*_ref` networks: its outputs are dropped).

    Any input size works: see neonas.ops.functional for the semantics of sizes that the
    matrices do not divide (zero-pad, apply, crop) and of shifts (pad k - s in front, crop).
    Under no_grad the dense operators are cached until a parameter changes (their _version).
    """

    def __init__(
        self,
        channels: int,
        groups: Sequence[CellGroup] | CellGroup | int = 7,
        *,
        bias: bool = False,
        init: str = "neoinit",
        impl: str = "auto",
        tile: int = DEFAULT_TILE_TARGET,
        rounding: str = "ceil",
    ) -> None:
        super().__init__()
        if init not in INITS:
            raise UserError(f"unknown NeoCell init {init!r}: use one of {', '.join(INITS)}")
        if not isinstance(bias, bool):
            raise UserError(f"bad NeoCell bias {bias!r}: use true or false")
        self.channels = channels
        self.groups = normalize_groups(groups)
        self.impl = F.check_impl(impl)
        self.rounding = F.check_rounding(rounding)
        tile_rows(1, tile)  # validates the target
        self.tile = tile
        counts = split_channels(channels, [group.share for group in self.groups])
        # Plain ints: parameter shapes turn into tensors while tracing for ONNX export.
        self.group_channels = tuple(counts)
        self._group_starts = tuple(sum(counts[:i]) for i in range(len(counts)))
        self.left = nn.ParameterList()
        self.right = nn.ParameterList()
        self.bias = nn.ParameterList() if bias else None
        for group, count in zip(self.groups, counts, strict=True):
            (h, w), (ho, wo) = group.patch, group.patch_out
            self.left.append(nn.Parameter(torch.empty(count, ho, h)))
            self.right.append(nn.Parameter(torch.empty(count, w, wo)))
            if self.bias is not None:
                self.bias.append(nn.Parameter(torch.zeros(count, ho, wo)))
        self.init = init
        self.reset_parameters()
        self._layout = subgroups(channels, self.groups)
        self._index_cache: dict[tuple, F.DenseIndex] = {}
        self._operand_cache: tuple | None = None
        self._band_cache: tuple | None = None
        self._impl_cache: dict[tuple, str] = {}

    def reset_parameters(self) -> None:
        """Re-draws the matrices with this cell's init; biases start at zero."""
        for left, right in zip(self.left, self.right, strict=True):
            if self.init == "neoinit":
                neoinit_(left)
                neoinit_(right)
            else:
                normal_init_(left, right)
        if self.bias is not None:
            for bias in self.bias:
                nn.init.zeros_(bias)

    @property
    def shapes(self) -> list[tuple[int, int, int, int]]:
        """(h, w, h', w') per group."""
        return [(*group.patch, *group.patch_out) for group in self.groups]

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(H_out, W_out) = (ceil(H * h'/h), ceil(W * w'/w)) for an input of (H, W); floor of
        both with rounding="floor"."""
        h, w, ho, wo = self.shapes[0]
        return (
            F.output_length(height, h, ho, self.rounding),
            F.output_length(width, w, wo, self.rounding),
        )

    def macs(self, height: int, width: int, form: str = "dense") -> int:
        """Multiply-adds per sample at this input size as the dense, tiled or patch form runs
        them (the search budget and Table 1 use "dense", the paper's count)."""
        if form not in MAC_FORMS:
            raise UserError(f"unknown NeoCell MAC form {form!r}: use one of {', '.join(MAC_FORMS)}")
        if form == "dense":
            out_h, out_w = self.output_size(height, width)
            return F.dense_macs(self.channels, height, width, out_h, out_w)
        shapes = self.shapes
        total = 0
        for sub in self._layout:
            count, shape = sub.stop - sub.start, shapes[sub.group]
            if form == "patch":
                total += F.patch_macs(count, height, width, shape, sub.shift)
            else:
                total += F.tiled_macs(count, height, width, shape, sub.shift, self.tile)
        return total

    def extra_repr(self) -> str:
        groups = ", ".join(
            f"{g.patch}->{g.patch_out} x{count}{' shift' if g.shift else ''}"
            for g, count in zip(self.groups, self.group_channels, strict=True)
        )
        tile = f", tile={self.tile}" if self.tile != DEFAULT_TILE_TARGET else ""
        rounding = f", rounding={self.rounding!r}" if self.rounding != "ceil" else ""
        return (
            f"{self.channels}, groups=[{groups}], bias={self.bias is not None}, "
            f"impl={self.impl!r}{tile}{rounding}"
        )

    def resolved_impl(self, x: Tensor) -> str:
        """The implementation this forward runs: 'auto' (and 'fused' where the kernel does not
        apply) resolved for x; 'dense' while tracing."""
        if self.impl not in ("auto", "fused"):
            return self.impl
        if F.must_trace_dense():
            return "dense"
        # The choice is remembered per situation: working it out (MAC counts of three forms
        # over every subgroup) cost about 0.1 ms, as much as a stage-3 forward at batch 1.
        key = (self.impl, self.tile, tuple(x.shape), x.device, x.dtype, torch.is_grad_enabled())
        impl = self._impl_cache.get(key)
        if impl is None:
            fused = self._fused_applies(x)
            if self.impl == "fused" and fused:
                impl = "fused"
            else:
                batch, _, height, width = F.static_shape(x)
                costs = {form: self.macs(height, width, form) for form in MAC_FORMS}
                impl = F.choose_impl(x.device, costs, batch, fused)
            self._impl_cache[key] = impl
        return impl

    def _fused_applies(self, x: Tensor) -> bool:
        """The fused kernel serves CPU inference of square cells (any shift), when it builds."""
        return (
            x.device.type == "cpu"
            and not torch.is_grad_enabled()
            and x.dtype in (torch.float32, torch.float64)
            and all(g.patch == g.patch_out and g.patch[0] == g.patch[1] for g in self.groups)
            and native.available()
        )

    def forward(self, x: Tensor) -> Tensor:
        """[N, C, H, W] -> [N, C, H_out, W_out]."""
        if not torch.jit.is_tracing() and (x.dim() != 4 or x.shape[1] != self.channels):
            raise UserError(
                f"NeoCell({self.channels}) expects input [N, {self.channels}, H, W], got {tuple(x.shape)}"
            )
        impl = self.resolved_impl(x)
        if impl in ("tiled", "patch"):
            return self._forward_blocked(x, impl)
        height, width = F.static_shape(x)[2:]
        left, right, bias_map = self.dense_operands(height, width, x.device, x.dtype)
        if impl == "fused":
            return native.band_forward(x, *self._band_operands(left, right), bias_map)
        return F.dense_apply(x, left, right, bias_map)

    def _band_operands(self, left: Tensor, right: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The fused kernel's operands, built from the (cached) dense ones and kept with them."""
        if self._band_cache is not None and self._band_cache[0] is left:
            return self._band_cache[1]
        sizes = [
            g.patch[0]
            for g, n in zip(self.groups, self.group_channels, strict=True)
            for _ in range(n)
        ]
        operands = native.band_operands(left, right, sizes)
        self._band_cache = (left, operands)
        return operands

    def _forward_blocked(self, x: Tensor, impl: str) -> Tensor:
        """The patch or tiled form, one subgroup (channel range with one shift) at a time."""
        outputs = []
        starts = self._group_starts
        for sub in self._layout:
            begin, end = sub.start - starts[sub.group], sub.stop - starts[sub.group]
            bias = None if self.bias is None else self.bias[sub.group][begin:end]
            operands = (
                x[:, sub.start : sub.stop],
                self.left[sub.group][begin:end],
                self.right[sub.group][begin:end],
                bias,
                sub.shift,
            )
            if impl == "tiled":
                outputs.append(F.tiled_apply(*operands, self.tile))
            else:
                outputs.append(F.patch_apply(*operands))
        y = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)
        if self.rounding != "ceil":
            # The blocked forms give the "ceil" output; "floor" is its leading rows and columns.
            out_h, out_w = self._checked_output_size(*F.static_shape(x)[2:])
            y = y[:, :, :out_h, :out_w]
        return y

    def dense_operands(
        self, height: int, width: int, device: torch.device, dtype: torch.dtype
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """A [C, H', H], B [C, W, W'] and the bias map [C, H', W'] (or None) for this input size."""
        # Inference reuses the built matrices while the parameters are unchanged (their
        # _version counts in-place updates); training and tracing always rebuild them so
        # autograd and the traced graph see the real computation.
        cacheable = not torch.is_grad_enabled() and not F.must_trace_dense()
        key = None
        if cacheable:
            key = (
                height,
                width,
                device,
                dtype,
                *((p.data_ptr(), p._version) for p in self.parameters()),
            )
            if self._operand_cache is not None and self._operand_cache[0] == key:
                return self._operand_cache[1]
        index = self._dense_index(height, width, device)
        # Gathered in the parameters' dtype, then cast: under mixed precision the gather's
        # backward (an index_add summing each weight's repeats down the diagonal, and every
        # off-block entry into the one zero slot) then runs in float32; in bfloat16 the
        # weights' gradients were off by up to 5 % (benchmarks/operand_backward.py).
        operands = (
            F.gather_operand(list(self.left), index.left, index.plain).to(dtype),
            F.gather_operand(list(self.right), index.right, index.plain).to(dtype),
            None
            if self.bias is None
            else F.gather_operand(list(self.bias), index.bias, index.plain).to(dtype),
        )
        if key is not None:
            self._operand_cache = (key, operands)
        return operands

    # torch.compile runs the (numpy) index construction eagerly: one graph break per size,
    # instead of Dynamo tracing numpy code on every recompilation.
    @torch.compiler.disable
    def _dense_index(self, height: int, width: int, device: torch.device) -> F.DenseIndex:
        # While tracing the index is built afresh, so every traced call records the same graph
        # (jit.trace checks that two traces agree); it ends up as a constant in the graph.
        tracing = F.must_trace_dense()
        key = (height, width, str(device))
        index = None if tracing else self._index_cache.get(key)
        if index is None:
            starts = self._group_starts
            ranges = [
                (s.group, s.start - starts[s.group], s.stop - starts[s.group], s.shift)
                for s in self._layout
            ]
            self._checked_output_size(height, width)
            index = F.DenseIndex(ranges, self.shapes, height, width, self.rounding).to(device)
            if not tracing:
                self._index_cache[key] = index
        return index

    def _checked_output_size(self, height: int, width: int) -> tuple[int, int]:
        """output_size, or UserError where it is empty (rounding "floor" on too small a map)."""
        out_h, out_w = self.output_size(height, width)
        if min(out_h, out_w) < 1:
            h, w, ho, wo = self.shapes[0]
            raise UserError(
                f"NeoCell {h}x{w} -> {ho}x{wo} with rounding {self.rounding!r} turns the "
                f"{height}x{width} map into {out_h}x{out_w}: the input is too small"
            )
        return out_h, out_w

    def reset_caches(self) -> None:
        """Forget every operand, kernel form and index built so far (after editing parameters
        in place, e.g. BatchNorm folding, which the cache keys do not see when they are replaced)."""
        self._operand_cache = self._band_cache = None
        self._index_cache = {}
        self._impl_cache = {}

    def train(self, mode: bool = True) -> NeoCell:
        self._operand_cache = self._band_cache = None
        return super().train(mode)

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001, ANN202 (nn.Module signature)
        # .to()/.cuda()/.half() move or convert parameters: drop everything built from them.
        self._operand_cache = self._band_cache = None
        return super()._apply(fn, recurse)

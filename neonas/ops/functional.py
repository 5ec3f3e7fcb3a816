"""The NeoCell operator for one channel group, in its dense (block-diagonal) and patch-wise forms.

Semantics, for any H, W >= 1: with blocks L [h', h], the height operator is the truncated
block-diagonal matrix A = blockdiag(L, ..., L)[:H_out, :H] with ceil(H / h) blocks and
H_out = ceil(H * h'/h); the last, partial block uses the leading sub-block of L. This equals
padding the input with zeros to a multiple of h, applying eq. 1 to every patch and cropping the
output to H_out. The width operator B [W, W_out] is built the same way from R [w, w'].

Shift s (0 < s < k, square k x k matrices; paper section 3.5 as the authors' reference code
builds it): the block grid starts s pixels in. The upper-left s x s corner of A holds the
lower-right s x s part of L, full blocks follow from offset s, the last partial block holds the
leading part of L, and every other entry is zero (no wrap-around: the first and last pixels are
never coupled). Equivalently: prepend k - s zero rows/columns, apply the unshifted operator,
drop the first k - s outputs. A bias [C, h', w'] is added to every output patch of that same
grid, so position (i, j) gets bias[(i + k - s) % k, (j + k - s) % k].

Rounding "floor" (the authors' code, for the `*_ref` networks): H_out = floor(H * h'/h), i.e.
the first rows of the "ceil" operator; a partial last patch then gives no output.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from neonas.errors import UserError
from neonas.ops.dense_train import DenseProduct
from neonas.ops.tiling import DEFAULT_TILE_TARGET, tile_rows

IMPLS = ("auto", "dense", "tiled", "patch", "fused")

# Without the fused kernel, CPU inference runs the patch form from this batch size on where the
# dense form needs PATCH_RATIO times its multiply-adds (NeoNeXt-T stage 1; see choose_impl).
PATCH_BATCH = 8
PATCH_RATIO = 8

# Output widths up to this take the right product of the dense form transposed (see dense_apply);
# at (768, 7) that was 1.5-3x faster on the 2-core CPU, at (192, 28) slower.
NARROW_WIDTH = 8


# How a NeoCell sizes its output on a map its patch does not divide: "ceil" (neonas: the last,
# partial patch gives outputs too) or "floor" (the authors' code: its outputs are dropped).
ROUNDINGS = ("ceil", "floor")


def output_length(length: int, block_in: int, block_out: int, rounding: str = "ceil") -> int:
    """ceil (or floor) of length * block_out / block_in: the output length of one spatial axis."""
    if rounding == "floor":
        return length * block_out // block_in
    return -(-length * block_out // block_in)


def check_rounding(rounding: str) -> str:
    """rounding itself if it names a rule of ROUNDINGS; UserError otherwise."""
    if rounding not in ROUNDINGS:
        raise UserError(f"unknown NeoCell rounding {rounding!r}: use one of {', '.join(ROUNDINGS)}")
    return rounding


def grid_offset(block: int, shift: int) -> int:
    """Zeros prepended to realise `shift` (k - s, or 0 unshifted): the pad of pad-and-crop."""
    return (block - shift) % block if shift else 0


# The index builders use numpy, not torch: a NeoCell built while tracing (jit.trace, fvcore,
# ONNX export) then records the finished indices as constants instead of their construction.
@lru_cache(maxsize=256)
def block_index(
    rows: int, cols: int, block_rows: int, block_cols: int, shift: int = 0
) -> np.ndarray:
    """Flat indices into a [block_rows, block_cols] block for the truncated, shifted
    block-diagonal matrix [rows, cols]; -1 where the matrix is zero."""
    # Shift s (square blocks only): entry (r, c) is entry (r + k - s, c + k - s) of the unshifted
    # matrix of a map with k - s zeros prepended, i.e. pad-and-crop.
    offset = grid_offset(block_rows, shift)
    r = np.arange(rows) + offset
    c = np.arange(cols) + offset
    same_block = (r[:, None] // block_rows) == (c[None, :] // block_cols)
    flat = (r[:, None] % block_rows) * block_cols + (c[None, :] % block_cols)
    return np.where(same_block, flat, -1)


@lru_cache(maxsize=256)
def tile_index(
    rows: int, cols: int, block_rows: int, block_cols: int, shift: int = 0
) -> np.ndarray:
    """Flat indices into a [block_rows, block_cols] bias that tile the [rows, cols] output
    along the (shifted) patch grid."""
    offset = grid_offset(block_rows, shift)
    r = np.arange(rows) + offset
    c = np.arange(cols) + offset
    return (r[:, None] % block_rows) * block_cols + (c[None, :] % block_cols)


def check_impl(impl: str) -> str:
    """impl itself if it names an implementation; UserError otherwise."""
    if impl not in IMPLS:
        raise UserError(f"unknown NeoCell impl {impl!r}: use one of {', '.join(IMPLS)}")
    return impl


def must_trace_dense() -> bool:
    """True while tracing or exporting, where 'auto' must be the deterministic dense form."""
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return True
    compiler = torch.compiler
    exporting = getattr(compiler, "is_exporting", lambda: False)
    return bool(compiler.is_compiling() or exporting())


def trains(*tensors: Tensor) -> bool:
    """True when autograd records this call (and it is not traced): the training forward."""
    return (
        torch.is_grad_enabled() and any(t.requires_grad for t in tensors) and not must_trace_dense()
    )


def static_shape(x: Tensor) -> tuple[int, ...]:
    """x.shape as ints, also while tracing (the built operators are specific to one size)."""
    if not torch.jit.is_tracing():
        return tuple(x.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return tuple(int(size) for size in x.shape)


def dense_apply(
    x: Tensor, left_matrix: Tensor, right_matrix: Tensor, bias_map: Tensor | None
) -> Tensor:
    """Y = A @ X @ B per channel (+ bias map): x [N, C, H, W], A [C, H', H], B [C, W, W']."""
    # Two bmm over channels with the batch folded into the long side of the products: a few
    # large products instead of N*C tiny ones (broadcast matmul was 1.5-3x slower on CPU).
    # Left first, so the executed multiply-adds are C * (H'*H*W + H'*W*W') per sample, the
    # counting convention of the paper and of NeoCell.macs(form="dense").
    if trains(x, left_matrix, right_matrix):
        # Training: the same products with a backward written for their layouts (see
        # neonas.ops.dense_train; autograd's own ran bmm matrix by matrix on some layouts).
        y = DenseProduct.apply(x, left_matrix, right_matrix)
        return y if bias_map is None else y + bias_map
    n, c, height, width = x.shape
    out_h, out_w = left_matrix.shape[1], right_matrix.shape[2]
    y = torch.bmm(left_matrix, x.permute(1, 2, 0, 3).reshape(c, height, n * width))  # [C, H', N*W]
    if static_shape(right_matrix)[2] <= NARROW_WIDTH:
        # Narrow outputs: [N*H', W] @ [W, W'] with a tiny W' runs far below peak, so the right
        # product is taken transposed, B^T [W', W] @ Y^T [W, N*H'], with the long side last.
        y = y.reshape(c, out_h, n, width).permute(0, 3, 2, 1).reshape(c, width, n * out_h)
        y = torch.bmm(right_matrix.transpose(1, 2), y)  # [C, W', N*H']
        y = y.reshape(c, out_w, n, out_h).permute(2, 0, 3, 1)  # [N, C, H', W'] (a view)
    else:
        y = y.reshape(c, out_h, n, width).transpose(1, 2).reshape(c, n * out_h, width)
        y = torch.bmm(y, right_matrix)  # [C, N*H', W']
        y = y.reshape(c, n, out_h, out_w).transpose(0, 1)  # [N, C, H', W'] (a view)
    if bias_map is not None:
        y = y + bias_map
    # Returned as the strided view: the consumer's own layout change (the block MLP's copy to
    # channels-last) is then the only copy, instead of one here and one there.
    return y


def patch_apply(
    x: Tensor, left: Tensor, right: Tensor, bias: Tensor | None = None, shift: int = 0
) -> Tensor:
    """Eq. 1 patch by patch: zero-pad to whole patches (k - s rows/columns in front for a
    shift s), two bmm over channels, crop."""
    return blocked_apply(x, left, right, bias, grid_offset(static_shape(left)[-1], shift))


def tiled_apply(
    x: Tensor,
    left: Tensor,
    right: Tensor,
    bias: Tensor | None = None,
    shift: int = 0,
    target: int = DEFAULT_TILE_TARGET,
) -> Tensor:
    """Whole patches packed into tiles of tile_rows(k, target) rows, one block-diagonal tile
    product per tile: the patch form with fewer, larger products (a matrix engine's shape)."""
    out_h, h = static_shape(left)[-2:]
    w, out_w = static_shape(right)[-2:]
    reps_h, reps_w = tile_rows(h, target) // h, tile_rows(w, target) // w
    return blocked_apply(
        x,
        tile_matrix(left, reps_h),
        tile_matrix(right, reps_w),
        None if bias is None else bias.repeat(1, reps_h, reps_w),
        grid_offset(h, shift),
    )


def tile_matrix(blocks: Tensor, reps: int) -> Tensor:
    """[C, a, b] -> [C, reps*a, reps*b]: blockdiag(M, ..., M) per channel (reps copies)."""
    if reps == 1:
        return blocks
    c, a, b = static_shape(blocks)
    eye = torch.eye(reps, dtype=blocks.dtype, device=blocks.device)
    tiled = eye[None, :, None, :, None] * blocks[:, None, :, None, :]  # [C, r, a, r, b]
    return tiled.reshape(c, reps * a, reps * b)


def blocked_apply(
    x: Tensor, left: Tensor, right: Tensor, bias: Tensor | None = None, front: int = 0
) -> Tensor:
    """Eq. 1 on every [h, w] block of x after `front` zero rows/columns are prepended and the
    map is zero-padded to whole blocks; two bmm over channels; cropped to the output size."""
    n = x.shape[0]  # stays symbolic while tracing: a dynamic batch in exported graphs
    c, height, width = static_shape(x)[1:]
    out_h, h = static_shape(left)[-2:]
    w, out_w = static_shape(right)[-2:]
    full_h, full_w = output_length(height, h, out_h), output_length(width, w, out_w)
    nh, nw = -(-(height + front) // h), -(-(width + front) // w)
    if front or nh * h != height or nw * w != width:
        x = torch.nn.functional.pad(
            x, (front, nw * w - width - front, front, nh * h - height - front)
        )
    # Block rows become one long matrix side: [C, h, N*nh*nw*w]; the left matrix acts on all.
    y = x.reshape(n, c, nh, h, nw * w).permute(1, 3, 0, 2, 4).reshape(c, h, n * nh * nw * w)
    y = torch.bmm(left, y)  # [C, h', N*nh*nw*w]
    y = torch.bmm(y.reshape(c, out_h * n * nh * nw, w), right)  # [C, h'*N*nh*nw, w']
    y = y.reshape(c, out_h, n, nh, nw, out_w)
    if bias is not None:
        y = y + bias[:, :, None, None, None, :]
    y = y.permute(2, 0, 3, 1, 4, 5).reshape(n, c, nh * out_h, nw * out_w)
    if front or nh * out_h != full_h or nw * out_w != full_w:
        y = y[:, :, front : front + full_h, front : front + full_w]
    return y.contiguous()


class DenseIndex:
    """Gather indices that turn a module's flattened weights into its dense operands A, B, bias.

    One gather per operand builds A [C, H', H] (and B, the bias map) for all groups, subgroups
    and shifts at once, so a whole multi-group NeoCell is one pair of batched matmuls.
    """

    def __init__(
        self,
        subgroups: Sequence[tuple[int, int, int, int]],
        shapes: Sequence[tuple[int, int, int, int]],
        height: int,
        width: int,
        rounding: str = "ceil",
    ) -> None:
        """subgroups: (group, start, stop, shift) in channel order, start/stop counted within
        the group; shapes: (h, w, h', w') per group; rounding: see output_length."""
        h, w, out_h, out_w = shapes[0]
        rows = output_length(height, h, out_h, rounding)
        cols = output_length(width, w, out_w, rounding)
        self.left = _channel_index(
            subgroups,
            [oh * h for h, _, oh, _ in shapes],
            lambda g, shift: block_index(rows, height, shapes[g][2], shapes[g][0], shift),
        )
        self.right = _channel_index(
            subgroups,
            [w * ow for _, w, _, ow in shapes],
            lambda g, shift: block_index(width, cols, shapes[g][1], shapes[g][3], shift),
        )
        self.bias = _channel_index(
            subgroups,
            [oh * ow for _, _, oh, ow in shapes],
            lambda g, shift: tile_index(rows, cols, shapes[g][2], shapes[g][3], shift),
        )
        # One group whose block covers the map unshifted (NeoNeXt-T stage 4: 7x7 on 7x7): the
        # dense operands are the parameters themselves, and training skips the gathers and
        # their backward (4 of the step's ~20 operators).
        with warnings.catch_warnings():  # constants while tracing, as above
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            self.plain = len(shapes) == 1 and all(
                np.array_equal(index.numpy().reshape(-1), np.arange(index.numel()))
                for index in (self.left, self.right)
            )

    def to(self, device: torch.device) -> DenseIndex:
        """The same indices on `device`."""
        if torch.device(device) != self.left.device:  # no-op .to() calls would be traced
            self.left, self.right, self.bias = (
                t.to(device) for t in (self.left, self.right, self.bias)
            )
        return self


def _channel_index(
    subgroups: Sequence[tuple[int, int, int, int]],
    block_sizes: Sequence[int],
    local_index: Callable[[int, int], np.ndarray],
) -> Tensor:
    """[C, rows, cols] indices into the concatenated, flattened per-group weights plus one zero
    (the zero fills the off-block entries); local_index(group, shift) gives one channel's."""
    group_channels = [0] * len(block_sizes)
    for group, _, stop, _ in subgroups:
        group_channels[group] = max(group_channels[group], stop)
    sizes = [size * count for size, count in zip(block_sizes, group_channels, strict=True)]
    offsets = np.cumsum([0, *sizes])
    parts = []
    for group, start, stop, shift in subgroups:
        local = local_index(group, shift)
        base = offsets[group] + block_sizes[group] * np.arange(start, stop)
        parts.append(np.where(local >= 0, base[:, None, None] + local, offsets[-1]))
    with warnings.catch_warnings():  # a constant while tracing: intended, see above
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return torch.from_numpy(np.concatenate(parts).astype(np.int64))


def gather_operand(weights: Sequence[Tensor], index: Tensor, plain: bool = False) -> Tensor:
    """Builds one dense operand: the flattened weights (plus a zero) gathered by `index`; with
    `plain` (the index is the identity, DenseIndex.plain) the one weight itself."""
    if plain:
        return weights[0]
    flat = [weight.reshape(-1) for weight in weights]
    flat.append(weights[0].new_zeros(1))
    values = torch.cat(flat)
    return values.index_select(0, index.reshape(-1)).reshape(index.shape)


def _check_operands(
    x: Tensor, left: Tensor, right: Tensor, bias: Tensor | None, shift: int
) -> None:
    if torch.jit.is_tracing():  # checked when run eagerly; shapes are traced tensors here
        return
    if x.dim() != 4:
        raise UserError(f"neocell expects x of shape [N, C, H, W], got {tuple(x.shape)}")
    channels = x.shape[1]
    if (
        left.dim() != 3
        or right.dim() != 3
        or left.shape[0] != channels
        or right.shape[0] != channels
    ):
        raise UserError(
            f"neocell expects left [C, h', h] and right [C, w, w'] with C = {channels}; "
            f"got {tuple(left.shape)} and {tuple(right.shape)}"
        )
    if bias is not None and tuple(bias.shape) != (channels, left.shape[1], right.shape[2]):
        raise UserError(
            f"neocell bias must have shape [C, h', w'] = {(channels, left.shape[1], right.shape[2])}, "
            f"got {tuple(bias.shape)}"
        )
    if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
        raise UserError(f"bad neocell shift {shift!r}: use an int >= 0")
    if shift and not (left.shape[1] == left.shape[2] == right.shape[1] == right.shape[2]):
        raise UserError("neocell shift needs square matrices of one size: h = w = h' = w'")
    if shift >= left.shape[1]:
        raise UserError(
            f"neocell shift {shift} must be smaller than the matrix size {left.shape[1]}"
        )


def neocell(
    x: Tensor,
    left: Tensor,
    right: Tensor,
    *,
    shift: int = 0,
    bias: Tensor | None = None,
    impl: str = "auto",
    tile: int = DEFAULT_TILE_TARGET,
) -> Tensor:
    """NeoCell for one group: x [N, C, H, W], left [C, h', h], right [C, w, w'] ->
    [N, C, ceil(H*h'/h), ceil(W*w'/w)], eq. 1 of the paper on every (zero-padded) patch.
    `tile` is the tile target of impl="tiled" (see neonas.ops.tiling)."""
    _check_operands(x, left, right, bias, shift)
    impl = check_impl(impl)
    if impl in ("auto", "fused"):  # the fused kernel serves the module (cached bands) only
        impl = "dense" if must_trace_dense() else _choose_for_group(x, left, right, shift, tile)
    if impl == "patch":
        return patch_apply(x, left, right, bias, shift)
    if impl == "tiled":
        return tiled_apply(x, left, right, bias, shift, tile)
    height, width = static_shape(x)[2:]
    channels, out_h, h = static_shape(left)
    w, out_w = static_shape(right)[1:]
    index = DenseIndex([(0, 0, channels, shift)], [(h, w, out_h, out_w)], height, width).to(
        x.device
    )
    bias_map = None if bias is None else gather_operand([bias], index.bias)
    return dense_apply(
        x, gather_operand([left], index.left), gather_operand([right], index.right), bias_map
    )


def _choose_for_group(x: Tensor, left: Tensor, right: Tensor, shift: int, tile: int) -> str:
    channels, height, width = static_shape(x)[1:]
    out_h, h = static_shape(left)[1:]
    w, out_w = static_shape(right)[1:]
    rows, cols = output_length(height, h, out_h), output_length(width, w, out_w)
    shape = (h, w, out_h, out_w)
    return choose_impl(
        x.device,
        {
            "dense": dense_macs(channels, height, width, rows, cols),
            "tiled": tiled_macs(channels, height, width, shape, shift, tile),
            "patch": patch_macs(channels, height, width, shape, shift),
        },
        static_shape(x)[0],
    )


def choose_impl(
    device: torch.device, costs: dict[str, int], batch: int = 1, fused: bool = False
) -> str:
    """The form 'auto' runs, from the multiply-adds per sample of each form (dense, tiled,
    patch), the batch size and whether the fused CPU kernel applies: a fixed rule from
    benchmarks/neocell.py (figures in benchmarks/README.md), deterministic so that runs are
    reproducible (an autotuner on a shared CPU would pick by noise)."""
    if device.type != "cpu" or torch.is_grad_enabled():
        # CUDA: the dense form (large batched products; the paper measured it 15x faster than
        # the patch form on a V100; not yet timed on our H200 run). CPU training: dense
        # was the fastest forward+backward at every NeoNeXt-T stage (again on 2026-12-03 with
        # its written-out backward: patch 1.5-3.3x slower at batch 8, one thread).
        return "dense"
    # CPU inference. The tiled form was the slowest at every stage (one product per subgroup
    # and tile, plus padding): it serves matrix engines, never the CPU.
    if fused:
        # The fused kernel beat every PyTorch form at batch 8 at all four NeoNeXt-T stages
        # (1.1-3.6x at 1 thread; 1.2-2.0x at 2 threads, quiet) and the 7x7 depthwise conv at
        # batch 1 and 8 (1.05-2.0x at 2 threads); at batch 1 it was within 15 % of MKL's dense
        # products at stages 2-3 and 1.2-5x faster at stages 1 and 4.
        return "fused"
    if costs["dense"] <= costs["patch"]:
        return "patch"  # one block covers the map (stage 4): no zeros to skip, fewer copies
    if batch >= PATCH_BATCH and costs["dense"] >= PATCH_RATIO * costs["patch"]:
        return "patch"  # stage 1 at batch 8: 1.1-1.7x faster; at batch 1 dense was 1.9x faster
    return "dense"


def dense_macs(channels: int, height: int, width: int, out_height: int, out_width: int) -> int:
    """Multiply-adds per sample of the dense form: C * (H'*H*W + H'*W*W')."""
    return channels * (out_height * height * width + out_height * width * out_width)


def patch_macs(
    channels: int, height: int, width: int, shape: tuple[int, int, int, int], shift: int = 0
) -> int:
    """Multiply-adds per sample of the patch form as executed: C * nh * nw * (h'*h*w + h'*w*w'),
    nh = ceil((H + k - s) / h) patches on a grid shifted by s (k - s = 0 unshifted)."""
    return grid_macs(channels, height, width, shape, shift, (1, 1))


def tiled_macs(
    channels: int,
    height: int,
    width: int,
    shape: tuple[int, int, int, int],
    shift: int = 0,
    target: int = DEFAULT_TILE_TARGET,
) -> int:
    """Multiply-adds per sample of the tiled form as executed: the patch form's count with
    tiles of tile_rows(h, target) x tile_rows(w, target) pixels in place of patches."""
    h, w = shape[:2]
    return grid_macs(
        channels,
        height,
        width,
        shape,
        shift,
        (tile_rows(h, target) // h, tile_rows(w, target) // w),
    )


def grid_macs(
    channels: int,
    height: int,
    width: int,
    shape: tuple[int, int, int, int],
    shift: int,
    reps: tuple[int, int],
) -> int:
    """Multiply-adds of blocked_apply with blockdiag of reps[0] x reps[1] copies of the matrices."""
    h, w, ho, wo = (size * rep for size, rep in zip(shape, reps * 2, strict=True))
    front = grid_offset(shape[0], shift)
    nh, nw = -(-(height + front) // h), -(-(width + front) // w)
    return channels * nh * nw * (ho * h * w + ho * w * wo)

"""The NeoCell as a matrix unit runs it: tiled block-diagonal products, zeros included.

A cube (Ascend's 16x16x16 fp16 fractal) does not run a k x k patch product alone, nor the dense
H x H block-diagonal matrix: it runs tiles of T = `neonas.ops.tiling.tile_rows(k)` rows, each a
T x T block-diagonal product of T / k patches, padded to the fractal. Per channel, along height
(the left product, Y = A X, X of [H, N*W]) and then along width (Y B, Y of [N*H', W]):

- an unshifted axis of length L is cut into ceil(L / T) tiles (the last one partial);
- a shifted subgroup (shift s > 0) has its block grid moved by s: the block that wraps around
  the border (the last k - s and the first s rows, paper section 3.5) is one extra "corner
  tile" of k rows, and the other L - k rows are cut into tiles as above;
- useful multiply-adds are the nonzero blocks' only (the patch-wise count); everything else
  the cube multiplies, zeros of the tile and fractal padding, is waste.

So 7x7 patches pack two to a 14-row tile (14 of 16 fractal rows used), 4x4 patches four to a
16-row tile, and a channel split or a shift changes the cost through the tiles it adds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from neonas.ops import NeoCell
from neonas.ops.groups import subgroups
from neonas.ops.tiling import DEFAULT_TILE_TARGET, tile_rows


@dataclass(frozen=True)
class Tile:
    """One tile of an axis: input rows, output rows, and its nonzero (block) entries."""

    rows_in: int
    rows_out: int
    nonzero: int  # entries of the [rows_out, rows_in] tile matrix inside its blocks


@dataclass(frozen=True)
class TiledProduct:
    """`count` products [m, k] x [k, n] of the tiled form; `useful` counts nonzero-block MACs."""

    m: int
    k: int
    n: int
    count: int
    useful: int


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _tile(rows_in: int, block_in: int, block_out: int) -> Tile:
    """A tile of `rows_in` rows made of whole blocks and, at the end, one partial block."""
    full, rest = divmod(rows_in, block_in)
    partial_out = _ceil_div(rest * block_out, block_in)
    rows_out = full * block_out + partial_out
    return Tile(rows_in, rows_out, full * block_in * block_out + rest * partial_out)


def axis_tiles(
    length: int, block_in: int, block_out: int, shift: int = 0, target: int = DEFAULT_TILE_TARGET
) -> list[Tile]:
    """The tiles one axis of `length` runs as, for blocks [block_out, block_in] shifted by `shift`."""
    rows = tile_rows(block_in, target)
    tiles: list[Tile] = []
    rest = length
    if shift and length > block_in:
        tiles.append(_tile(block_in, block_in, block_out))  # the wrapped corner block
        rest = length - block_in
    while rest > 0:
        tiles.append(_tile(min(rows, rest), block_in, block_out))
        rest -= rows
    return tiles


def tiled_products(
    cell: NeoCell, height: int, width: int, batch: int = 1, target: int = DEFAULT_TILE_TARGET
) -> list[TiledProduct]:
    """Every cube product of one forward of `cell` on [batch, C, height, width], left then right."""
    products: list[TiledProduct] = []
    out_h, _ = cell.output_size(height, width)
    for sub in subgroups(cell.channels, cell.groups):
        channels = sub.stop - sub.start
        h, w, h_out, w_out = cell.shapes[sub.group]
        for tile in axis_tiles(height, h, h_out, sub.shift, target):  # A [H', H] @ X [H, N*W]
            n = batch * width
            products.append(
                TiledProduct(tile.rows_out, tile.rows_in, n, channels, tile.nonzero * n * channels)
            )
        for tile in axis_tiles(width, w, w_out, sub.shift, target):  # Y [N*H', W] @ B [W, W']
            m = batch * out_h
            products.append(
                TiledProduct(m, tile.rows_in, tile.rows_out, channels, tile.nonzero * m * channels)
            )
    return products


def tiled_weight_elements(cell: NeoCell, height: int, width: int) -> int:
    """Elements of the tile matrices the cube loads: one tile pair per subgroup and tile shape."""
    total = 0
    for sub in subgroups(cell.channels, cell.groups):
        h, w, h_out, w_out = cell.shapes[sub.group]
        shapes = {
            (t.rows_out, t.rows_in) for t in axis_tiles(height, h, h_out, sub.shift)
        } | {(t.rows_in, t.rows_out) for t in axis_tiles(width, w, w_out, sub.shift)}
        total += (sub.stop - sub.start) * sum(a * b for a, b in shapes)
    return total


def neocells(module: object) -> Iterator[NeoCell]:
    """The NeoCells inside `module` (for callers that only hold an nn.Module)."""
    for sub in module.modules():  # type: ignore[attr-defined]
        if isinstance(sub, NeoCell):
            yield sub

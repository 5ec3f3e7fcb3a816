"""The NeoCell as a matrix unit runs it: tiled block-diagonal products, zeros included.

A cube (Ascend's 16x16x16 fp16 fractal) does not run a k x k patch product alone, nor the dense
H x H block-diagonal matrix: it runs tiles of T = `neonas.ops.tiling.tile_rows(k)` rows, each a
T x T block-diagonal product of T / k patches, padded to the fractal. Per channel, along height
(the left product, Y = A X, X of [H, N*W]) and then along width (Y B, Y of [N*H', W]):

- an axis of length L holds ceil(L / k) patches (the last one zero-padded), packed T / k to a
  tile; the last tile runs whole, with zeros where it has no patches (as the `tiled` form
  of neonas.ops does, so the products here multiply exactly NeoCell.macs(form="tiled"));
- a shifted subgroup (shift 0 < s < k) starts its block grid s pixels in: k - s zero rows go in
  front (neonas.ops.functional, as the authors' reference code), so the axis holds
  ceil((L + k - s) / k) patches: the partial corner patches at both ends cost an extra tile
  wherever they push the axis over a tile boundary;
- useful multiply-adds are the nonzero blocks' (the patch form's count, NeoCell.macs(form=
  "patch")); everything else the cube multiplies, zeros of the tile and fractal padding, is waste.

So 7x7 patches pack two to a 14-row tile (14 of 16 fractal rows used), 4x4 patches four to a
16-row tile, and a matrix size, a channel split or a shift changes the cost through the tiles
and fractals it fills.
"""

from __future__ import annotations

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


def axis_tiles(
    length: int, block_in: int, block_out: int, shift: int = 0, target: int = DEFAULT_TILE_TARGET
) -> list[Tile]:
    """The tiles one axis of `length` runs as, for blocks [block_out, block_in] shifted by `shift`."""
    padded = length + (block_in - shift if shift else 0)
    patches = _ceil_div(padded, block_in)
    per_tile = tile_rows(block_in, target) // block_in
    tiles = []
    for first in range(0, patches, per_tile):
        count = min(per_tile, patches - first)  # the last tile runs whole, its rest zeros
        tiles.append(Tile(per_tile * block_in, per_tile * block_out, count * block_in * block_out))
    return tiles


def tiled_products(
    cell: NeoCell, height: int, width: int, batch: int = 1, target: int | None = None
) -> list[TiledProduct]:
    """Every cube product of one forward of `cell` on [batch, C, height, width], left then right."""
    target = target or getattr(cell, "tile", DEFAULT_TILE_TARGET)
    products: list[TiledProduct] = []
    for sub in subgroups(cell.channels, cell.groups):
        channels = sub.stop - sub.start
        h, w, h_out, w_out = cell.shapes[sub.group]
        rows = axis_tiles(height, h, h_out, sub.shift, target)
        cols = axis_tiles(width, w, w_out, sub.shift, target)
        # A [H', H] @ X [H, N*W] over whole tiles; useful columns are the real patches' only
        n = batch * sum(t.rows_in for t in cols)
        n_useful = batch * sum(t.nonzero // w_out for t in cols)
        products += [
            TiledProduct(t.rows_out, t.rows_in, n, channels, t.nonzero * n_useful * channels)
            for t in rows
        ]
        # Y [N*H', W] @ B [W, W']
        m = batch * sum(t.rows_out for t in rows)
        m_useful = batch * sum(t.nonzero // h for t in rows)
        products += [
            TiledProduct(m, t.rows_in, t.rows_out, channels, t.nonzero * m_useful * channels)
            for t in cols
        ]
    return products


def tiled_weight_elements(cell: NeoCell, height: int, width: int) -> int:
    """Elements of the tile matrices the cube loads: one tile pair per subgroup and tile shape."""
    total = 0
    for sub in subgroups(cell.channels, cell.groups):
        h, w, h_out, w_out = cell.shapes[sub.group]
        shapes = {(t.rows_out, t.rows_in) for t in axis_tiles(height, h, h_out, sub.shift)} | {
            (t.rows_in, t.rows_out) for t in axis_tiles(width, w, w_out, sub.shift)
        }
        total += (sub.stop - sub.start) * sum(a * b for a, b in shapes)
    return total

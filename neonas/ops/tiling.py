"""The tile rule of the tiled NeoCell form, shared by the operator and the hardware models.

A matrix engine (Ascend's 16x16 cube, a GPU tensor core) wants products of about 16 or 32 rows;
a NeoCell patch has k rows (k = 2..8 typically). The tiled form packs whole patches into tiles
of T = k * max(1, target // k) rows and runs one T x T block-diagonal product per tile: 7x7
patches pack two to a 14-row tile, 4x4 patches four to a 16-row tile, and a patch larger than
the target is a tile of its own. Every user of the rule (the `tiled` implementation, its MAC
count, the Ascend cost model) calls this function, so they cannot disagree.
"""

from __future__ import annotations

from neonas.errors import UserError

DEFAULT_TILE_TARGET = 16  # rows of Ascend's cube fractal (16x16 fp16)


def tile_rows(block: int, target: int = DEFAULT_TILE_TARGET) -> int:
    """Rows of one tile for patches of `block` rows: the largest multiple of `block` <= target,
    or `block` itself when the patch alone exceeds the target."""
    if block < 1 or target < 1:
        raise UserError(f"bad tile rule inputs block={block}, target={target}: both must be >= 1")
    return block * max(1, target // block)

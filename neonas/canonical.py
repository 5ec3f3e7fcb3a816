"""One canonical form per network: NeoCell groups that differ only by channel order are one network.

Inside a stage every layer but the NeoCell is per-channel (BatchNorm, layer scale) or mixes all
channels alike (the pointwise MLP), and a NeoCell treats each channel on its own with its own
matrix. So what a stage computes, up to a permutation of its channels, is fixed by how many
channels get each (matrix size, shift offset): its *channel signature*. Two stages with equal
widths and signatures are the same network with channels reordered, and train alike:
- `[0.75, 0.25]` with sizes (b, a) and `[0.25, 0.75]` with (a, b);
- two unshifted groups of one size and one group of that size with their summed share;
- two shifted groups of one size k when their shift offsets 0..k-1 get the same channel counts
  as one group would (not always: even_split(48, 5) twice is not even_split(96, 5)).

The canonical form merges groups with the same (size, shift) and orders groups by (size, shift),
but only where that keeps the signature exactly (shares are rounded per group, the last takes
the remainder); otherwise the stage stays as written. `ArchConfig.canonical()` applies it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from neonas.ops.groups import even_split, split_channels


class _Cell(Protocol):
    size: int
    share: float
    shift: bool


Signature = tuple[tuple[tuple[int, int | None], int], ...]


def channel_signature(width: int, cells: Sequence[_Cell]) -> Signature:
    """Channels per (matrix size, shift offset or None): what a stage's NeoCells are, up to order."""
    counts: Counter[tuple[int, int | None]] = Counter()
    for cell, channels in zip(cells, split_channels(width, [c.share for c in cells]), strict=True):
        if cell.shift:
            for offset, part in enumerate(even_split(channels, cell.size)):
                counts[(cell.size, offset)] += part
        else:
            counts[(cell.size, None)] += channels
    return tuple(sorted(counts.items(), key=lambda item: (item[0][0], _offset_key(item[0][1]))))


def canonical_cells(width: int, cells: Sequence[_Cell]) -> list[dict[str, object]]:
    """The cells of a stage of `width` channels in canonical form, as CellSpec field dicts."""
    original = [{"size": c.size, "share": c.share, "shift": c.shift} for c in cells]
    target = channel_signature(width, cells)
    for merge in (True, False):
        candidate = _ordered(original, merge)
        try:
            same = channel_signature(width, [_AsCell(c) for c in candidate]) == target
        except ValueError:  # a merged share that no longer splits the width: not this one
            same = False
        if same:
            return candidate
    return original


def _ordered(cells: list[dict[str, object]], merge: bool) -> list[dict[str, object]]:
    """Cells sorted by (size, shift), those with equal (size, shift) merged when `merge`."""
    ordered = sorted(cells, key=lambda c: (c["size"], c["shift"]))
    if not merge:
        return ordered
    merged: list[dict[str, object]] = []
    for cell in ordered:
        if merged and (merged[-1]["size"], merged[-1]["shift"]) == (cell["size"], cell["shift"]):
            # Shares of a pattern are exact binary fractions in practice; round off float dust.
            total = round(float(merged[-1]["share"]) + float(cell["share"]), 12)
            merged[-1] = {**merged[-1], "share": total}
        else:
            merged.append(dict(cell))
    return merged


class _AsCell:
    """A cell dict seen as a cell (size, share, shift attributes)."""

    def __init__(self, cell: dict[str, object]) -> None:
        self.size = int(cell["size"])  # type: ignore[call-overload]
        self.share = float(cell["share"])  # type: ignore[arg-type]
        self.shift = bool(cell["shift"])


def _offset_key(offset: int | None) -> int:
    return -1 if offset is None else offset

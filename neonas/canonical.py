"""One canonical form per network: NeoCell groups that differ only by channel order are one network.

Inside a stage every layer but the NeoCell is per-channel (BatchNorm, layer scale) or mixes all
channels alike (the pointwise MLP), and a NeoCell treats each channel on its own with its own
matrix. So what a stage computes, up to a permutation of its channels, is fixed by how many
channels get each (matrix size, shift offset): its *channel signature*. Two stages with equal
widths and signatures are the same network with channels reordered, and train alike:
- `[0.75, 0.25]` with sizes (b, a) and `[0.25, 0.75]` with (a, b);
- two unshifted groups of one size and one group of that size with their summed share;
- two shifted groups of one size k when their shift offsets 0..k-1 get the same channel counts
  as one group would (not always: 32 channels split in 3 shifts twice is 20-20-24, 64 channels
  split once is 21-21-22).

The canonical form merges groups with the same (size, shift) and orders groups by (size, shift),
but only where that keeps the signature exactly (shares are rounded per group, the last takes
the remainder); otherwise the stage stays as written. `ArchConfig.canonical()` applies it.
Equal canonical forms are always one network; `network_key` (equal signatures) also finds the
rarer equal networks whose written forms differ in more than order and splits.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from neonas.errors import UserError
from neonas.ops.groups import CellGroup, subgroups


class _Cell(Protocol):
    size: int
    share: float
    shift: bool


Signature = tuple[tuple[tuple[int, int], int], ...]


def channel_signature(width: int, cells: Sequence[_Cell]) -> Signature:
    """Channels per (matrix size, shift offset): what a stage's NeoCells are, up to channel order.

    Offset 0 of a shifted group is the unshifted operator, so an unshifted group counts as 0.
    The split into shifted subgroups is the operator's own (`neonas.ops.groups.subgroups`).
    """
    groups = [CellGroup(size=c.size, share=c.share, shift=c.shift) for c in cells]
    counts: Counter[tuple[int, int]] = Counter()
    for sub in subgroups(width, groups):
        counts[(groups[sub.group].patch[0], sub.shift)] += sub.stop - sub.start
    return tuple(sorted(counts.items()))


def canonical_cells(width: int, cells: Sequence[_Cell]) -> list[dict[str, object]]:
    """The cells of a stage of `width` channels in canonical form, as CellSpec field dicts."""
    original = [{"size": c.size, "share": c.share, "shift": c.shift} for c in cells]
    target = channel_signature(width, cells)
    for merge in (True, False):
        candidate = _ordered(original, merge)
        try:
            same = channel_signature(width, [_AsCell(c) for c in candidate]) == target
        except UserError:  # a merged share that no longer splits the width: not this one
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


def network_key(config: object) -> str:
    """Text equal for two ArchConfigs exactly when they are one network (names aside)."""
    data = config.canonical().model_copy(update={"name": "-"}).to_dict()  # type: ignore[attr-defined]
    for stage, spec in zip(data["stages"], config.stages, strict=True):  # type: ignore[attr-defined]
        stage["cells"] = [list(map(list, channel_signature(spec.width, spec.cells)))]
    return json.dumps(data, sort_keys=True)

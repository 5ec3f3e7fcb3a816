"""Channel groups of a NeoCell: their matrix shapes, channel shares and shifted subgroups."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from neonas.errors import UserError


def _pair(value: int | tuple[int, int], what: str) -> tuple[int, int]:
    """An int or a pair of positive ints as (height, width); UserError otherwise."""
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(pair, tuple | list)
        or len(pair) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair)
    ):
        raise UserError(
            f"bad NeoCell {what} {value!r}: use a positive int or a pair (height, width)"
        )
    return int(pair[0]), int(pair[1])


@dataclass(frozen=True)
class CellGroup:
    """One channel group of a NeoCell: matrix shape, channel share and whether it is shifted.

    Args:
        size: input patch (h, w); an int means square.
        out: output patch (h', w'); None keeps the size. h' < h down-samples, h' > h up-samples,
            any ratio (3 -> 2 included).
        share: fraction of the module's channels that this group gets.
        shift: split the group into k subgroups with block grids shifted by 0..k-1 pixels along
            height and width (paper section 3.5, no wrap-around: see neonas.ops.functional);
            square matrices with out == size. Split as the reference code does: C_g // k
            channels to each of the first k - 1 subgroups, the rest to the last.
    """

    size: int | tuple[int, int]
    out: int | tuple[int, int] | None = None
    share: float = 1.0
    shift: bool = False

    def __post_init__(self) -> None:
        # Lists (as YAML gives them) become tuples, so that groups stay hashable and comparable.
        for name in ("size", "out"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        _pair(self.size, "size")
        if self.out is not None:
            _pair(self.out, "out")
        if (
            isinstance(self.share, bool)
            or not isinstance(self.share, int | float)
            or not 0 < self.share <= 1
        ):
            raise UserError(f"bad NeoCell group share {self.share!r}: use a number in (0, 1]")
        if not isinstance(self.shift, bool):
            raise UserError(f"bad NeoCell group shift {self.shift!r}: use true or false")
        if self.shift:
            h, w = self.patch
            if h != w or self.patch_out != self.patch:
                raise UserError(
                    f"NeoCell group {self.patch}->{self.patch_out} cannot be shifted: "
                    "shifts need square matrices with out == size"
                )

    @property
    def patch(self) -> tuple[int, int]:
        """Input patch (h, w)."""
        return _pair(self.size, "size")

    @property
    def patch_out(self) -> tuple[int, int]:
        """Output patch (h', w')."""
        return self.patch if self.out is None else _pair(self.out, "out")

    @property
    def ratio(self) -> tuple[Fraction, Fraction]:
        """Sampling ratio (h'/h, w'/w) as exact fractions."""
        (h, w), (ho, wo) = self.patch, self.patch_out
        return Fraction(ho, h), Fraction(wo, w)


@dataclass(frozen=True)
class Subgroup:
    """A contiguous channel range of one group that shares one shift."""

    group: int  # index into the module's groups
    start: int  # first channel, module-wide
    stop: int  # one past the last channel, module-wide
    shift: int


def split_channels(channels: int, shares: Sequence[float]) -> list[int]:
    """Channels per group: round(share * channels) each, the last group takes the remainder."""
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise UserError(f"bad channel count {channels!r}: use a positive int")
    shares = list(shares)
    if not shares:
        raise UserError("NeoCell needs at least one channel group")
    if abs(math.fsum(shares) - 1.0) > 1e-6:
        raise UserError(f"channel shares {shares} sum to {math.fsum(shares):g}: they must sum to 1")
    counts = [round(share * channels) for share in shares[:-1]]
    counts.append(channels - sum(counts))
    if min(counts) < 1:
        raise UserError(
            f"channel shares {shares} of {channels} channels give groups of {counts}: "
            "every group needs at least 1 channel; use fewer groups or more channels"
        )
    return counts


def shift_split(total: int, parts: int) -> list[int]:
    """Channels per shifted subgroup, as the authors' reference code splits a group:
    total // parts to each of the first parts - 1, the rest to the last (so that a reference
    checkpoint means the same here). Subgroup i has shift i; empty ones are kept as 0."""
    base = total // parts
    return [base] * (parts - 1) + [total - base * (parts - 1)]


def normalize_groups(groups: Sequence[CellGroup] | CellGroup | int) -> tuple[CellGroup, ...]:
    """The `groups` argument of NeoCell as a tuple of CellGroup (an int k means one k x k group)."""
    if isinstance(groups, CellGroup):
        return (groups,)
    if isinstance(groups, int) and not isinstance(groups, bool):
        return (CellGroup(groups),)
    if isinstance(groups, str) or not isinstance(groups, Sequence) or not groups:
        raise UserError(
            f"bad NeoCell groups {groups!r}: use an int matrix size, a CellGroup or a list of them"
        )
    for group in groups:
        if not isinstance(group, CellGroup):
            raise UserError(f"bad NeoCell group {group!r}: use neonas.ops.CellGroup")
    ratios = {group.ratio for group in groups}
    if len(ratios) > 1:
        raise UserError(
            "all groups of one NeoCell must have the same sampling ratio h'/h and w'/w; got "
            + ", ".join(f"{g.patch}->{g.patch_out}" for g in groups)
        )
    return tuple(groups)


def subgroups(channels: int, groups: Sequence[CellGroup]) -> list[Subgroup]:
    """Channel ranges with their shifts, in channel order: the layout the implementations share."""
    counts = split_channels(channels, [group.share for group in groups])
    layout: list[Subgroup] = []
    start = 0
    for index, (group, count) in enumerate(zip(groups, counts, strict=True)):
        sizes = shift_split(count, group.patch[0]) if group.shift else [count]
        for shift, size in enumerate(sizes):
            if size:  # fewer channels than shifts: the empty subgroups simply do not exist
                layout.append(Subgroup(index, start, start + size, shift))
            start += size
    return layout

"""What a supernet must hold to contain every network of a search space, and which of its
subnets a training step visits (the sandwich rule).

A space's networks differ in depth, width, MLP ratio, NeoCell groups (shares, sizes, shifts)
and transition plan. The supernet keeps the largest of each tensor and the set of every
candidate matrix size and transition ratio, so any network of the space is a slice of it:
the first `depth` blocks of a stage, the first `width` channels, the first `hidden` MLP units,
and the matrices of its own sizes on its own channels.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from neonas.arch import ArchConfig
from neonas.errors import UserError
from neonas.space import IntRange, SearchSpace, StageChoices


def _ints(choice: int | list[int] | IntRange) -> list[int]:
    if isinstance(choice, IntRange):
        return choice.values()
    return [choice] if isinstance(choice, int) else list(choice)


def _mlp_ratios(choices: StageChoices) -> list[float]:
    ratio = choices.mlp_ratio
    return [float(r) for r in ratio] if isinstance(ratio, list) else [float(ratio)]


def hidden_width(width: int, mlp_ratio: float) -> int:
    """MLP units of a block: the rounding NeoNeXtBlock uses."""
    return int(round(width * mlp_ratio))


@dataclass(frozen=True)
class StageCoverage:
    """The largest tensors of one stage and the choices its blocks and transition take."""

    depth: int
    width: int
    hidden: int
    sizes: tuple[int, ...]  # every candidate NeoCell matrix size
    ratios: tuple[tuple[int, int, int, int], ...]  # transition ratios into this stage (none for 0)


@dataclass(frozen=True)
class SpaceCoverage:
    """Everything the supernet of a space is sized by."""

    stages: tuple[StageCoverage, ...]
    in_chans: int
    stem_patch: int
    input_size: int
    layer_scale_init: float | None
    mlp_bias: bool = True
    stem_bias: bool = True
    transition: str = "neocell_first"

    @classmethod
    def of(cls, space: SearchSpace) -> SpaceCoverage:
        """The coverage of a loaded space (the plans the space keeps, not every listed ratio)."""
        stages = []
        for index, choices in enumerate(space.spec.stages):
            widths = _ints(choices.width)
            ratios = _mlp_ratios(choices)
            used = sorted({plan[index - 1] for plan in space.plans}) if index else []
            stages.append(
                StageCoverage(
                    depth=max(_ints(choices.depth)),
                    width=max(widths),
                    hidden=max(hidden_width(w, r) for w in widths for r in ratios),
                    sizes=tuple(sorted(set(choices.cells.size))),
                    ratios=tuple(used),
                )
            )
        smallest = space.smallest()
        return cls(
            stages=tuple(stages),
            in_chans=smallest.in_chans,
            stem_patch=smallest.stem_patch,
            input_size=smallest.input_size,
            layer_scale_init=smallest.layer_scale_init,
            mlp_bias=smallest.mlp_bias,
            stem_bias=smallest.stem_bias,
            transition=smallest.transition,
        )

    def check(self, config: ArchConfig) -> None:
        """UserError naming the first field of `config` that this supernet does not hold."""
        if len(config.stages) != len(self.stages):
            raise UserError(
                f"the config has {len(config.stages)} stages, the supernet {len(self.stages)}"
            )
        for name in ("in_chans", "stem_patch", "mlp_bias", "stem_bias", "transition"):
            if getattr(config, name) != getattr(self, name):
                raise UserError(
                    f"{name}: the config has {getattr(config, name)}, the supernet {getattr(self, name)}"
                )
        if (config.layer_scale_init is None) != (self.layer_scale_init is None):
            raise UserError("layer_scale_init: the config and the supernet differ in layer scale")
        for index, (stage, cover) in enumerate(zip(config.stages, self.stages, strict=True)):
            where = f"stages.{index}"
            for name, value, limit in (
                ("depth", stage.depth, cover.depth),
                ("width", stage.width, cover.width),
                ("mlp_ratio", hidden_width(stage.width, stage.mlp_ratio), cover.hidden),
            ):
                if value > limit:
                    raise UserError(
                        f"{where}.{name}: {value} is more than the supernet holds ({limit})"
                    )
            for cell_index, cell in enumerate(stage.cells):
                if cell.size not in cover.sizes:
                    raise UserError(
                        f"{where}.cells.{cell_index}.size: {cell.size} is not one of the "
                        f"supernet's sizes {list(cover.sizes)}"
                    )
            if stage.sampling is not None and stage.sampling not in cover.ratios:
                raise UserError(
                    f"{where}.sampling: {list(stage.sampling)} is not one of the supernet's "
                    f"transition ratios {[list(r) for r in cover.ratios]}"
                )

    def check_covers(self, other: SpaceCoverage, what: str) -> None:
        """UserError unless every network `other` describes is a subnet of this coverage."""
        if len(other.stages) != len(self.stages):
            raise UserError(
                f"{what} has {len(other.stages)} stages, the supernet {len(self.stages)}"
            )
        for index, (mine, theirs) in enumerate(zip(self.stages, other.stages, strict=True)):
            for name in ("depth", "width", "hidden"):
                if getattr(theirs, name) > getattr(mine, name):
                    raise UserError(
                        f"{what}: stage {index} reaches {name} {getattr(theirs, name)}, "
                        f"the supernet holds {getattr(mine, name)}"
                    )
            for name in ("sizes", "ratios"):
                missing = sorted(set(getattr(theirs, name)) - set(getattr(mine, name)))
                if missing:
                    raise UserError(
                        f"{what}: stage {index} uses {name} {missing} that the supernet lacks"
                    )


def largest_subnet(space: SearchSpace) -> ArchConfig:
    """The teacher of in-place distillation: deepest, widest, widest MLP, largest matrices,
    the share pattern with fewest groups, no shift, and the plan with the largest maps."""
    stages = []
    for index, choices in enumerate(space.spec.stages):
        pattern = min(choices.cells.shares, key=len)
        shift = False if False in choices.cells.shift else choices.cells.shift[0]
        size = max(choices.cells.size)
        stage = {
            "depth": max(_ints(choices.depth)),
            "width": max(_ints(choices.width)),
            "mlp_ratio": max(_mlp_ratios(choices)),
            "cells": [{"size": size, "share": share, "shift": shift} for share in pattern],
        }
        if index:
            stage["sampling"] = list(space.plans[-1][index - 1])
        stages.append(stage)
    return ArchConfig.from_dict(
        {"name": space.name, **space.spec.fixed, "stages": stages}, space.source
    )


def sandwich(space: SearchSpace, rng: random.Random, random_subnets: int) -> list[ArchConfig]:
    """The subnets of one training step: largest first (the teacher), smallest, then random."""
    return [
        largest_subnet(space),
        space.smallest(),
        *(space.sample(rng) for _ in range(random_subnets)),
    ]

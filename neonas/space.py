"""Search spaces as data: a YAML file of per-stage choices that turns into ArchConfigs.

A layer below the supernet and the search, which both use it (README, "Architecture").

A space lists, per stage, the allowed depth, width, MLP ratio and NeoCell groups, and per
transition the allowed sampling ratios; fixed fields (input size, classes, stem, drop path)
are copied into every network. `SearchSpace.suggest(trial)` asks Optuna for one point,
`SearchSpace.sample(rng)` draws one uniformly, `SearchSpace.from_params(params)` replays one.

Why every sampled point builds:
- the transitions are chosen as one *plan* (one ratio per transition) from the plans that the
  loader kept: those whose feature maps stay integral, fit every stage's largest matrix size
  and end on an allowed final map. A plan that cannot build is never offered;
- a stage's channel-share patterns are checked against every width it allows;
- the ArchConfig validator is still the final judge: `from_params` raises UserError with the
  field, and the search records such a point as rejected with that reason.

One network, one point: params that differ only in the order or split of a stage's NeoCell
groups describe one network (neonas/canonical.py). Every way of getting a point returns its
canonical ArchConfig, `params_of` gives the canonical params, and `key` is equal exactly for
equal networks, so a search never pays twice for one network. `count_networks` says how many
points repeat a network (benchmarks/space_duplicates.py: 94 % of the default space's points).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from neonas.arch import ArchConfig
from neonas.canonical import channel_signature, network_key
from neonas.errors import UserError

PLAN_PARAM = "transitions"
_FIXED_FIELDS = {
    "input_size",
    "in_chans",
    "num_classes",
    "stem_patch",
    "drop_path_rate",
    "layer_scale_init",
    "head_dropout",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntRange(_Strict):
    """Integers low, low + step, ..., high (both ends included)."""

    low: int = Field(ge=1)
    high: int = Field(ge=1)
    step: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _reachable_high(self) -> IntRange:
        if self.high < self.low:
            raise ValueError(f"high {self.high} is below low {self.low}")
        if (self.high - self.low) % self.step:
            raise ValueError(
                f"high {self.high} is not low {self.low} plus a multiple of step {self.step}"
            )
        return self

    def values(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))


IntChoice = int | list[int] | IntRange


def _int_values(choice: IntChoice) -> list[int]:
    if isinstance(choice, IntRange):
        return choice.values()
    return [choice] if isinstance(choice, int) else list(choice)


class CellChoices(_Strict):
    """The NeoCell groups of a stage's blocks: share patterns (one per group count), sizes, shift."""

    shares: list[list[float]] = Field(min_length=1)
    size: list[int] = Field(min_length=1)
    shift: list[bool] = Field(default=[False], min_length=1)

    @field_validator("shares")
    @classmethod
    def _patterns_sum_to_one(cls, patterns: list[list[float]]) -> list[list[float]]:
        for pattern in patterns:
            if not pattern or min(pattern) <= 0 or abs(sum(pattern) - 1.0) > 1e-6:
                raise ValueError(f"share pattern {pattern} must be positive numbers that sum to 1")
        return patterns

    @field_validator("size")
    @classmethod
    def _positive_sizes(cls, sizes: list[int]) -> list[int]:
        if min(sizes) < 1:
            raise ValueError("matrix sizes must be >= 1")
        return sizes


class StageChoices(_Strict):
    """What one stage may be; `sampling` lists the transition ratios into it (not for stage 0)."""

    depth: IntChoice
    width: IntChoice
    mlp_ratio: float | list[float] = 4.0
    cells: CellChoices
    sampling: list[list[int]] | None = None

    @field_validator("sampling")
    @classmethod
    def _ratio_shapes(cls, ratios: list[list[int]] | None) -> list[list[int]] | None:
        for ratio in ratios or []:
            if len(ratio) not in (2, 4) or min(ratio) < 1:
                raise ValueError(
                    f"sampling ratio {ratio}: use [h, h'] or [h, w, h', w'] of ints >= 1"
                )
        if ratios is not None and not ratios:
            raise ValueError("sampling: list at least one ratio, e.g. [[2, 1]]")
        return ratios


class SpaceSpec(_Strict):
    """The YAML file, validated."""

    name: str = Field(min_length=1)
    description: str = ""
    channel_multiple: int = Field(default=16, ge=1)
    final_map: list[int] | None = None
    fixed: dict[str, Any] = Field(default_factory=dict)
    stages: list[StageChoices] = Field(min_length=1)

    @field_validator("fixed")
    @classmethod
    def _known_fixed(cls, fixed: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(fixed) - _FIXED_FIELDS)
        if unknown:
            raise ValueError(
                f"unknown field(s) {unknown}; fixed fields are {sorted(_FIXED_FIELDS)}"
            )
        return fixed

    @model_validator(mode="after")
    def _stage_rules(self) -> SpaceSpec:
        if self.stages[0].sampling is not None:
            raise ValueError("stages.0.sampling: the first stage has no transition, leave it out")
        for index, stage in enumerate(self.stages):
            if index and stage.sampling is None:
                raise ValueError(f"stages.{index}.sampling: missing, e.g. [[2, 1], [1, 1]]")
            for width in _int_values(stage.width):
                if width % self.channel_multiple:
                    raise ValueError(
                        f"stages.{index}.width: {width} is not a multiple of channel_multiple "
                        f"{self.channel_multiple}"
                    )
            for depth in _int_values(stage.depth):
                if depth < 1:
                    raise ValueError(f"stages.{index}.depth: {depth} must be >= 1")
        return self


class _Chooser(Protocol):
    """Where the values of a point come from: Optuna, a random generator, or recorded params."""

    def categorical(self, name: str, choices: Sequence[Any]) -> Any: ...

    def integer(self, name: str, values: IntRange) -> int: ...


class _OptunaChooser:
    def __init__(self, trial: Any) -> None:
        self.trial = trial

    def categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self.trial.suggest_categorical(name, list(choices))

    def integer(self, name: str, values: IntRange) -> int:
        return self.trial.suggest_int(name, values.low, values.high, step=values.step)


class _RandomChooser:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self.rng.choice(list(choices))

    def integer(self, name: str, values: IntRange) -> int:
        return self.rng.randrange(values.low, values.high + 1, values.step)


class _ParamsChooser:
    """Replays recorded values; a value the space does not allow is a UserError."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._get(name, list(choices))

    def integer(self, name: str, values: IntRange) -> int:
        return self._get(name, values.values())

    def _get(self, name: str, allowed: list[Any]) -> Any:
        if name not in self.params:
            raise UserError(f"parameter {name!r} is missing")
        value = self.params[name]
        if value not in allowed or type(value) is not type(allowed[0]):
            raise UserError(f"parameter {name}={value!r} is not one of {allowed}")
        return value


class _BalancedChooser:
    """Draws several points so that each parameter's values come up equally often: a value is
    drawn from a shuffled round of all the parameter's values, a new round once one is used up."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.rounds: dict[str, list[Any]] = {}

    def categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._next(name, list(choices))

    def integer(self, name: str, values: IntRange) -> int:
        return self._next(name, values.values())

    def _next(self, name: str, values: list[Any]) -> Any:
        left = self.rounds.get(name)
        if not left:
            left = self.rounds[name] = self.rng.sample(values, len(values))
        return left.pop()


class _SmallestChooser:
    """The cheapest point: fewest, narrowest, smallest (plans are listed cheapest first)."""

    def categorical(self, name: str, choices: Sequence[Any]) -> Any:
        if isinstance(choices[0], str):
            return choices[0]
        return min(choices)

    def integer(self, name: str, values: IntRange) -> int:
        return values.low


def ratio_text(ratio: Sequence[int]) -> str:
    """(2, 2, 1, 1) -> '2:1'; a non-square ratio -> '2x3:1x2'."""
    h, w, h_out, w_out = _square(ratio)
    return f"{h}:{h_out}" if (h, h_out) == (w, w_out) else f"{h}x{w}:{h_out}x{w_out}"


def shares_text(shares: Sequence[float]) -> str:
    """[0.25, 0.75] -> '0.25,0.75': Optuna choices must be plain scalars."""
    return ",".join(f"{share:g}" for share in shares)


def _square(ratio: Sequence[int]) -> tuple[int, int, int, int]:
    return (ratio[0], ratio[0], ratio[1], ratio[1]) if len(ratio) == 2 else tuple(ratio)  # type: ignore[return-value]


class SearchSpace:
    """A loaded, checked search space: turns Optuna trials, random draws or params into ArchConfigs."""

    def __init__(self, spec: SpaceSpec, text: str, source: str) -> None:
        self.spec = spec
        self.text = text  # the YAML as loaded, kept in run folders so a resume uses the same space
        self.source = source
        self._check_shares()
        self.plans = self._valid_plans()
        self.smallest()  # validates the fixed fields through ArchConfig, with the field in the error

    @property
    def name(self) -> str:
        return self.spec.name

    # --- the four ways to get a point ---------------------------------------------------------

    def suggest(self, trial: Any) -> ArchConfig:
        """The network an Optuna trial (define-by-run) proposes, in canonical form."""
        return self.canonical(self._walk(_OptunaChooser(trial)))

    def sample(self, rng: random.Random) -> ArchConfig:
        """A drawn network (each choice uniform), in canonical form, reproducible from `rng`."""
        return self.canonical(self._walk(_RandomChooser(rng)))

    def sample_balanced(self, rng: random.Random, count: int) -> list[ArchConfig]:
        """`count` drawn networks in which every parameter takes each of its values equally often
        (within one, per parameter; FairNAS's strict fairness when `count` is a multiple of every
        parameter's number of values), reproducible from `rng`. A parameter that exists only in
        some networks (a second NeoCell group's size) is balanced over the networks that have it."""
        chooser = _BalancedChooser(rng)
        return [self.canonical(self._walk(chooser)) for _ in range(count)]

    def from_params(self, params: dict[str, Any]) -> ArchConfig:
        """The network recorded Optuna params describe (canonical); UserError if not in the space."""
        return self.canonical(self._walk(_ParamsChooser(params)))

    def smallest(self) -> ArchConfig:
        """The cheapest network of the space (for a quick check that a budget can be met)."""
        return self.canonical(self._walk(_SmallestChooser()))

    def canonical(self, config: ArchConfig) -> ArchConfig:
        """`config.canonical()` when that is a point of this space, else `config` (names kept).

        Params that differ only in the order or split of NeoCell groups give one network; every
        way of getting a point returns this form, so equal networks are equal ArchConfigs and
        `key` tells a search that a proposal was already paid for.
        """
        canonical = config.canonical()
        if canonical == config or self._params_as_written(canonical) is None:
            return config
        return canonical

    def key(self, config: ArchConfig) -> str:
        """Text equal for two configs exactly when they are one network: the duplicate check."""
        return network_key(config)

    def params_of(self, config: ArchConfig) -> dict[str, Any] | None:
        """The canonical params of `config` in this space, or None if it is not a point of it."""
        return self._params_as_written(self.canonical(config))

    def _params_as_written(self, config: ArchConfig) -> dict[str, Any] | None:
        params: dict[str, Any] = {}
        plan = plan_of(config)
        if len(config.stages) != len(self.spec.stages) or plan not in self.plan_names:
            return None
        if len(self.plan_names) > 1:
            params[PLAN_PARAM] = plan
        for index, (stage, choices) in enumerate(zip(config.stages, self.spec.stages, strict=True)):
            prefix = f"s{index}"
            for key, value, allowed in (
                ("depth", stage.depth, _int_values(choices.depth)),
                ("width", stage.width, _int_values(choices.width)),
                ("mlp_ratio", stage.mlp_ratio, self._mlp_ratios(choices)),
                ("shares", shares_text([c.share for c in stage.cells]), self._share_names(choices)),
            ):
                if value not in allowed:
                    return None
                if len(allowed) > 1:
                    params[f"{prefix}.{key}"] = value
            for cell_index, cell in enumerate(stage.cells):
                for key, value, allowed in (
                    ("size", cell.size, choices.cells.size),
                    ("shift", cell.shift, choices.cells.shift),
                ):
                    if value not in allowed:
                        return None
                    if len(allowed) > 1:
                        params[f"{prefix}.c{cell_index}.{key}"] = value
        try:
            rebuilt = self._walk(_ParamsChooser(params))
        except UserError:
            return None
        same = rebuilt.model_copy(update={"name": config.name}) == config
        return params if same else None

    def contains(self, config: ArchConfig) -> bool:
        """Whether `config` (its name aside) is a point of this space."""
        return self.params_of(config) is not None

    # --- internals ------------------------------------------------------------------------------

    @cached_property
    def plan_names(self) -> list[str]:
        return [ratio_plan_text(plan) for plan in self.plans]

    def _walk(self, chooser: _Chooser) -> ArchConfig:
        plan = self.plans[0]
        if len(self.plans) > 1:
            plan = self.plans[
                self.plan_names.index(chooser.categorical(PLAN_PARAM, self.plan_names))
            ]
        stages = []
        for index, choices in enumerate(self.spec.stages):
            prefix = f"s{index}"
            shares = self._choose(chooser, f"{prefix}.shares", self._share_names(choices))
            cells = []
            for cell_index, share in enumerate(float(s) for s in shares.split(",")):
                size = self._choose(chooser, f"{prefix}.c{cell_index}.size", choices.cells.size)
                shift = self._choose(chooser, f"{prefix}.c{cell_index}.shift", choices.cells.shift)
                cells.append({"size": size, "share": share, "shift": shift})
            stage = {
                "depth": self._choose_int(chooser, f"{prefix}.depth", choices.depth),
                "width": self._choose_int(chooser, f"{prefix}.width", choices.width),
                "mlp_ratio": self._choose(
                    chooser, f"{prefix}.mlp_ratio", self._mlp_ratios(choices)
                ),
                "cells": cells,
            }
            if index:
                stage["sampling"] = list(plan[index - 1])
            stages.append(stage)
        return ArchConfig.from_dict(
            {"name": self.name, **self.spec.fixed, "stages": stages}, self.source
        )

    @staticmethod
    def _choose(chooser: _Chooser, name: str, choices: Sequence[Any]) -> Any:
        # A single allowed value is no parameter: it stays out of the study and the dashboard.
        return choices[0] if len(choices) == 1 else chooser.categorical(name, choices)

    @staticmethod
    def _choose_int(chooser: _Chooser, name: str, choice: IntChoice) -> int:
        if isinstance(choice, IntRange):
            return choice.low if choice.low == choice.high else chooser.integer(name, choice)
        values = _int_values(choice)
        return values[0] if len(values) == 1 else chooser.categorical(name, values)

    @staticmethod
    def _mlp_ratios(choices: StageChoices) -> list[float]:
        ratios = choices.mlp_ratio if isinstance(choices.mlp_ratio, list) else [choices.mlp_ratio]
        return [float(r) for r in ratios]

    @staticmethod
    def _share_names(choices: StageChoices) -> list[str]:
        return [shares_text(pattern) for pattern in choices.cells.shares]

    def _check_shares(self) -> None:
        from neonas.ops import split_channels

        for index, stage in enumerate(self.spec.stages):
            for pattern in stage.cells.shares:
                for width in _int_values(stage.width):
                    try:
                        split_channels(width, pattern)
                    except UserError as err:
                        raise UserError(
                            f"{self.source}: stages.{index}.cells.shares: {err}"
                        ) from None

    def _valid_plans(self) -> list[tuple[tuple[int, int, int, int], ...]]:
        """Every combination of transition ratios that builds, cheapest (smallest maps) first."""
        fields = ArchConfig.model_fields
        input_size = int(self.spec.fixed.get("input_size", fields["input_size"].default))
        stem = int(self.spec.fixed.get("stem_patch", fields["stem_patch"].default))
        if stem < 1 or input_size % stem:
            raise UserError(
                f"{self.source}: fixed.input_size {input_size} is not a multiple of stem_patch {stem}"
            )
        start = (Fraction(input_size // stem), Fraction(input_size // stem))
        options = [[_square(r) for r in stage.sampling or []] for stage in self.spec.stages[1:]]
        plans, costs = [], []
        for plan in itertools.product(*options):
            maps = [start]
            for h, w, h_out, w_out in plan:
                maps.append((maps[-1][0] * h_out / h, maps[-1][1] * w_out / w))
            if not all(m.denominator == 1 for pair in maps for m in pair):
                continue
            fits = all(
                min(pair) >= max(stage.cells.size)
                for pair, stage in zip(maps, self.spec.stages, strict=True)
            )
            final_ok = self.spec.final_map is None or all(
                int(m) in self.spec.final_map for m in maps[-1]
            )
            if fits and final_ok:
                plans.append(tuple(plan))
                costs.append(sum(h * w for h, w in maps))
        if not plans:
            raise UserError(
                f"{self.source}: no combination of the transitions' sampling ratios keeps every "
                f"feature map integral, at least as large as its stage's largest matrix size"
                + (f" and ending on final_map {self.spec.final_map}" if self.spec.final_map else "")
                + f" (the map after the stem is {input_size // stem}x{input_size // stem})"
            )
        order = sorted(range(len(plans)), key=lambda i: (costs[i], i))
        return [plans[i] for i in order]

    def count_networks(self) -> dict[str, Any]:
        """How many points the space's params describe, and how many distinct networks they are.

        Exact, by enumeration per stage: a stage's NeoCell choices (share pattern, then size and
        shift per group) are counted at every width and grouped by channel signature; depth,
        MLP ratio and the plan multiply both counts alike.
        """
        points = networks = len(self.plans)
        stages = []
        for choices in self.spec.stages:
            items = list(itertools.product(choices.cells.size, choices.cells.shift))
            layouts = [
                [
                    _Cell(size, share, shift)
                    for share, (size, shift) in zip(pattern, combo, strict=True)
                ]
                for pattern in choices.cells.shares
                for combo in itertools.product(items, repeat=len(pattern))
            ]
            widths = _int_values(choices.width)
            distinct = sum(
                len({channel_signature(width, cells) for cells in layouts}) for width in widths
            )
            others = len(_int_values(choices.depth)) * len(self._mlp_ratios(choices))
            stages.append({"cell_choices": len(layouts) * len(widths), "distinct": distinct})
            points *= others * len(layouts) * len(widths)
            networks *= others * distinct
        return {"points": points, "networks": networks, "stages": stages}

    def with_plan(self, plan_name: str) -> SearchSpace:
        """This space with one transition plan (`plan_names`): the part a few-shot
        sub-supernet covers. Its YAML lists that plan's ratio for each transition."""
        if plan_name not in self.plan_names:
            raise UserError(
                f"{plan_name!r} is not a transition plan of space {self.name!r} "
                f"({', '.join(self.plan_names)})"
            )
        plan = self.plans[self.plan_names.index(plan_name)]
        data = yaml.safe_load(self.text)
        for stage, ratio in zip(data["stages"][1:], plan, strict=True):
            stage["sampling"] = [list(ratio)]
        text = yaml.safe_dump(data, sort_keys=False)
        return space_from_yaml(text, f"{self.source}, plan {plan_name}")

    def describe(self) -> dict[str, Any]:
        """Counts that say how large the space is (for run.json and the docs)."""
        return {
            "name": self.name,
            "source": self.source,
            "stages": len(self.spec.stages),
            "plans": self.plan_names,
        }


@dataclass(frozen=True)
class _Cell:
    size: int
    share: float
    shift: bool


def ratio_plan_text(plan: Sequence[Sequence[int] | None]) -> str:
    """One transition plan as text, e.g. '2:1 2:1 2:1' ('-' for a network with one stage)."""
    return " ".join(ratio_text(ratio) for ratio in plan if ratio is not None) or "-"


def plan_of(config: ArchConfig) -> str:
    """A network's transition plan (its stages' sampling ratios after the first), as
    SearchSpace.plan_names writes it: the choice that splits a few-shot supernet."""
    return ratio_plan_text(tuple(stage.sampling for stage in config.stages[1:]))


def available_spaces() -> list[str]:
    """Names of the spaces shipped in the `search_spaces` package."""
    folder = resources.files("search_spaces")
    return sorted(
        item.name.removesuffix(".yaml") for item in folder.iterdir() if item.name.endswith(".yaml")
    )


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A shipped space by name ('neonext', 'tiny') or a YAML file path; UserError if invalid."""
    path = Path(name_or_path)
    if path.is_file():
        return space_from_yaml(path.read_text(), str(path))
    if str(name_or_path).endswith((".yaml", ".yml")) or "/" in str(name_or_path):
        raise UserError(f"search space file {name_or_path} does not exist")
    packaged = resources.files("search_spaces").joinpath(f"{name_or_path}.yaml")
    if not packaged.is_file():
        raise UserError(
            f"unknown search space {str(name_or_path)!r}: use one of {', '.join(available_spaces())} "
            "or a path to a YAML file"
        )
    return space_from_yaml(packaged.read_text(), f"search_spaces/{name_or_path}.yaml")


def space_from_yaml(text: str, source: str = "search space") -> SearchSpace:
    """Parse and check a space from YAML text (safe_load: spaces are data)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise UserError(f"{source}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping with name, fixed and stages")
    try:
        spec = SpaceSpec.model_validate(data)
    except ValidationError as err:
        raise UserError(f"{source}: {_first_error(err)}") from None
    return SearchSpace(spec, text, source)


def _first_error(err: ValidationError) -> str:
    """One line: the dotted field path and what is wrong with it."""
    first = err.errors()[0]
    # Union members (int | list | IntRange) add their type names to the path; keep the fields.
    location = ".".join(
        str(part)
        for part in first["loc"]
        if not str(part).startswith("function-")
        and str(part) not in {"int", "list[int]", "IntRange", "float", "list[float]"}
    )
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field (check the spelling; see search_spaces/neonext.yaml)"
    return f"{location}: {message}" if location else message

"""ArchConfig: the one exact, serialisable description of a NeoCell network.

The search produces ArchConfigs, `export` writes them, `train` and `profile` read them, and
`neonas.models.build_model` turns one into a torch module. It is plain data: immutable, typed,
validated on construction, and it round-trips exactly through YAML and JSON.

Layout of a network (NeoNeXt, paper section 4):
    stem      space-to-depth (patch p) -> pointwise -> BatchNorm       H -> H/p, 3 -> stages[0].width
    stage i   [transition] + depth x block                             width_i, feature map H_i
    head      global average pool -> LayerNorm -> dropout -> linear
A transition into stage i > 0 is NeoCell(h, w -> h', w') -> BN -> GELU -> pointwise -> BN -> GELU
(`transition: pointwise_first`: pointwise -> NeoCell -> BN, as the authors' code builds it);
its `sampling` (h, w, h', w') sets the spatial ratio (2, 2, 1, 1 halves the map; 3, 3, 2, 2 scales
by 2/3; 1, 1, 1, 1 only changes the width). On a map the ratio does not divide, `rounding` says
whether the size rounds up (neonas) or down (the authors' code: the `*_ref` networks).
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from neonas.errors import UserError

SCHEMA_VERSION = 1
SHARE_TOLERANCE = 1e-6


class _Frozen(BaseModel):
    """Immutable, strict (no silent type coercion), and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")


class CellSpec(_Frozen):
    """One channel group of the NeoCells inside a stage's blocks: square k x k matrices."""

    size: int = Field(ge=1, le=64, description="matrix size k (patch k x k -> k x k)")
    share: float = Field(
        default=1.0, gt=0.0, le=1.0, description="fraction of the stage's channels"
    )
    shift: bool = Field(default=False, description="subgroups with block grids shifted by 0..k-1")


class StageSpec(_Frozen):
    """One stage: an optional transition into it, then `depth` identical NeoNeXt blocks."""

    depth: int = Field(ge=1, le=64)
    width: int = Field(ge=1, le=8192)
    mlp_ratio: float = Field(default=4.0, gt=0.0, le=16.0)
    cells: tuple[CellSpec, ...] = Field(min_length=1)
    # (h, w, h', w') of the transition NeoCell into this stage; None only for the first stage.
    sampling: tuple[int, int, int, int] | None = None

    @field_validator("sampling", mode="before")
    @classmethod
    def _square_shorthand(cls, value: Any) -> Any:
        """`[2, 1]` is shorthand for the square ratio `[2, 2, 1, 1]`."""
        if isinstance(value, list | tuple) and len(value) == 2:
            return (value[0], value[0], value[1], value[1])
        if isinstance(value, list):
            return tuple(value)
        return value

    @field_validator("sampling")
    @classmethod
    def _positive_sampling(cls, value: tuple[int, int, int, int] | None) -> Any:
        if value is not None and min(value) < 1:
            raise ValueError("every entry of sampling (h, w, h', w') must be >= 1")
        return value

    @model_validator(mode="after")
    def _shares_sum_to_one(self) -> StageSpec:
        total = sum(cell.share for cell in self.cells)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise ValueError(f"the shares of cells sum to {total:g}, they must sum to 1")
        return self


class ArchConfig(_Frozen):
    """A whole network. Build it with `neonas.models.build_model(config)`."""

    schema_version: int = SCHEMA_VERSION
    name: str = Field(default="neonext", min_length=1)
    input_size: int = Field(default=224, ge=1)
    in_chans: int = Field(default=3, ge=1)
    num_classes: int = Field(default=1000, ge=0)
    stem_patch: int = Field(default=4, ge=1)
    stages: tuple[StageSpec, ...] = Field(min_length=1)
    drop_path_rate: float = Field(default=0.1, ge=0.0, lt=1.0)
    layer_scale_init: float | None = Field(default=1e-6, gt=0.0)
    head_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    # Where the authors' code differs from the paper's text (docs/archconfig.md); the defaults
    # are the paper's reading, the `*_ref` variants set the code's.
    mlp_bias: bool = Field(default=True, description="biases in the blocks' pointwise layers")
    stem_bias: bool = Field(default=True, description="a bias in the stem's pointwise layer")
    transition: Literal["neocell_first", "pointwise_first"] = Field(
        default="neocell_first",
        description="neocell_first: NeoCell-BN-GELU-pointwise-BN-GELU (paper); "
        "pointwise_first: pointwise-NeoCell-BN (authors' code)",
    )
    rounding: Literal["ceil", "floor"] = Field(
        default="ceil",
        description="output size of a transition on a map its patch does not divide: "
        "ceil (neonas) or floor (authors' code); see docs/operator.md",
    )

    @model_validator(mode="after")
    def _fits_feature_maps(self) -> ArchConfig:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} is not supported (this neonas reads {SCHEMA_VERSION})"
            )
        if self.input_size % self.stem_patch:
            raise ValueError(
                f"input_size {self.input_size} is not a multiple of stem_patch {self.stem_patch}"
            )
        if self.stages[0].sampling is not None:
            raise ValueError("stages.0.sampling: the first stage has no transition, leave it out")
        for index, stage in enumerate(self.stages[1:], start=1):
            if stage.sampling is None:
                raise ValueError(f"stages.{index}.sampling: missing, e.g. [2, 1] to halve the map")
        sizes = self.feature_sizes()
        for index, (stage, size) in enumerate(zip(self.stages, sizes, strict=True)):
            for cell_index, cell in enumerate(stage.cells):
                if cell.size > min(size):
                    raise ValueError(
                        f"stages.{index}.cells.{cell_index}.size: a {cell.size}x{cell.size} matrix is "
                        f"larger than the {size[0]}x{size[1]} feature map of stage {index}"
                    )
            _check_channel_split(stage, index)
        return self

    def feature_sizes(self) -> list[tuple[int, int]]:
        """Feature map (H, W) seen by the blocks of each stage, as the network computes it: a
        ratio that does not divide the map rounds by `rounding` (the transition NeoCell's rule,
        neonas.ops.functional.output_length); raises if a map would be empty."""
        round_to_int = math.ceil if self.rounding == "ceil" else math.floor
        height = width = self.input_size // self.stem_patch
        sizes = []
        for index, stage in enumerate(self.stages):
            if stage.sampling is not None:
                h, w, h_out, w_out = stage.sampling
                exact_h, exact_w = Fraction(height * h_out, h), Fraction(width * w_out, w)
                new_h, new_w = round_to_int(exact_h), round_to_int(exact_w)
                if new_h < 1 or new_w < 1:
                    raise ValueError(
                        f"stages.{index}.sampling: {h}x{w} -> {h_out}x{w_out} with rounding "
                        f"{self.rounding} turns the {height}x{width} map into {new_h}x{new_w}; "
                        "use a larger input_size"
                    )
                height, width = new_h, new_w
            sizes.append((height, width))
        return sizes

    def canonical(self) -> ArchConfig:
        """The same network in its one canonical form (see neonas/canonical.py).

        NeoCell groups that differ only by channel order, or that split one group in two, are one
        network: `a.canonical() == b.canonical()` says whether `a` and `b` are (names aside).
        """
        from neonas.canonical import canonical_cells

        stages = tuple(
            stage.model_copy(
                update={
                    "cells": tuple(
                        CellSpec(**cell) for cell in canonical_cells(stage.width, stage.cells)
                    )
                }
            )
            for stage in self.stages
        )
        return self.model_copy(update={"stages": stages})

    # --- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of lists and scalars, keys in declaration order."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: Any, source: str = "config") -> ArchConfig:
        """Validate plain data; any problem is one UserError line naming the field."""
        if not isinstance(data, dict):
            raise UserError(
                f"{source}: expected a mapping of ArchConfig fields, got {type(data).__name__}"
            )
        try:
            return cls.model_validate(_lists_to_tuples(data))
        except ValidationError as err:
            raise UserError(f"{source}: {first_error(err)}") from None

    def to_yaml(self) -> str:
        """YAML text with stable key order."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    @classmethod
    def from_yaml(cls, path_or_text: str | Path) -> ArchConfig:
        """Load from a YAML file path or YAML text (safe_load: configs are data)."""
        text, source = _read_text(path_or_text)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise UserError(f"{source}: not valid YAML ({str(err).splitlines()[0]})") from None
        return cls.from_dict(data, source)

    def to_json(self) -> str:
        """JSON text with stable key order."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> ArchConfig:
        """Load from a JSON file path or JSON text."""
        text, source = _read_text(path_or_text)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"{source}: not valid JSON ({err})") from None
        return cls.from_dict(data, source)

    @classmethod
    def load(cls, path: str | Path) -> ArchConfig:
        """Load a `.json` file as JSON and anything else as YAML."""
        return cls.from_json(path) if str(path).endswith(".json") else cls.from_yaml(path)

    def save(self, path: str | Path) -> Path:
        """Write atomically (temp file + rename) as YAML, or JSON for a `.json` path."""
        from neonas.io import write_text_atomic

        text = self.to_json() if str(path).endswith(".json") else self.to_yaml()
        return write_text_atomic(path, text)


def _check_channel_split(stage: StageSpec, index: int) -> None:
    from neonas.ops import split_channels

    try:
        split_channels(stage.width, [cell.share for cell in stage.cells])
    except UserError as err:
        raise ValueError(f"stages.{index}.cells: {err}") from None


def _read_text(path_or_text: str | Path) -> tuple[str, str]:
    """A Path or an existing file name is read; other strings are the text itself."""
    if isinstance(path_or_text, Path) or (
        isinstance(path_or_text, str)
        and "\n" not in path_or_text
        and len(path_or_text) < 4096
        and (path_or_text.endswith((".yaml", ".yml", ".json")) or Path(path_or_text).is_file())
    ):
        path = Path(path_or_text)
        if not path.is_file():
            raise UserError(f"config file {path} does not exist")
        return path.read_text(), str(path)
    return str(path_or_text), "config"


def _lists_to_tuples(value: Any) -> Any:
    """YAML and JSON give lists; the strict schema stores sequences as tuples."""
    if isinstance(value, dict):
        return {key: _lists_to_tuples(item) for key, item in value.items()}
    if isinstance(value, list):
        return tuple(_lists_to_tuples(item) for item in value)
    return value


def first_error(err: ValidationError) -> str:
    """One line: the dotted field path and what is wrong with it (for a UserError)."""
    first = err.errors()[0]
    location = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function-"))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field (check the spelling; see docs/archconfig.md or configs/)"
    extra = f" ({len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{location}: {message}{extra}" if location else f"{message}{extra}"

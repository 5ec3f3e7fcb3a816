"""Network segments: a network as a chain of repeated units, each distinct unit evaluated once.

NeoNeXt (and timm's ConvNeXt, whose layout it follows) run `stem`, then every stage's
`downsample` and `blocks`, then `head`. The blocks of a stage are identical, and networks
sampled from one search space share most of their units; evaluating a unit once per
(structure, input shape) and reusing the result is what makes scoring hundreds of
candidates a minute possible (FBNet and nn-Meter build their latency tables the same way).
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from torch import nn

T = TypeVar("T")
Shape = tuple[int, ...]

# Top-level children a unit-wise run understands; anything else means a forward we do not know.
_KNOWN_CHILDREN = ("stem", "stages", "norm_pre", "head")
# Modules that do nothing in eval mode. Drop path rates grow from block to block (and a rate
# of 0 often builds an Identity instead): keeping them in the key would make identical blocks
# look distinct. Rates inside other modules' settings are masked for the same reason.
_INERT_IN_EVAL = {"Identity", "DropPath", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d"}
_DROP_RATE = re.compile(r"\b(drop_prob|drop_rate|p)=[0-9.eE+-]+")


@dataclass(frozen=True)
class Unit(Generic[T]):
    """One unit of a unit-wise run: where it sits, its key, its input shape and its result."""

    path: str
    key: str
    input_shape: Shape
    value: T


class UnitCache(OrderedDict):
    """Unit results shared between calls, bounded: the least recently used go first."""

    def __init__(self, capacity: int = 4096) -> None:
        super().__init__()
        self.capacity = capacity

    def __getitem__(self, key: str):
        self.move_to_end(key)
        return super().__getitem__(key)

    def __setitem__(self, key: str, value) -> None:
        super().__setitem__(key, value)
        if len(self) > self.capacity:
            self.popitem(last=False)


def model_units(model: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The modules a NeoNeXt/ConvNeXt-shaped model runs one after another, or None if not that shape."""
    children = dict(model.named_children())
    stages = children.get("stages")
    if (
        "stem" not in children
        or "head" not in children
        or not isinstance(stages, nn.Sequential)
        or set(children) - set(_KNOWN_CHILDREN)
    ):
        return None
    units: list[tuple[str, nn.Module]] = [("stem", children["stem"])]
    for i, stage in enumerate(stages):
        parts = dict(stage.named_children())
        if set(parts) != {"downsample", "blocks"} or not isinstance(parts["blocks"], nn.Sequential):
            return None
        units.append((f"stages.{i}.downsample", parts["downsample"]))
        units += [(f"stages.{i}.blocks.{j}", block) for j, block in enumerate(parts["blocks"])]
    if "norm_pre" in children:
        units.append(("norm_pre", children["norm_pre"]))
    units.append(("head", children["head"]))
    # Every parameter must live in some unit, or the forward does more than the chain shows.
    covered = sum(p.numel() for _, unit in units for p in unit.parameters())
    if covered != sum(p.numel() for p in model.parameters()):
        return None
    return [(path, unit) for path, unit in units if not isinstance(unit, nn.Identity)]


def structure_key(module: nn.Module) -> str:
    """A stable key of what a module computes in eval mode: its layers, settings and shapes."""
    lines = []
    for name, sub in module.named_modules():
        if type(sub).__name__ in _INERT_IN_EVAL:
            continue
        shapes = [
            f"{n}{tuple(t.shape)}"
            for n, t in (*sub.named_parameters(recurse=False), *sub.named_buffers(recurse=False))
        ]
        settings = _DROP_RATE.sub(r"\1=*", sub.extra_repr())
        lines.append(f"{name}:{type(sub).__qualname__}({settings}){','.join(shapes)}")
    return hashlib.sha1("\n".join(lines).encode()).hexdigest()[:16]


def unit_key(module: nn.Module, input_shape: Shape) -> str:
    """Key of one unit at one input shape, e.g. '3f2a9c0e1b2d4f5a@1x96x56x56'."""
    return f"{structure_key(module)}@{'x'.join(map(str, input_shape))}"


def walk_units(
    model: nn.Module,
    input_shape: Shape,
    evaluate: Callable[[nn.Module, Shape], tuple[T, Shape]],
    cache: MutableMapping[str, tuple[T, Shape]] | None = None,
) -> list[Unit[T]] | None:
    """Evaluate a unit-shaped model unit by unit, each distinct (structure, shape) once.

    `evaluate(unit, input_shape)` returns its result and the unit's output shape; `cache`
    (unit key -> both) may outlive the call to share units between networks. Returns None
    for models without the unit layout, so callers fall back to the whole model.
    """
    units = model_units(model)
    if units is None:
        return None
    cache = {} if cache is None else cache
    shape = tuple(input_shape)
    results: list[Unit[T]] = []
    for path, module in units:
        key = unit_key(module, shape)
        if key not in cache:
            cache[key] = evaluate(module, shape)
        value, out_shape = cache[key]
        results.append(Unit(path, key, shape, value))
        shape = tuple(out_shape)
    return results


def stage_of(module_name: str) -> str:
    """The row a module belongs to in a per-stage table: 'stages.2.blocks.0.fc1' -> 'stages.2'."""
    parts = module_name.split(".")
    if not module_name:
        return "(top)"
    # timm and NeoNeXt keep stages in a container named `stages` (`layers` in some families).
    if parts[0] in ("stages", "layers") and len(parts) > 1 and parts[1].isdigit():
        return ".".join(parts[:2])
    return parts[0]

"""Hardware targets by name: what `--hw` accepts and what the search asks latency from.

A target is registered by one module in `evaluators/targets/` (found automatically), so adding
hardware means adding that module and nothing else. Names may carry an argument after a
colon: `cuda:1`, `npu:0`, `lut:tables/cpu.json`.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from torch import nn

from evaluators.latency.measure import MeasureSettings
from evaluators.latency.result import LatencyResult
from neonas.errors import UserError


@dataclass(frozen=True)
class TargetOptions:
    """Settings a target may use: CPU threads, CUDA graphs, measuring through Ray, timing.

    `remote`: measure on the Ray cluster's measuring station for the device, one measurement
    at a time (evaluators.latency.station); a sweep sets it for its trials (`in_sweep`).
    """

    threads: int | None = None
    cuda_graphs: bool = False
    remote: bool = False
    measure: MeasureSettings | None = None
    in_sweep: bool = False  # remote, in a sweep's trial: the driver owns (and reopens) stations


# Options for targets made without explicit options: what a sweep's trials get (see in_sweep).
_default_options: ContextVar[TargetOptions | None] = ContextVar("target_options", default=None)


@contextmanager
def default_target_options(options: TargetOptions) -> Iterator[None]:
    """`get_hw(hw)` without options uses `options` inside this block (this thread/context)."""
    token = _default_options.set(options)
    try:
        yield
    finally:
        _default_options.reset(token)


class HardwareTarget(ABC):
    """Where latency comes from for one `--hw` value."""

    name: str
    source: str  # "measured" or "predicted": what `latency` returns

    @abstractmethod
    def latency(
        self,
        model: nn.Module,
        input_shape: Sequence[int],
        batch: int = 1,
        dtype: str | None = None,
    ) -> LatencyResult:
        """Latency of one eval forward of `model` (its inference form) at (C, H, W) x batch."""


TargetFactory = Callable[[str, "str | None", TargetOptions], HardwareTarget]


@dataclass(frozen=True)
class _Entry:
    factory: TargetFactory
    help: str
    argument: str | None  # e.g. "N" (optional index) or "PATH" (required)
    argument_required: bool


_REGISTRY: dict[str, _Entry] = {}


def register_hw(
    name: str, help: str, argument: str | None = None, argument_required: bool = False
) -> Callable[[TargetFactory], TargetFactory]:
    """Decorator for a factory `(hw, argument, options) -> HardwareTarget` named `name`."""

    def register(factory: TargetFactory) -> TargetFactory:
        _REGISTRY[name] = _Entry(factory, help, argument, argument_required)
        return factory

    return register


def available_hw() -> dict[str, str]:
    """Every `--hw` spelling with its one-line help, e.g. {'cuda[:N]': 'measured on ...'}."""
    _load_targets()
    return {_spelling(name, entry): entry.help for name, entry in _REGISTRY.items()}


def get_hw(hw: str, options: TargetOptions | None = None) -> HardwareTarget:
    """The target for `hw`; UserError for unknown names and for absent devices or libraries."""
    _load_targets()
    base, colon, argument = hw.partition(":")
    entry = _REGISTRY.get(base)
    if entry is None:
        choices = ", ".join(available_hw())
        raise UserError(f"unknown hardware {hw!r}: choose one of {choices}")
    if colon and (entry.argument is None or not argument):
        raise UserError(f"bad hardware {hw!r}: use {_spelling(base, entry)}")
    if entry.argument_required and not argument:
        raise UserError(f"--hw {base} needs an argument: use {_spelling(base, entry)}")
    options = options or _default_options.get() or TargetOptions()
    return entry.factory(hw, argument or None, options)


def inference_form(model: nn.Module) -> nn.Module:
    """The model as it would be deployed: NeoNeXt with BatchNorm and layer scale folded away."""
    from neonas.models import NeoNeXt, fold_for_inference

    return fold_for_inference(model) if isinstance(model, NeoNeXt) else model


def _spelling(name: str, entry: _Entry) -> str:
    if entry.argument is None:
        return name
    return f"{name}:{entry.argument}" if entry.argument_required else f"{name}[:{entry.argument}]"


def _load_targets() -> None:
    """Import every module of evaluators.targets once; each registers its targets."""
    import evaluators.targets as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")

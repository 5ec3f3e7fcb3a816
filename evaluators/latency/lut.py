"""Lookup-table latency predictor (FBNet, Once-for-All, nn-Meter) for any measurable device.

The distinct units of sampled networks (stem, each downsample, each block, head, keyed by
structure and input shape; see evaluators.segments) are measured once on the device and
stored as JSON; a network's latency is predicted as the sum of its units' entries times a
whole-network factor. `build_table` runs the passes: units first (including the units of the
networks used later for calibration and validation), then whole networks, so that no check
uses a unit timed next to its own network.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evaluators.flops import batched_shape
from evaluators.latency.result import LatencyResult, LayerLatency
from evaluators.segments import Shape, model_units, unit_key
from neonas.arch import ArchConfig
from neonas.errors import UserError
from neonas.io import write_text_atomic
from neonas.models import build_model, fold_for_inference

FORMAT = "neonas-latency-table"
VERSION = 1

UnitMeasure = Callable[[nn.Module, Shape], LatencyResult]


@dataclass
class LatencyTable:
    """Measured unit latencies of one device at one batch size and dtype."""

    hw: str
    device: str
    dtype: str
    batch: int
    settings: dict[str, Any] = field(default_factory=dict)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    validation: dict[str, Any] | None = None
    # Whole-network time / sum of its units' times, the median over calibration networks
    # (`calibrate_table`): a network pays per-call costs that a unit timed in a loop hides.
    calibration: float = 1.0

    def missing(self, model: nn.Module, input_shape: Sequence[int]) -> list[str]:
        """Paths of the units of `model` the table has no entry for."""
        return [
            path for path, _, key, _ in self._walk(model, input_shape) if key not in self.entries
        ]

    def add_units(
        self,
        model: nn.Module,
        input_shape: Sequence[int],
        measure: UnitMeasure,
        on_entry: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> int:
        """Measure the units of `model` not in the table yet; returns how many were added."""
        added = 0
        for path, unit, key, shape in self._walk(model, input_shape):
            if key in self.entries:
                continue
            result = measure(unit, shape)
            self.entries[key] = {
                "ms": result.median_ms,
                "min_ms": result.min_ms if result.min_ms is not None else result.median_ms,
                "spread": result.spread,
                "stable": result.stable,
                "out_shape": list(_output_shape(unit, shape)),
                "unit": type(unit).__name__,
                "first_seen_at": path,
            }
            added += 1
            if on_entry is not None:
                on_entry(key, self.entries[key])
        return added

    def predict(
        self, model: nn.Module, input_shape: Sequence[int], hw: str | None = None
    ) -> LatencyResult:
        """Latency of `model` as the sum of its units' medians (and of their fastest samples,
        as `min_ms`); UserError if a unit is missing."""
        rows = []
        for path, _, key, _ in self._walk(model, input_shape):
            entry = self.entries.get(key)
            if entry is None:
                missing = self.missing(model, input_shape)
                raise UserError(
                    f"the latency table has no entry for {len(missing)} unit(s) of this network "
                    f"(first: {missing[0]}); extend it with `neonas profile-lut --out TABLE` "
                    "on a space that contains this network"
                )
            rows.append((path, entry))
        scale = self.calibration
        total = scale * sum(entry["ms"] for _, entry in rows)
        # Spread of the sum if the units' timing noise is independent.
        spread = (
            math.sqrt(sum((e["spread"] * e["ms"]) ** 2 for _, e in rows)) / total if total else 0.0
        )
        return LatencyResult(
            median_ms=total,
            spread=spread,
            iqr_ms=0.0,
            runs=0,
            hw=hw or f"lut:{self.hw}",
            device=self.device,
            source="predicted",
            batch=self.batch,
            dtype=self.dtype,
            settings={
                "predictor": "latency lookup table",
                "table_hw": self.hw,
                "calibration": scale,
                **self.settings,
            },
            breakdown=tuple(LayerLatency(path, scale * entry["ms"]) for path, entry in rows),
            min_ms=scale * sum(entry.get("min_ms", entry["ms"]) for _, entry in rows),
        )

    def _walk(
        self, model: nn.Module, input_shape: Sequence[int]
    ) -> Iterable[tuple[str, nn.Module, str, Shape]]:
        """(path, unit, key, input shape) along the network (left in eval mode), shapes
        propagated through the table's entries or, for units it lacks, a forward."""
        units = model_units(model)
        if units is None:
            raise UserError(
                f"a latency table needs a unit-shaped network (stem, stages of downsample + "
                f"blocks, head, as NeoNeXt); {type(model).__name__} is not"
            )
        shape = batched_shape(input_shape, self.batch)
        if shape[0] != self.batch:
            raise UserError(f"this latency table is for batch {self.batch}, not {shape[0]}")
        model.eval()
        for path, unit in units:
            key = unit_key(unit, shape)
            yield path, unit, key, shape
            entry = self.entries.get(key)
            shape = tuple(entry["out_shape"]) if entry else _output_shape(unit, shape)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "hw": self.hw,
            "device": self.device,
            "dtype": self.dtype,
            "batch": self.batch,
            "settings": self.settings,
            "entries": self.entries,
            "validation": self.validation,
            "calibration": self.calibration,
        }

    def save(self, path: str | Path) -> None:
        """Write atomically (temp file + rename): a crash leaves the old table or the new one."""
        write_text_atomic(path, json.dumps(self.to_dict(), indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read a table written by `save`; UserError for a missing or foreign file."""
        path = Path(path)
        hint = "make one with `neonas profile-lut --out FILE`"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"latency table {path} does not exist; {hint}") from None
        except (OSError, ValueError) as err:
            raise UserError(f"cannot read latency table {path}: {err}; {hint}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise UserError(f"{path} is not a neonas latency table; {hint}")
        if doc.get("version") != VERSION:
            raise UserError(
                f"{path}: latency table version {doc.get('version')}, expected {VERSION}"
            )
        try:
            return cls(
                hw=str(doc["hw"]),
                device=str(doc["device"]),
                dtype=str(doc["dtype"]),
                batch=int(doc["batch"]),
                settings=dict(doc.get("settings") or {}),
                entries=dict(doc["entries"]),
                validation=doc.get("validation"),
                calibration=float(doc.get("calibration", 1.0)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"{path}: damaged latency table ({err!r}); {hint}") from None


@dataclass(frozen=True)
class PredictionError:
    """Predicted against measured latency of one network (medians, and fastest samples)."""

    name: str
    predicted_ms: float
    measured_ms: float
    measured_spread: float
    predicted_min_ms: float | None = None
    measured_min_ms: float | None = None

    @property
    def relative(self) -> float:
        """(predicted - measured) / measured, of the medians."""
        return (self.predicted_ms - self.measured_ms) / self.measured_ms

    @property
    def relative_min(self) -> float | None:
        """The same for the fastest samples, which other processes disturb least."""
        if self.predicted_min_ms is None or not self.measured_min_ms:
            return None
        return (self.predicted_min_ms - self.measured_min_ms) / self.measured_min_ms


def summarize_errors(
    errors: Sequence[PredictionError], tolerance: float = 0.10, statistic: str = "median"
) -> dict[str, Any]:
    """Mean and max absolute relative error, bias, and the share within +-tolerance, of the
    medians (`statistic="median"`) or of the fastest samples (`"min"`)."""
    rel = [e.relative if statistic == "median" else e.relative_min for e in errors]
    return {
        "networks": len(rel),
        "mean_abs_error": statistics.fmean(abs(r) for r in rel),
        "max_abs_error": max(abs(r) for r in rel),
        "mean_error": statistics.fmean(rel),
        "within_tolerance": sum(abs(r) <= tolerance for r in rel) / len(rel),
        "tolerance": tolerance,
        "statistic": statistic,
    }


def _output_shape(unit: nn.Module, shape: Shape) -> Shape:
    with torch.no_grad():
        return tuple(unit(torch.zeros(shape)).shape)


@dataclass(frozen=True)
class Network:
    """A network ready to time: its name, inference-form model and input (C, H, W)."""

    name: str
    model: nn.Module
    chw: Shape


def config_networks(configs: Iterable[ArchConfig], label: str = "") -> Iterator[Network]:
    """The networks `configs` describe (e.g. sampled from a search space), in inference form."""
    for index, config in enumerate(configs):
        model = fold_for_inference(build_model(config)).eval()
        yield Network(
            f"{config.name}{label}-{index}",
            model,
            (config.in_chans, config.input_size, config.input_size),
        )


@dataclass(frozen=True)
class UnitFill:
    """Units of networks to be timed whole that the table lacked, measured in the unit pass."""

    networks: int
    units: int  # unit occurrences over those networks
    missing: int  # of them, not in the table after the table's own networks
    distinct_missing: int  # distinct units measured to fill them


def fill_units(table: LatencyTable, networks: Sequence[Network], measure: UnitMeasure) -> UnitFill:
    """Measure the units of `networks` the table lacks, now: before any whole network is timed,
    so that no prediction uses a unit timed right next to its network (the honest protocol)."""
    units = missing = added = 0
    for network in networks:
        shape = (table.batch, *network.chw)
        units += len(model_units(network.model) or [])
        missing += len(table.missing(network.model, shape))
        added += table.add_units(network.model, shape, measure)
    return UnitFill(len(networks), units, missing, added)


def validate_table(
    table: LatencyTable,
    networks: Iterable[Network],
    measure: Callable[[nn.Module, Shape], LatencyResult],
    on_network: Callable[[PredictionError], None] | None = None,
) -> list[PredictionError]:
    """Predicted against measured latency of whole networks. Measures no unit: a network with
    units the table lacks is a UserError (fill them first, in an earlier pass: `fill_units`).

    `measure(module, (N, C, H, W))` times a network; `on_network(error)` hears of each one.
    """
    errors = []
    for network in networks:
        shape = (table.batch, *network.chw)
        predicted = table.predict(network.model, shape)
        measured = measure(network.model, shape)
        error = PredictionError(
            network.name,
            predicted.median_ms,
            measured.median_ms,
            measured.spread,
            predicted.min_ms,
            measured.min_ms,
        )
        errors.append(error)
        if on_network is not None:
            on_network(error)
    return errors


def calibrate_table(
    table: LatencyTable,
    networks: Iterable[Network],
    measure: Callable[[nn.Module, Shape], LatencyResult],
) -> float:
    """Fit `table.calibration` on whole networks whose units the table already has.

    The factor is the median of measured / sum-of-units over the networks, so that one odd
    network does not move it; use networks that validation will not see.
    """
    ratios = []
    for network in networks:
        shape = (table.batch, *network.chw)
        raw = table.predict(network.model, shape).median_ms / table.calibration
        ratios.append(measure(network.model, shape).median_ms / raw)
    if not ratios:
        raise UserError("calibrating a latency table needs at least one network")
    table.calibration = statistics.median(ratios)
    return table.calibration


@dataclass
class TableBuild:
    """What `build_table` did: units added per pass, the fill, the factor and the check."""

    added: int = 0
    fill: UnitFill | None = None
    calibration: float | None = None
    errors: list[PredictionError] = field(default_factory=list)


def build_table(
    table: LatencyTable,
    unit_networks: Iterable[Network],
    measure: UnitMeasure,
    calibration_networks: Sequence[Network] = (),
    validation_networks: Sequence[Network] = (),
    on_step: Callable[[str], None] | None = None,
    on_entry: Callable[[str, dict[str, Any]], None] | None = None,
) -> TableBuild:
    """Build, calibrate and validate a table in three passes (what `neonas profile-lut` runs):

    1. units: the distinct units of `unit_networks`, then those the calibration and validation
       networks add (counted and reported as the fill), all measured before any whole network;
    2. calibration: whole `calibration_networks` timed, the table's factor fitted;
    3. validation: whole `validation_networks` timed against the table's prediction.
    """
    report = TableBuild()
    step = on_step or (lambda _text: None)
    before = len(table.entries)
    for network in unit_networks:
        table.add_units(network.model, (table.batch, *network.chw), measure, on_entry)
        step(f"units: {len(table.entries)} in the table")
    report.fill = fill_units(table, [*calibration_networks, *validation_networks], measure)
    report.added = len(table.entries) - before
    if calibration_networks:
        step("calibrating on whole networks")
        report.calibration = calibrate_table(table, calibration_networks, measure)
    if validation_networks:
        report.errors = validate_table(
            table, validation_networks, measure, on_network=lambda e: step(f"validated {e.name}")
        )
        table.validation = {
            "protocol": "units measured in an earlier pass than the whole networks",
            "fill": dataclasses.asdict(report.fill),
            "summary": summarize_errors(report.errors),
            "networks": [dataclasses.asdict(e) for e in report.errors],
        }
    return report

"""Calibrating the Ascend model against published measurements, and checking it on held-out ones.

The data file (data/ascend_measurements.yaml) lists measured throughputs of standard networks
with their sources. Only the constants no public document gives are fitted, per chip: the cube
efficiency, the DRAM efficiency and the overhead per fused operator, by least squares on the
log of predicted / measured time over the "fit" rows. The "holdout" rows are never seen by the
fit; `check` reports their errors and rank correlations.

A training row (Ascend 910 figures are training throughputs) is compared with 3x the predicted
forward time: a backward pass costs about two forwards. That is an assumption of this check,
not a part of the latency model the search uses.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import yaml
from torch import nn

from evaluators.latency.ascend import PROFILES, AscendProfile, cube_cycles, fused_ops
from evaluators.op_trace import record_ops
from neonas.errors import UserError

FORMAT = "neonas-ascend-measurements"
TRAINING_FACTOR = 3.0  # forward + backward ~ 3 forwards
FITTED = ("cube_efficiency", "dram_efficiency", "overhead_s")
ROBUST_SCALE = 0.25  # log-error where the fit loss turns from quadratic to linear (~28 %)


@dataclass(frozen=True)
class Measurement:
    """One published figure: a network on a chip at a batch size, and where it comes from."""

    chip: str
    network: str
    build: str  # "timm:NAME" or "torchvision:NAME"
    input: int
    batch: int
    images_per_s: float
    split: str  # "fit" or "holdout"
    timed: str  # "inference" or "training"
    source: str  # URL
    page: str

    @property
    def measured_ms(self) -> float:
        """Time of one execution of a batch (a training step for training rows)."""
        return self.batch / self.images_per_s * 1e3

    @property
    def label(self) -> str:
        return f"{self.network} b{self.batch}"


def load_measurements(path: str | None = None) -> list[Measurement]:
    """The measurements of the data file shipped with neonas (or of `path`)."""
    if path is None:
        text = (
            resources.files("evaluators.latency")
            .joinpath("data/ascend_measurements.yaml")
            .read_text(encoding="utf-8")
        )
    else:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UserError(f"{path or 'the shipped file'} is not a {FORMAT} file")
    sources = doc["sources"]
    rows = []
    for row in doc["measurements"]:
        fields = {f.name for f in dataclasses.fields(Measurement)}
        values = {key: value for key, value in row.items() if key in fields}
        values["source"] = sources.get(values["source"], values["source"])
        rows.append(Measurement(**values))
    return rows


def build_network(spec: str) -> nn.Module:
    """A standard network without weights, from 'timm:NAME' or 'torchvision:NAME'."""
    library, _, name = spec.partition(":")
    if library == "timm":
        import timm

        return timm.create_model(name, pretrained=False)
    if library == "torchvision":
        import torchvision

        return torchvision.models.get_model(name, weights=None)
    raise UserError(f"unknown network source {spec!r}: use timm:NAME or torchvision:NAME")


@dataclass(frozen=True)
class OpWork:
    """The fixed work of one measurement's fused operators on one chip, as arrays."""

    cube_cycles: np.ndarray
    vector_s: np.ndarray
    dram_bytes: np.ndarray


def op_work(model: nn.Module, m: Measurement, profile: AscendProfile) -> OpWork:
    """Record the forward once and keep what does not depend on the fitted constants."""
    ops = record_ops(model.eval(), (3, m.input, m.input), m.batch)
    fused = fused_ops(ops, profile)
    lanes = profile.vector_lanes * profile.cores * profile.clock_hz
    return OpWork(
        np.array([cube_cycles(op.gemms, profile) for op in fused], dtype=float),
        np.array([op.vector_elements / lanes for op in fused], dtype=float),
        np.array([op.dram_elements * profile.bytes_per_element for op in fused], dtype=float),
    )


def predicted_ms(work: OpWork, profile: AscendProfile, m: Measurement) -> float:
    """The model's time for a measurement's batch (x3 for a training step)."""
    cube = work.cube_cycles / (profile.clock_hz * profile.cube_efficiency)
    memory = work.dram_bytes / profile.memory_bytes_per_s
    forward = float(np.sum(np.maximum(np.maximum(cube, work.vector_s), memory)))
    forward += profile.overhead_s * len(work.cube_cycles)
    factor = TRAINING_FACTOR if m.timed == "training" else 1.0
    return factor * forward * 1e3


def fit_constants(
    rows: Sequence[tuple[Measurement, OpWork]],
    profile: AscendProfile,
    overhead_s: float | None = None,
) -> AscendProfile:
    """The profile with cube/DRAM efficiency and per-op overhead fitted to `rows` (robust log
    error); a given `overhead_s` is kept fixed instead of fitted."""
    from scipy.optimize import minimize

    def with_params(x: np.ndarray) -> AscendProfile:
        cube, dram, overhead = np.exp(x)
        return dataclasses.replace(
            profile,
            cube_efficiency=float(min(cube, 1.0)),
            dram_efficiency=float(min(dram, 1.0)),
            overhead_s=float(overhead) if overhead_s is None else overhead_s,
        )

    def loss(x: np.ndarray) -> float:
        # Soft-L1 (pseudo-Huber) on log(predicted / measured): quadratic near zero, linear
        # beyond ROBUST_SCALE, so no single badly modelled network steers the constants.
        candidate = with_params(x)
        return statistics.fmean(
            math.sqrt(
                1 + (math.log(predicted_ms(work, candidate, m) / m.measured_ms) / ROBUST_SCALE) ** 2
            )
            for m, work in rows
        )

    best = None
    for cube in (0.2, 0.5, 0.9):
        for dram in (0.2, 0.5, 0.9):
            for overhead in (2e-6, 10e-6, 40e-6):
                start = np.log([cube, dram, overhead])
                result = minimize(loss, start, method="Nelder-Mead", options={"xatol": 1e-4})
                if best is None or result.fun < best.fun:
                    best = result
    assert best is not None
    return with_params(best.x)


@dataclass(frozen=True)
class Check:
    """Predicted against measured time of one row."""

    measurement: Measurement
    predicted_ms: float

    @property
    def error(self) -> float:
        """(predicted - measured) / measured."""
        return self.predicted_ms / self.measurement.measured_ms - 1


@dataclass(frozen=True)
class ChipReport:
    """The fit and the held-out check of one chip."""

    profile: AscendProfile
    fit: list[Check]
    holdout: list[Check]

    def summary(self, checks: Sequence[Check]) -> dict[str, Any]:
        """Median and max |error|, and Spearman / Kendall rank correlation over `checks`."""
        from scipy.stats import kendalltau, spearmanr

        errors = [abs(c.error) for c in checks]
        measured = [c.measurement.measured_ms / c.measurement.batch for c in checks]
        predicted = [c.predicted_ms / c.measurement.batch for c in checks]
        return {
            "rows": len(checks),
            "median_abs_error": statistics.median(errors),
            "mean_abs_error": statistics.fmean(errors),
            "max_abs_error": max(errors),
            "within_25pct": sum(e <= 0.25 for e in errors) / len(errors),
            "spearman": float(spearmanr(measured, predicted).statistic),
            "kendall": float(kendalltau(measured, predicted).statistic),
        }


def calibrate(
    measurements: Sequence[Measurement] | None = None,
    on_row: Callable[[Measurement], None] | None = None,
) -> dict[str, ChipReport]:
    """Fit each chip's constants on its fit rows and check them on its holdout rows.

    The Ascend 310 rows time offline inference (ATC models), the 910 rows eager PyTorch
    training, whose host-side dispatch per op would pass for a huge launch overhead; so the
    overhead per fused operator is fitted on the 310 only and shared by the 910, whose rows fit
    the cube and DRAM efficiencies.
    """
    measurements = list(measurements or load_measurements())
    models: dict[str, nn.Module] = {}
    reports: dict[str, ChipReport] = {}
    shared_overhead: float | None = None
    for chip in sorted({m.chip for m in measurements}):
        profile = PROFILES[chip]
        rows = []
        for m in (m for m in measurements if m.chip == chip):
            if on_row is not None:
                on_row(m)
            if m.build not in models:
                models[m.build] = build_network(m.build)
            rows.append((m, op_work(models[m.build], m, profile)))
        fitted = fit_constants(
            [(m, w) for m, w in rows if m.split == "fit"], profile, shared_overhead
        )
        if chip == "ascend310":
            shared_overhead = fitted.overhead_s

        checks = {
            split: [Check(m, predicted_ms(w, fitted, m)) for m, w in rows if m.split == split]
            for split in ("fit", "holdout")
        }
        reports[chip] = ChipReport(fitted, checks["fit"], checks["holdout"])
    return reports

"""NeoCell-Bench tables: networks of a search space trained from scratch, with their signals.

A table is one JSON Lines file per data set, `data/<space>-<dataset>.jsonl` in this package,
one network per line, with its provenance (command, code commits, machines, dates, training
recipe) beside it in `<space>-<dataset>.meta.json`. `benchmarks/neocell_bench.py` builds and
extends them (`train`, then `collect`) and prints every figure from them (`report`); tests,
benchmarks and users read them through `load_table` so that all read them the same way.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neonas.errors import UserError

DATA = Path(__file__).parent / "data"
SPACE = "tiny"


@dataclass(frozen=True)
class SeedResult:
    """One training run of a network from scratch: validation top-1 (%) and loss, and its cost."""

    seed: int
    top1: float
    loss: float
    seconds: float  # wall-clock training seconds, evaluation included
    commit: str  # `git rev-parse HEAD` of the code that trained it
    machine: str
    finished: str  # UTC, ISO 8601


@dataclass(frozen=True)
class BenchRow:
    """One network of a table: its architecture, costs, ground truth and signals.

    `signals` maps a signal name (`synflow`, `zico`, `zico, noise`, ..., `params`, `flops`) to
    its score for each weight draw (one value for the weight-free `params` and `flops`).
    """

    index: int
    name: str
    origin: str  # "spanning" (farthest-point over the space) or "sampled" (as the search draws)
    config: dict[str, Any]  # ArchConfig.to_dict()
    params: int
    flops: int  # per image, fvcore, as `neonas profile` counts them
    latency_ms: dict[int, float]  # batch -> predicted Ascend 310 latency of one forward
    recipe: dict[str, Any]
    truth: tuple[SeedResult, ...]
    signals: dict[str, tuple[float, ...]]
    signal_seconds: dict[str, float]  # median seconds of one computation of each signal

    @property
    def top1(self) -> float:
        """The ground truth: mean validation top-1 (%) over the seeds."""
        return statistics.fmean(result.top1 for result in self.truth)

    def seed_top1(self, seed: int) -> float:
        """Top-1 (%) of the run with `seed`."""
        for result in self.truth:
            if result.seed == seed:
                return result.top1
        raise KeyError(f"{self.name} has no run with seed {seed}")

    def arch(self) -> Any:
        """The network as an ArchConfig (build it with neonas.models.build_model)."""
        from neonas.arch import ArchConfig

        return ArchConfig.from_dict(self.config)


def table_path(dataset: str, folder: Path | None = None, space: str = SPACE) -> Path:
    """The JSON Lines file of `dataset`'s table."""
    return (folder or DATA) / f"{space}-{dataset}.jsonl"


def datasets(folder: Path | None = None, space: str = SPACE) -> list[str]:
    """The data sets with a table (committed ones, or those under `folder`)."""
    prefix = f"{space}-"
    return sorted(
        path.name.removeprefix(prefix).removesuffix(".jsonl")
        for path in (folder or DATA).glob(f"{prefix}*.jsonl")
    )


def row_from_dict(data: dict[str, Any]) -> BenchRow:
    """A BenchRow from one line of a table (the inverse of `row_to_dict`)."""
    return BenchRow(
        index=int(data["index"]),
        name=str(data["name"]),
        origin=str(data["origin"]),
        config=dict(data["config"]),
        params=int(data["params"]),
        flops=int(data["flops"]),
        latency_ms={int(batch): float(ms) for batch, ms in data["latency_ms"].items()},
        recipe=dict(data["recipe"]),
        truth=tuple(SeedResult(**result) for result in data["truth"]),
        signals={name: tuple(float(v) for v in values) for name, values in data["signals"].items()},
        signal_seconds={name: float(s) for name, s in data["signal_seconds"].items()},
    )


def row_to_dict(row: BenchRow) -> dict[str, Any]:
    """One line of a table, as plain JSON data."""
    return {
        "index": row.index,
        "name": row.name,
        "origin": row.origin,
        "params": row.params,
        "flops": row.flops,
        "latency_ms": {str(batch): ms for batch, ms in row.latency_ms.items()},
        "recipe": row.recipe,
        "truth": [vars(result) for result in row.truth],
        "signals": {name: list(values) for name, values in row.signals.items()},
        "signal_seconds": row.signal_seconds,
        "config": row.config,
    }


def load_table(dataset: str, folder: Path | None = None, space: str = SPACE) -> list[BenchRow]:
    """Every network of `dataset`'s table, in table order; UserError if there is no table."""
    path = table_path(dataset, folder, space)
    if not path.is_file():
        known = ", ".join(datasets(folder, space)) or "none"
        raise UserError(f"no NeoCell-Bench table for {dataset!r} (tables: {known})")
    with path.open() as handle:
        return [row_from_dict(json.loads(line)) for line in handle if line.strip()]


def provenance(dataset: str, folder: Path | None = None, space: str = SPACE) -> dict[str, Any]:
    """How `dataset`'s table was made: command, commits, machines, dates, recipe, coverage."""
    path = table_path(dataset, folder, space).with_suffix(".meta.json")
    if not path.is_file():
        raise UserError(f"no provenance for NeoCell-Bench table {dataset!r} ({path})")
    return json.loads(path.read_text())

"""What every latency evaluator returns, measured or predicted."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SOURCES = ("measured", "predicted")
# Parts of a predicted latency (evaluators.latency.ascend): each fused operator's time goes to
# the unit that bounds it, its launch overhead to "overhead".
LATENCY_PARTS = ("cube", "vector", "memory", "overhead")


@dataclass(frozen=True)
class LayerLatency:
    """One row of a latency breakdown: a module or unit, its time, and what bounds it."""

    name: str
    ms: float
    bound: str = ""  # predicted: "cube", "vector", "memory" or "overhead"; measured units: ""


@dataclass(frozen=True)
class LatencyResult:
    """A latency figure with its spread and everything needed to reproduce it.

    `spread` is the robust coefficient of variation, IQR / (1.349 * median), of the timed
    samples the median comes from (std / mean for Gaussian noise; see latency/measure.py),
    0.0 for analytic predictions; `stable` says whether it got under the target.
    """

    median_ms: float
    spread: float
    iqr_ms: float
    runs: int
    hw: str
    device: str
    source: str
    batch: int
    dtype: str
    stable: bool = True
    settings: dict[str, Any] = field(default_factory=dict)
    breakdown: tuple[LayerLatency, ...] = ()
    min_ms: float | None = None  # fastest sample: robust to other processes on a shared machine

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")

    def parts(self) -> dict[str, float | None]:
        """The breakdown the search records per trial: `latency_<part>_ms` for cube, vector,
        memory and overhead, adding up to `median_ms`; None where the source has none
        (measured latency, lookup tables)."""
        return {f"latency_{part}_ms": self.settings.get(f"{part}_ms") for part in LATENCY_PARTS}

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (breakdown rows as dicts)."""
        return dataclasses.asdict(self)

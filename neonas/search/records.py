"""The run's own table of every trial: the durable source of truth for what was completed.

One row per Optuna trial number, rewritten atomically on every change (`trials.jsonl`, full
rows, and `trials.csv`, a flat view for people and pandas). A SIGKILL at any moment leaves
the previous or the next version of each file, never half of one. The Optuna study and the
Ray Tune experiment are reconciled against this table on resume (see `study.py`).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from neonas.io import write_text_atomic

# completed: evaluated, counts toward --trials. rejected: over a budget or not buildable,
# told to Optuna as infeasible. duplicate: same point as an earlier trial, not run again.
# failed: crashed, ran out of memory or gave NaN. stopped: cut short by --time-budget or
# Ctrl-C. lost: in flight when the driver died; its point is proposed again on resume.
STATUSES = ("completed", "rejected", "duplicate", "failed", "stopped", "lost")
# The metrics of a scored trial, as the Pareto summary shows them; the CSV adds epochs trained.
TRIAL_METRICS = (
    "accuracy",
    "accuracy_kind",
    "latency_ms",
    "latency_source",
    "flops",
    "params",
    "matrix_efficiency",
    "score",
)
CSV_METRICS = (*TRIAL_METRICS, "epochs")


@dataclass
class TrialRecord:
    """One trial: its point, outcome, metrics, timing and, when not completed, why."""

    number: int
    status: str
    params: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    constraints: dict[str, float] = field(default_factory=dict)
    reason: str | None = None
    session: int = 1
    node: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown trial status {self.status!r}")

    @property
    def duration_s(self) -> float | None:
        return None if self.finished is None else round(self.finished - self.started, 3)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


class TrialTable:
    """The rows of `trials.jsonl` in a run folder, kept in memory and written through."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.rows: dict[int, TrialRecord] = {}
        path = self.folder / "trials.jsonl"
        if path.is_file():
            for line in path.read_text().splitlines():
                if line.strip():
                    record = TrialRecord.from_dict(json.loads(line))
                    self.rows[record.number] = record

    def record(self, record: TrialRecord) -> TrialRecord:
        """Insert or replace the row of `record.number`, then rewrite both files atomically."""
        self.rows[record.number] = record
        self._write()
        return record

    def get(self, number: int) -> TrialRecord | None:
        return self.rows.get(number)

    def with_status(self, *statuses: str) -> list[TrialRecord]:
        """Rows in trial-number order whose status is one of `statuses`."""
        return [row for _, row in sorted(self.rows.items()) if row.status in statuses]

    def count(self, status: str) -> int:
        return sum(1 for row in self.rows.values() if row.status == status)

    def completed_params(self) -> dict[str, int]:
        """Canonical params text -> trial number, for every completed trial (duplicate check)."""
        return {params_key(row.params): row.number for row in self.with_status("completed")}

    def _write(self) -> None:
        rows = [row for _, row in sorted(self.rows.items())]
        lines = "".join(json.dumps(row.to_dict(), default=_json_default) + "\n" for row in rows)
        write_text_atomic(self.folder / "trials.jsonl", lines)
        write_text_atomic(self.folder / "trials.csv", csv_text(rows))


def params_key(params: dict[str, Any]) -> str:
    """Order-independent text of a point's params: equal points give equal keys."""
    return json.dumps(params, sort_keys=True)


def csv_text(rows: Iterable[TrialRecord]) -> str:
    """A flat table: one line per trial, metrics as columns, the point as compact text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "number",
            "status",
            *CSV_METRICS,
            "reason",
            "duration_s",
            "session",
            "node",
            "arch",
            "point",
        ]
    )
    for row in rows:
        writer.writerow(
            [
                row.number,
                row.status,
                *(row.metrics.get(key, "") for key in CSV_METRICS),
                row.reason or "",
                row.duration_s if row.duration_s is not None else "",
                row.session,
                row.node or "",
                arch_summary(row.config),
                json.dumps(row.params, sort_keys=True),
            ]
        )
    return out.getvalue()


def arch_summary(config: dict[str, Any] | None) -> str:
    """'d3-3-9-3 w96-192-384-768 2:1 2:1 2:1': depths, widths and transitions at a glance."""
    if not config:
        return ""
    stages = config["stages"]
    depths = "-".join(str(stage["depth"]) for stage in stages)
    widths = "-".join(str(stage["width"]) for stage in stages)
    ratios = " ".join(
        f"{s['sampling'][0]}:{s['sampling'][2]}" for s in stages[1:] if s.get("sampling")
    )
    return f"d{depths} w{widths} {ratios}".strip()


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to the trial table")

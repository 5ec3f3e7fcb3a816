"""Every trial of a run as a TrialRecord, read from the run's Optuna study: its one record.

The searcher finishes each Optuna trial in two steps: one user attribute, `outcome`, holding
the whole record (status, reason, metrics, config, timing), then `study.tell`. A SIGKILL
between the two leaves a RUNNING trial whose outcome is known (`study.repair` tells it on
resume); a RUNNING trial without an outcome was in flight and is lost. Nothing else holds
trial state: `trials.csv` is a flat view for people and pandas, appended while the run goes
and rewritten from the study at the start and end of every session.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from evaluators.metrics import TABLE_METRICS
from neonas.arch import ArchConfig
from neonas.io import write_text_atomic

OUTCOME_ATTR = "outcome"  # the Optuna user attribute holding a finished trial's record

# Metrics stored under an older name: old name -> current name. Records read back from a run
# made before the rename (its study, on resume, watch or export) carry the current name.
# "score" was the MnasNet reward's name until "score" came to mean only what a candidate is
# scored to (a zero-cost signal, a supernet's top-1, a trial's evaluation).
RENAMED_METRICS = {"score": "reward"}


class TrialStatus(str, Enum):  # not StrEnum: that needs Python 3.11, we support 3.10
    """How a trial ended: the one list of statuses, in the order summaries count them.

    A str Enum, so a status equals its text: the study, trials.csv and run.json store the
    same words as before, and records read back from older runs load unchanged.
    """

    COMPLETED = "completed"  # evaluated at full fidelity, counts toward --trials
    PRUNED = "pruned"  # stopped early by ASHA (Optuna's PRUNED), kept out of the front
    REJECTED = "rejected"  # over a budget or not a valid network
    DUPLICATE = "duplicate"  # the same network as an earlier trial, not run again
    FAILED = "failed"  # crashed, ran out of memory or gave NaN
    STOPPED = "stopped"  # cut short by --time-budget or Ctrl-C
    LOST = "lost"  # in flight when the driver died; its point is proposed again on resume

    def __str__(self) -> str:  # the word itself, in f-strings and CSV cells
        return self.value


CSV_COLUMNS = (
    "number",
    "status",
    *TABLE_METRICS,
    "reason",
    "duration_s",
    "session",
    "node",
    "arch",
    "cells",
    "point",
)


@dataclass
class TrialRecord:
    """One trial: its point, outcome, metrics, timing and, when not completed, why."""

    number: int
    status: TrialStatus  # given as a member or its text
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
        try:
            self.status = TrialStatus(self.status)
        except ValueError:
            raise ValueError(f"unknown trial status {self.status!r}") from None
        self.metrics = {RENAMED_METRICS.get(key, key): value for key, value in self.metrics.items()}

    @property
    def duration_s(self) -> float | None:
        return None if self.finished is None else round(self.finished - self.started, 3)

    def outcome(self) -> dict[str, Any]:
        """What the study stores of this record (the point is the trial's own params)."""
        return {
            key: value for key, value in asdict(self).items() if key not in ("number", "params")
        } | {"status": TrialStatus(self.status).value}


def record_from_trial(trial: Any) -> TrialRecord | None:
    """The record of an Optuna FrozenTrial; None while it is in flight or waiting.

    A finished trial without an outcome was in flight when a driver died (`study.repair`
    failed it): it is reported as lost.
    """
    from optuna.trial import TrialState

    outcome = trial.user_attrs.get(OUTCOME_ATTR)
    if outcome is not None:
        return TrialRecord(number=trial.number, params=dict(trial.params), **outcome)
    if trial.state in (TrialState.RUNNING, TrialState.WAITING):
        return None
    return TrialRecord(
        number=trial.number,
        status=TrialStatus.LOST,
        params=dict(trial.params),
        reason=(
            "in flight when the driver stopped; its point is proposed again"
            if trial.params
            else "the driver stopped while this trial was drawing its point"
        ),
        started=trial.datetime_start.timestamp() if trial.datetime_start else 0.0,
    )


class TrialTable:
    """The records of a run in trial-number order: a read view of its study, kept in memory."""

    def __init__(self, records: Iterable[TrialRecord] = ()) -> None:
        self.rows: dict[int, TrialRecord] = {record.number: record for record in records}

    @classmethod
    def from_study(cls, study: Any) -> TrialTable:
        trials = study.get_trials(deepcopy=False)
        return cls(record for record in map(record_from_trial, trials) if record is not None)

    def add(self, record: TrialRecord) -> TrialRecord:
        """Insert or replace the row of `record.number` (after the study was told)."""
        self.rows[record.number] = record
        return record

    def get(self, number: int) -> TrialRecord | None:
        return self.rows.get(number)

    def with_status(self, *statuses: str) -> list[TrialRecord]:
        """Rows in trial-number order whose status is one of `statuses`."""
        return [row for _, row in sorted(self.rows.items()) if row.status in statuses]

    def count(self, *statuses: str) -> int:
        return sum(1 for row in self.rows.values() if row.status in statuses)

    def evaluated_networks(self, key: Callable[[ArchConfig], str]) -> dict[str, int]:
        """Network key -> trial number for every evaluated trial (the duplicate check), with
        `key` the space's network identity, so params that spell one network twice match."""
        return {
            key(ArchConfig.from_dict(row.config)): row.number
            for row in self.with_status(TrialStatus.COMPLETED, TrialStatus.PRUNED)
            if row.config is not None
        }


def csv_row(row: TrialRecord) -> list[Any]:
    """One trial as the cells of trials.csv, in CSV_COLUMNS order."""
    return [
        row.number,
        row.status,
        *(row.metrics.get(key, "") for key in TABLE_METRICS),
        row.reason or "",
        row.duration_s if row.duration_s is not None else "",
        row.session,
        row.node or "",
        arch_summary(row.config),
        cells_summary(row.config),
        json.dumps(row.params, sort_keys=True),
    ]


def csv_text(rows: Iterable[TrialRecord]) -> str:
    """trials.csv whole: a header, then one line per trial."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_row(row) for row in rows)
    return out.getvalue()


class CsvLog:
    """trials.csv of a run: rewritten from the study once per session, appended per outcome."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def rewrite(self, table: TrialTable) -> None:
        write_text_atomic(self.path, csv_text(table.with_status(*TrialStatus)))

    def append(self, record: TrialRecord) -> None:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(csv_row(record))
        with self.path.open("a") as handle:
            handle.write(out.getvalue())


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


def cells_summary(config: dict[str, Any] | None) -> str:
    """Each stage's NeoCells, stages split by '|': '4s.75+8.25 | 8' is 3/4 of the channels in
    shifted 4x4 cells and 1/4 in 8x8 cells, then one 8x8 group (share 1 is left out)."""
    if not config:
        return ""
    return " | ".join(
        "+".join(_cell_code(cell) for cell in stage["cells"]) for stage in config["stages"]
    )


def _cell_code(cell: dict[str, Any]) -> str:
    share = float(cell.get("share", 1.0))
    code = f"{cell['size']}{'s' if cell.get('shift') else ''}"
    return code if share == 1.0 else code + f"{share:.2f}".lstrip("0").rstrip("0")

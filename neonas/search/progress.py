"""What a running search prints: one line per trial outcome, and the Pareto front at the end."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.table import Table

from neonas.search.pareto import pareto_front
from neonas.search.records import (
    TrialRecord,
    TrialStatus,
    TrialTable,
    arch_summary,
    cells_summary,
)
from neonas.si import format_si

_STYLE = {
    TrialStatus.COMPLETED: "green",
    TrialStatus.PRUNED: "yellow",
    TrialStatus.REJECTED: "yellow",
    TrialStatus.DUPLICATE: "yellow",
    TrialStatus.FAILED: "red",
    TrialStatus.STOPPED: "red",
    TrialStatus.LOST: "red",
}


class ProgressDisplay:
    """Trials done/total, rejected, failed, best so far, elapsed and ETA, after every outcome."""

    def __init__(
        self, table: TrialTable, total: int, console: Console | None = None, signal: str = ""
    ) -> None:
        self.table = table
        self.total = total
        self.signal = signal or "accuracy"
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.start = time.monotonic()
        self.done_at_start = table.count("completed")

    def __call__(self, record: TrialRecord) -> None:
        self.console.print(self.line(record), soft_wrap=True)

    def line(self, record: TrialRecord) -> str:
        done = self.table.count("completed")
        elapsed = time.monotonic() - self.start
        new = done - self.done_at_start
        eta = elapsed / new * max(0, self.total - done) if new else None
        style = _STYLE.get(record.status, "")
        what = _describe(record, self.signal)
        rejected = self.table.count("rejected", "duplicate")
        failed = self.table.count("failed", "lost", "stopped")
        pruned = self.table.count("pruned")
        best = self.best_so_far()
        return (
            f"[{done:>3}/{self.total}] trial {record.number:>4} [{style}]{record.status:<9}[/] {what}"
            f" | rejected {rejected} failed {failed}"
            + (f" pruned {pruned}" if pruned else "")
            + best
            + f" | {_clock(elapsed)} elapsed, ETA {_clock(eta) if eta is not None else '?'}"
        )

    def best_so_far(self) -> str:
        front = pareto_front(self.table.with_status("completed"))
        if not front:
            return ""
        best = max(front, key=lambda row: row.metrics["accuracy"])
        return (
            f" | front {len(front)}, best {self.signal} {best.metrics['accuracy']:.4g} "
            f"@ {best.metrics['latency_ms']:.3g} ms"
        )


def _describe(record: TrialRecord, signal: str) -> str:
    metrics = record.metrics
    if record.status == "completed":
        return (
            f"{signal} {metrics['accuracy']:.4g}  lat {metrics['latency_ms']:.3g} ms  "
            f"{format_si(metrics.get('flops', 0))}FLOPs  {arch_summary(record.config)}"
            f"  cells {cells_summary(record.config)}"
        )
    return (record.reason or "")[:90]


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def front_table(rows: list[TrialRecord], title: str, signal: str = "accuracy") -> Table:
    """The Pareto front as a rich table: the network and its cells, FLOPs, params, latency and
    source, the accuracy signal (named: e.g. 'short-training top-1' or 'naswot'), matrix efficiency."""
    table = Table(title=title, title_justify="left")
    for column, justify in (
        ("trial", "right"),
        ("arch", "left"),
        ("cells", "left"),
        ("FLOPs", "right"),
        ("params", "right"),
        ("latency", "right"),
        ("source", "left"),
        (signal, "right"),
        ("matrix eff.", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in pareto_front(rows):
        metrics: dict[str, Any] = row.metrics
        efficiency = metrics.get("matrix_efficiency")
        table.add_row(
            str(row.number),
            arch_summary(row.config),
            cells_summary(row.config),
            format_si(metrics.get("flops", 0)),
            format_si(metrics.get("params", 0)),
            f"{metrics['latency_ms']:.3g} ms",
            str(metrics.get("latency_source", "")),
            f"{metrics['accuracy']:.4g}",
            f"{efficiency:.3f}" if efficiency is not None else "-",
        )
    return table

"""The Pareto front of a run (the accuracy signal up, latency down), as JSON and as a plot.

Only completed trials, measured at full fidelity, are compared: a trial ASHA stopped early is
pruned and never on the front.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluators.metrics import TABLE_METRICS
from neonas.io import write_json_atomic
from neonas.search.objectives import best_first, goals, oriented
from neonas.search.records import TrialRecord, TrialStatus, cells_summary
from neonas.search.references import Reference

# The front's metrics and their directions come from objectives.py: accuracy up, latency down.
FRONT = "pareto"


def dominates(a: TrialRecord, b: TrialRecord) -> bool:
    """a is at least as accurate and as fast as b, and strictly better in one."""
    better, worse = oriented(a.metrics, FRONT), oriented(b.metrics, FRONT)
    return all(x >= y for x, y in zip(better, worse, strict=True)) and better != worse


def pareto_front(rows: list[TrialRecord]) -> list[TrialRecord]:
    """Completed trials that no other completed trial dominates, fastest first.

    One sweep in latency order (O(n log n): the progress line asks after every trial): a
    point is dominated when an earlier one is more accurate, or as accurate and faster.
    Identical points dominate neither and both stay.
    """
    done = [row for row in rows if row.status == TrialStatus.COMPLETED]
    fastest_first = best_first("latency_ms", FRONT)
    done.sort(key=lambda row: fastest_first(row.metrics))
    front: list[TrialRecord] = []
    for row in done:
        if not front or not dominates(front[-1], row):
            front.append(row)
    return front


def front_entry(row: TrialRecord) -> dict[str, Any]:
    """What pareto.json and the summary show of one trial."""
    return {
        "number": row.number,
        "name": (row.config or {}).get("name"),
        "cells": cells_summary(row.config),
        **{key: row.metrics.get(key) for key in TABLE_METRICS},
    }


def write_pareto(
    path: str | Path,
    rows: list[TrialRecord],
    budgets: dict[str, Any],
    signal: str = "",
    references: Sequence[Reference] = (),
) -> list[TrialRecord]:
    """pareto.json: the front with its metrics, the budgets, and how many trials it came from."""
    front = pareto_front(rows)
    write_json_atomic(
        path,
        {
            "objectives": goals(FRONT),
            "accuracy_signal": signal,
            "budgets": budgets,
            "completed": sum(1 for row in rows if row.status == TrialStatus.COMPLETED),
            "front": [front_entry(row) for row in front],
            "references": [reference.to_dict() for reference in references],
        },
    )
    return front


def plot_pareto(
    path: str | Path,
    rows: list[TrialRecord],
    budgets: dict[str, Any],
    title: str,
    signal: str = "",
    references: Sequence[Reference] = (),
) -> Path:
    """pareto.png: every completed trial (colour: FLOPs against the budget), the front as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [row for row in rows if row.status == TrialStatus.COMPLETED]
    front = pareto_front(rows)
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    flops_budget = budgets.get("flops")
    if done:
        flops = [row.metrics.get("flops", 0) / 1e9 for row in done]
        points = axes.scatter(
            [row.metrics["latency_ms"] for row in done],
            [row.metrics["accuracy"] for row in done],
            c=flops,
            cmap="viridis",
            vmin=0,
            vmax=flops_budget / 1e9 if flops_budget else max(flops),
            s=22,
            label="completed trials",
        )
        label = f"GFLOPs (budget {flops_budget / 1e9:.3g})" if flops_budget else "GFLOPs"
        figure.colorbar(points, ax=axes, label=label)
    if front:
        axes.step(
            [row.metrics["latency_ms"] for row in front],
            [row.metrics["accuracy"] for row in front],
            where="post",
            color="crimson",
            marker="o",
            markerfacecolor="none",
            label="Pareto front",
        )
    for reference in references:  # hand-designed networks that fit the budget: beat these
        axes.scatter(
            [reference.latency_ms], [reference.accuracy], marker="*", s=160, color="black", zorder=3
        )
        axes.annotate(
            reference.name,
            (reference.latency_ms, reference.accuracy),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=8,
        )
    if budgets.get("latency_ms"):
        axes.axvline(budgets["latency_ms"], color="grey", linestyle="--", label="latency budget")
    source = done[0].metrics.get("latency_source", "") if done else ""
    signal = signal or (done[0].metrics.get("accuracy_signal", "") if done else "")
    axes.set_xlabel(f"latency, ms ({source})" if source else "latency, ms")
    axes.set_ylabel(f"accuracy: {signal}" if signal else "accuracy")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(tmp)
    plt.close(figure)
    tmp.replace(path)  # atomic: a reader sees the old plot or the new one
    return path

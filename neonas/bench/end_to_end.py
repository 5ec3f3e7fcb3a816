"""The end-to-end result of NeoCell-Bench: searched, random and hand-designed networks under one
latency budget, each retrained from scratch; read from the summary benchmarks/end_to_end.py
commits.

    from neonas.bench.end_to_end import end_to_end_figures
    end_to_end_figures("digits")["searched"]["top1_mean"]
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from neonas.bench.table import DATA, SPACE, datasets, load_table

GROUPS = ("searched", "random", "hand")
# Validation images each trial of a search scored on before searches recorded the count: the
# default then (now 2,000, neonas.signals.SUPERNET_VAL_IMAGES).
EARLIER_VAL_IMAGES = 500
# The runs beside the table's space searched with the whole supernet, by their labels: the
# space, with -few-shot when the supernet's few-shot parts scored the trials, and -scalar
# when the search maximised the signal alone under the budget instead of the Pareto front.
OTHER_RUNS = ("tiny-few-shot", "tiny-few-shot-scalar", "tiny-wide", "tiny-wide-few-shot")
DATASETS = ("digits", "shapes-large", "shapes-xl")  # the data sets benchmarks/end_to_end.py runs on


def end_to_end_results(folder: Path | None = None) -> dict[str, Any]:
    """Every committed end-to-end result, as the contract's "end_to_end" carries them: keyed by
    data set for the table's space and whole supernet, by "DATASET, LABEL" for the others."""
    found = {}
    for dataset in DATASETS:
        for label in (SPACE, *OTHER_RUNS):
            if figures := end_to_end_figures(dataset, folder, label):
                found[dataset if label == SPACE else f"{dataset}, {label}"] = figures
    return found


def summary_path(dataset: str, folder: Path | None = None, label: str = SPACE) -> Path:
    """The committed end-to-end summary of `dataset` searched as `label` says (OTHER_RUNS)."""
    return (folder or DATA) / f"{label}-{dataset}-end-to-end.json"


def group_figures(networks: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean top-1 of a group's networks (each the mean of its seeds) and its standard error:
    over the networks when there are several, over the seeds of the one network otherwise."""
    means = [statistics.fmean(n["top1"].values()) for n in networks]
    spread = means if len(networks) > 1 else list(networks[0]["top1"].values())
    se = statistics.stdev(spread) / math.sqrt(len(spread)) if len(spread) > 1 else None
    figures = {
        "networks": len(networks),
        "top1_mean": round(statistics.fmean(means), 2),
        "top1_se": None if se is None else round(se, 2),
        "latency_ms": round(statistics.fmean(n["latency_ms"] for n in networks), 4),
    }
    signals = [n.get("signal") for n in networks]
    if all(signal is not None for signal in signals):
        # the mean score the search's signal gives the group (benchmarks/end_to_end.py
        # signal_step): beside top1_mean, whether the signal orders the groups as training does
        figures["signal_mean"] = round(statistics.fmean(signals), 2)
    return figures


def end_to_end_figures(
    dataset: str, folder: Path | None = None, label: str = SPACE
) -> dict[str, Any]:
    """The contract's entry of one data set ("searched", "random", "hand": top1_mean, top1_se,
    latency_ms) with the budget and the search's cost, searched as `label` says (the table's
    space and whole supernet, or one of OTHER_RUNS); empty when nothing is committed. Only
    networks retrained with every seed count."""
    path = summary_path(dataset, folder, label)
    if not path.is_file():
        return {}
    summary = json.loads(path.read_text())
    seeds = len(summary["seeds"])
    entry: dict[str, Any] = {
        "space": summary.get("space", SPACE),
        "supernet": summary.get("supernet", "whole"),
        "budget_ms": summary["budget_ms"],
        "search_cost_seconds": summary["search_cost_seconds"],
        "val_images": summary.get("val_images", EARLIER_VAL_IMAGES),
    }
    for group in GROUPS:
        networks = [
            n for n in summary["networks"] if n["group"] == group and len(n["top1"]) == seeds
        ]
        if networks:
            entry[group] = group_figures(networks)
    if entry["space"] == SPACE and dataset in datasets(folder):
        # Context with more than 3 draws: the table's networks drawn as the search draws,
        # within the budget, trained with the same recipe and seeds.
        within = [
            row for row in load_table(dataset, folder) if row.latency_ms[1] <= summary["budget_ms"]
        ]
        drawn = [
            {"top1": {str(r.seed): r.top1 for r in row.truth}, "latency_ms": row.latency_ms[1]}
            for row in within
            if row.origin == "sampled"
        ]
        if len(drawn) > 1:
            entry["table_sampled_within_budget"] = group_figures(drawn)
        if within:  # how good the space gets within the budget, as far as the table knows
            best = max(within, key=lambda row: row.top1)
            entry["table_best_within_budget"] = group_figures(
                [
                    {
                        "top1": {str(r.seed): r.top1 for r in best.truth},
                        "latency_ms": best.latency_ms[1],
                    }
                ]
            )
    return entry

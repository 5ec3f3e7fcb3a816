"""The sampler comparison of NeoCell-Bench: searches of the tiny space by each Optuna sampler,
read from their committed summary (written by benchmarks/sampler_search.py).

    from neonas.bench.samplers import sampler_figures
    sampler_figures("digits")["tpe"]["hv_at_64"]

Each committed search keeps its normalised hypervolume and its best top-1 within the latency
budget every few trials; the figures are medians and quartiles over the seeds, so that a
reader can re-print them without running a search.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from neonas.bench.table import DATA, SPACE


def summary_path(
    dataset: str, folder: Path | None = None, space: str = SPACE, landscape: str = "supernet"
) -> Path:
    """The committed summary of `dataset`'s sampler searches on `landscape` (the signal they
    optimise beside latency: `supernet`, or `synflow`)."""
    return (folder or DATA) / f"{space}-{dataset}-samplers{landscape_suffix(landscape)}.json"


def landscape_suffix(landscape: str) -> str:
    """What a landscape adds to the names of its files: nothing for the supernet, the first
    landscape (its files keep their names), `-<landscape>` for the others."""
    return "" if landscape == "supernet" else f"-{landscape}"


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    low, mid, high = statistics.quantiles(values, n=4, method="inclusive")
    return low, mid, high


def sampler_figures(
    dataset: str, folder: Path | None = None, landscape: str = "supernet"
) -> dict[str, Any]:
    """Per sampler: seeds, trials, the median hypervolume curve and the contract's figures
    (`hv_at_64`, `trials_to_random_256_hv`, ...); empty when nothing is committed."""
    path = summary_path(dataset, folder, landscape=landscape)
    if not path.is_file():
        return {}
    summary = json.loads(path.read_text())
    every = summary["every"]
    by_sampler: dict[str, list[dict[str, Any]]] = {}
    for result in summary["runs"]:
        by_sampler.setdefault(result["sampler"], []).append(result)
    figures: dict[str, Any] = {}
    for name, runs in by_sampler.items():
        length = min(len(r["hypervolume"]) for r in runs)
        entry: dict[str, Any] = {"default": name == summary["default"], "seeds": len(runs)}
        entry["trials"] = length * every
        entry["median_hv"] = [
            statistics.median(r["hypervolume"][i] for r in runs) for i in range(length)
        ]
        for n in (64, 256):
            if length * every < n:
                continue
            low, mid, high = _quartiles([r["hypervolume"][n // every - 1] for r in runs])
            entry[f"hv_at_{n}"] = round(mid, 4)
            entry[f"hv_at_{n}_iqr"] = [round(low, 4), round(high, 4)]
            bests = [r["best_within_budget"][n // every - 1] for r in runs]
            found = [b for b in bests if b is not None]
            entry[f"best_within_budget_at_{n}"] = (
                round(statistics.median(found), 2) if len(found) == len(bests) else None
            )
        figures[name] = entry
    random_runs = by_sampler.get("random", [])
    target = None
    if figures.get("random", {}).get("trials", 0) >= 256:  # unrounded, as the curves are
        target = statistics.median(r["hypervolume"][256 // every - 1] for r in random_runs)
    for entry in figures.values():
        entry["trials_to_random_256_hv"] = None
        if target is not None:
            reached = [i for i, hv in enumerate(entry["median_hv"]) if hv >= target]
            if reached:
                entry["trials_to_random_256_hv"] = (reached[0] + 1) * every
        entry["median_hv"] = [round(hv, 4) for hv in entry["median_hv"]]
    return figures

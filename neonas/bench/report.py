"""The figures of NeoCell-Bench, from its tables alone: how well each signal ranks networks like
training from scratch, the samplers against random, and the end-to-end result.

`report()` is the contract's JSON object (issue 18: `neocell_bench.py report --json` prints it)
and `report_text()` the same as Markdown. Both read only committed text (the tables, the
sampler and end-to-end records in neonas/bench/data), so every figure of the docs is
re-printed in seconds, without training.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from neonas.bench import metrics
from neonas.bench.end_to_end import end_to_end_results
from neonas.bench.samplers import sampler_figures
from neonas.bench.table import BenchRow, datasets, load_table, provenance


def signal_figures(
    scores: list[float], truth: list[float], latency: list[float]
) -> dict[str, float | None]:
    """tau (and SE), Spearman, top-10 % recall, band tau (and SE) of one signal."""
    return {
        "tau": _num(metrics.kendall_tau(scores, truth)),
        "se": _num(metrics.bootstrap_se(scores, truth)),
        "spearman": _num(metrics.spearman(scores, truth)),
        "top10_recall": _num(metrics.top_recall(scores, truth)),
        "band_tau": _num(metrics.band_tau(scores, truth, latency)),
        "band_se": _num(metrics.band_bootstrap_se(scores, truth, latency)),
    }


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)


def dataset_report(rows: list[BenchRow]) -> dict[str, Any]:
    """The contract's entry of one data set: size, ceiling and every signal's figures."""
    seeds = sorted({result.seed for row in rows for result in row.truth})
    entry: dict[str, Any] = {"networks": len(rows), "seeds": len(seeds)}
    if len(rows) < 3:
        entry.update({"ceiling": {"tau": None, "se": None}, "signals": {}})
        return entry
    truth = [row.top1 for row in rows]
    latency = [row.latency_ms[1] for row in rows]
    first, second = ([row.seed_top1(seed) for row in rows] for seed in seeds[:2])
    entry["ceiling"] = {
        "tau": _num(metrics.kendall_tau(first, second)),
        "se": _num(metrics.bootstrap_se(first, second)),
    }
    entry["top1_range"] = [round(min(truth), 2), round(max(truth), 2)]
    entry["band_pairs"] = metrics.band_pairs(latency)
    signals: dict[str, Any] = {}
    for name in rows[0].signals:
        draws = [row.signals[name] for row in rows]
        figures = signal_figures([d[0] for d in draws], truth, latency)
        figures["seconds"] = round(statistics.median(r.signal_seconds[name] for r in rows), 4)
        count = min(len(d) for d in draws)
        if count > 1:
            a, b = [d[0] for d in draws], [d[1] for d in draws]
            figures["draw_tau"] = _num(metrics.kendall_tau(a, b))
            figures["draw_se"] = _num(metrics.bootstrap_se(a, b))
        signals[name] = figures
        if count > 1:
            mean = [statistics.fmean(d[:count]) for d in draws]
            averaged = signal_figures(mean, truth, latency)
            averaged["seconds"] = round(figures["seconds"] * count, 4)
            signals[f"{name}, mean of {count} draws"] = averaged
    entry["signals"] = signals
    entry["band_over_zero_cost"] = band_over_zero_cost(rows, signals, truth, latency)
    entry["supernet_recipes"] = supernet_recipes(rows, truth, latency)
    return entry


DEFAULT_SUPERNET = "supernet, supernet-uniform4-b32-e30-lr0.002"  # search --supernet's recipe


def supernet_recipes(
    rows: list[BenchRow], truth: list[float], latency: list[float]
) -> dict[str, Any]:
    """Each other supernet signal against the default recipe's: tau and band tau differences
    with their paired bootstrap SEs (a recipe is better only by more than its noise)."""
    if DEFAULT_SUPERNET not in rows[0].signals:
        return {}
    return {
        name: compare_signals(rows, name, DEFAULT_SUPERNET, truth, latency)
        for name in rows[0].signals
        if name.startswith("supernet") and name != DEFAULT_SUPERNET
    }


def compare_signals(
    rows: list[BenchRow],
    signal: str,
    versus: str,
    truth: list[float] | None = None,
    latency: list[float] | None = None,
) -> dict[str, Any]:
    """`signal` against `versus` on the same networks: the differences of their tau and band
    tau and the paired bootstrap SEs of those differences (one is better only by more than
    the noise of the table's network sample)."""
    truth = truth if truth is not None else [row.top1 for row in rows]
    latency = latency if latency is not None else [row.latency_ms[1] for row in rows]
    scores = [row.signals[signal][0] for row in rows]
    base = [row.signals[versus][0] for row in rows]
    tau, tau_se = metrics.paired_tau_difference(scores, base, truth)
    band, band_se = metrics.paired_tau_difference(scores, base, truth, latency)
    return {
        "versus": versus,
        "tau_difference": _num(tau),
        "tau_se": _num(tau_se),
        "band_difference": _num(band),
        "band_se": _num(band_se),
    }


TRAINED_SIGNALS = ("supernet", "short training")  # signals that learn from the data set


def band_over_zero_cost(
    rows: list[BenchRow], figures: dict[str, Any], truth: list[float], latency: list[float]
) -> dict[str, Any]:
    """For each signal that trains (supernet, short training): its band tau minus that of the
    zero-cost proxy (one weight draw; params and FLOPs count too) with the highest band tau,
    and the paired bootstrap SE of that difference (issue 18, section 3: above every proxy
    by more than 2 SE)."""
    zero_cost = [
        name
        for name in rows[0].signals
        if not name.startswith(TRAINED_SIGNALS) and figures[name]["band_tau"] is not None
    ]
    if not zero_cost:
        return {}
    best = max(zero_cost, key=lambda name: figures[name]["band_tau"])
    found = {}
    for name in rows[0].signals:
        if name.startswith(TRAINED_SIGNALS):
            scores = [row.signals[name][0] for row in rows]
            proxy = [row.signals[best][0] for row in rows]
            difference, se = metrics.paired_tau_difference(scores, proxy, truth, latency)
            found[name] = {"versus": best, "difference": _num(difference), "se": _num(se)}
    return found


def plan_means(rows: list[BenchRow]) -> dict[str, dict[str, Any]]:
    """Per transition plan (space.plan_of): its networks and the mean ground truth and mean
    supernet signal over them, best plan first. A few-shot supernet scores each plan with a
    part of its own; this shows whether the parts' levels order the plans as training does."""
    from neonas.arch import ArchConfig
    from neonas.space import plan_of

    names = sorted({n for row in rows for n in row.signals if n.startswith("supernet")})
    groups: dict[str, list[BenchRow]] = {}
    for row in rows:
        groups.setdefault(plan_of(ArchConfig.from_dict(row.config)), []).append(row)
    means = {
        plan: {
            "networks": len(members),
            "top1": statistics.fmean(row.top1 for row in members),
            **{n: statistics.fmean(statistics.fmean(r.signals[n]) for r in members) for n in names},
        }
        for plan, members in groups.items()
    }
    return dict(sorted(means.items(), key=lambda item: -item[1]["top1"]))


def plans_text(rows: list[BenchRow]) -> str:
    """plan_means as a table, with each signal's Kendall tau over the plan means."""
    means = plan_means(rows)
    names = [n for n in next(iter(means.values())) if n.startswith("supernet")]
    lines = [
        "| plan | networks | top-1 % | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for plan, entry in means.items():
        values = " | ".join(f"{entry[n]:.1f}" for n in names)
        lines.append(f"| {plan} | {entry['networks']} | {entry['top1']:.1f} | {values} |")
    truth = [entry["top1"] for entry in means.values()]
    taus = " | ".join(
        _fmt(metrics.kendall_tau(truth, [e[n] for e in means.values()])) for n in names
    )
    lines.append(f"| tau over the plans | | | {taus} |")
    return "\n".join(lines)


def report(folder: Path | None = None) -> dict[str, Any]:
    """The contract's JSON object, from the tables under `folder` (default: the committed)."""
    return {
        "datasets": {name: dataset_report(load_table(name, folder)) for name in datasets(folder)},
        "samplers": sampler_figures("digits", folder),
        # the same searches on SynFlow, the zero-cost default, instead of the supernet
        "samplers_synflow": sampler_figures("digits", folder, landscape="synflow"),
        "end_to_end": end_to_end_results(folder),
    }


def report_text(result: dict[str, Any], folder: Path | None = None) -> str:
    """The report as Markdown tables, one per data set."""
    lines = []
    for name, entry in result["datasets"].items():
        meta = provenance(name, folder)
        recipe = meta["recipe"]
        lines += [
            f"## {name}: {entry['networks']} of {meta['networks_planned']} networks, "
            f"{entry['seeds']} seeds",
            "",
            f"Ground truth: {recipe['recipe']} recipe, {recipe['epochs']} epochs, "
            f"{recipe['train_images']} training / {recipe['val_images']} validation images; "
            f"machines: {'; '.join(meta['machines'])}; {meta['first_finished']} to "
            f"{meta['last_finished']}.",
        ]
        if not entry["signals"]:
            lines += ["", "Too few networks for rank figures.", ""]
            continue
        low, high = entry["top1_range"]
        ceiling = entry["ceiling"]
        lines += [
            f"Top-1 (mean of seeds) {low:.1f}-{high:.1f} %; ceiling (seed 0 vs seed 1) tau "
            f"{_fmt(ceiling['tau'])} (SE {_fmt(ceiling['se'], '.2f')}); {entry['band_pairs']} pairs "
            "within +-10 % predicted Ascend 310 latency (batch 1).",
            "",
            "| signal | tau | SE | Spearman | top-10 % recall | band tau | band SE | "
            "draw tau (SE) | s |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for signal, f in entry["signals"].items():
            draw = "-"
            if "draw_tau" in f:
                draw = f"{_fmt(f['draw_tau'])} ({_fmt(f['draw_se'], '.2f')})"
            lines.append(
                f"| {signal} | {_fmt(f['tau'])} | {_fmt(f['se'], '.2f')} | "
                f"{_fmt(f['spearman'])} | {_fmt(f['top10_recall'], '.2f')} | "
                f"{_fmt(f['band_tau'])} | {_fmt(f['band_se'], '.2f')} | {draw} | "
                f"{f['seconds']:.2g} |"
            )
        lines.append("")
        over = entry.get("band_over_zero_cost", {})
        if over:
            lines += [
                "Band tau of each trained signal minus the best zero-cost proxy's "
                f"({next(iter(over.values()))['versus']}), paired bootstrap SE:",
                "",
                "| signal | band tau difference | SE | difference / SE |",
                "|---|---|---|---|",
            ]
            for signal, f in over.items():
                ratio = "-" if not f["se"] else f"{f['difference'] / f['se']:+.1f}"
                lines.append(
                    f"| {signal} | {_fmt(f['difference'])} | {_fmt(f['se'], '.2f')} | {ratio} |"
                )
            lines.append("")
        recipes = entry.get("supernet_recipes", {})
        if recipes:
            lines += [
                f"Each supernet signal minus the default recipe's ({DEFAULT_SUPERNET}), paired "
                "bootstrap SE:",
                "",
                "| signal | tau difference | SE | band tau difference | SE |",
                "|---|---|---|---|---|",
            ]
            for signal, f in recipes.items():
                lines.append(
                    f"| {signal} | {_fmt(f['tau_difference'])} | {_fmt(f['tau_se'], '.2f')} | "
                    f"{_fmt(f['band_difference'])} | {_fmt(f['band_se'], '.2f')} |"
                )
            lines.append("")
    return "\n".join(lines) if lines else "no NeoCell-Bench tables"


def _fmt(value: float | None, spec: str = "+.2f") -> str:
    return "-" if value is None else format(value, spec)

"""How a session ends: pareto.json, pareto.png, best/*.yaml and the summary printed, from the
full-fidelity trials only, with a warning when the ranking is noise."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from neonas.search.export import write_configs
from neonas.search.pareto import plot_pareto, write_pareto
from neonas.search.progress import front_table
from neonas.search.records import TrialRecord, TrialStatus, TrialTable
from neonas.search.references import reference_points
from neonas.search.run_folder import RunFolder
from neonas.search.settings import SearchSettings
from neonas.si import format_si
from neonas.space import SearchSpace


@dataclass
class SearchOutcome:
    """How a session ended."""

    run_dir: Path
    completed: int
    target: int
    front: list[TrialRecord] = field(default_factory=list)
    stop_reason: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def reached_target(self) -> bool:
        return self.completed >= self.target


def finish_run(
    run: RunFolder,
    settings: SearchSettings,
    table: TrialTable,
    stop_reason: str | None,
    console: Console,
    space: SearchSpace | None = None,
) -> SearchOutcome:
    """pareto.json, pareto.png, best/*.yaml and the summary, from full-fidelity trials only;
    the reference networks that fit the budget are scored and marked on the plot."""
    rows = table.with_status("completed")
    signal = settings.eval.accuracy_signal
    budgets = {
        "flops": settings.budget_flops,
        "params": settings.budget_params,
        "latency_ms": settings.eval.latency_budget_ms,
    }
    references, notes = reference_points(space.smallest(), settings) if space else ([], [])
    front = write_pareto(run.pareto_json, rows, budgets, signal, references)
    title = f"{run.path.name}: {len(rows)} trials, hw {settings.eval.hw}, budget {budget_text(settings)}"
    plot_pareto(run.pareto_png, rows, budgets, title, signal, references)
    if front:
        write_configs(front, run.best_dir)
        console.print(
            front_table(
                rows,
                f"Pareto front of {run.path.name} ({len(front)} of {len(rows)} completed)",
                signal,
            )
        )
    for reference in references:
        console.print(
            f"reference {reference.name}: {signal} {reference.accuracy:.4g} at "
            f"{reference.latency_ms:.3g} ms, {format_si(reference.flops)} FLOPs (marked on pareto.png)"
        )
    for note in notes:
        console.print(note)
    warning = chance_warning(settings, table)
    if warning:
        console.print(f"[yellow]warning:[/] {warning}")
    counts = {status.value: table.count(status) for status in TrialStatus}
    console.print(
        f"{counts['completed']}/{settings.trials} completed, {counts['rejected']} rejected, "
        f"{counts['duplicate']} duplicates, {counts['failed']} failed"
        + pruned_text(table)
        + (f"; stopped early: {stop_reason}" if stop_reason else "")
        + f"\nrun folder: {run.path}  (best configs in {run.best_dir}, study: sqlite:///{run.study_db})"
    )
    return SearchOutcome(run.path, counts["completed"], settings.trials, front, stop_reason, counts)


def chance_warning(settings: SearchSettings, table: TrialTable) -> str | None:
    """What to raise when every short-training score is within noise of chance, else None.

    Noise: two binomial standard deviations of a top-1 at chance on the validation images used.
    """
    rows = table.with_status("completed", "pruned")
    if not settings.eval.short_training or not rows:
        return None
    from neonas.train.data import detect_layout, load_split

    layout = detect_layout(settings.eval.data)
    val = min(settings.eval.max_val_images, len(load_split(layout, "val", lambda image: image)))
    chance = 1 / len(layout.classes)
    band = 2 * (chance * (1 - chance) / val) ** 0.5
    best = max(row.metrics["accuracy"] for row in rows)
    if best > 100 * (chance + band):
        return None
    return (
        f"every trial scored within noise of chance (best {best:.1f} %; chance "
        f"{100 * chance:.1f} % +- {100 * band:.1f} % for {len(layout.classes)} classes on {val} "
        f"validation images): the ranking is noise; raise --epochs (now {settings.eval.epochs}) "
        f"or --train-images (now {settings.eval.max_train_images})"
    )


def pruned_text(table: TrialTable) -> str:
    """'; ASHA stopped 5 trials early (3 after epoch 1, 2 after epoch 2)', or nothing."""
    rungs = Counter(row.metrics.get("epochs") for row in table.with_status("pruned"))
    if not rungs:
        return ""
    detail = ", ".join(f"{count} after epoch {epoch}" for epoch, count in sorted(rungs.items()))
    return f"; ASHA stopped {sum(rungs.values())} trials early ({detail})"


def budget_text(settings: SearchSettings) -> str:
    parts = []
    if settings.budget_flops:
        parts.append(f"{format_si(settings.budget_flops)} FLOPs")
    if settings.budget_params:
        parts.append(f"{format_si(settings.budget_params)} params")
    if settings.eval.latency_budget_ms:
        parts.append(f"{settings.eval.latency_budget_ms:g} ms")
    return ", ".join(parts) or "none"

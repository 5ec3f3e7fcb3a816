"""Writing the best architectures of a run as ArchConfig YAML files (`neonas export`)."""

from __future__ import annotations

import json
from pathlib import Path

from neonas.arch import ArchConfig
from neonas.errors import UserError
from neonas.io import write_json_atomic
from neonas.search.objectives import best_first
from neonas.search.pareto import FRONT, front_entry, pareto_front
from neonas.search.records import TrialRecord, TrialStatus
from neonas.search.run_folder import RunFolder

ORDERS = ("pareto", "accuracy", "latency")
RANKED_BY = {"accuracy": "accuracy", "latency": "latency_ms"}  # --by -> the metric ranked first
DEFAULT_TOP = 5  # for --by accuracy / latency; --by pareto writes the whole front by default


def select_best(
    rows: list[TrialRecord], by: str = "pareto", top: int | None = None
) -> list[TrialRecord]:
    """The Pareto front (fastest first), or the completed trials by accuracy or latency; top K.

    Only completed trials (full fidelity): one that ASHA stopped early is not comparable."""
    if by not in ORDERS:
        raise UserError(f"unknown order {by!r}: use one of {', '.join(ORDERS)}")
    if top is not None and top < 1:
        raise UserError(f"--top must be at least 1, got {top}")
    done = [row for row in rows if row.status == TrialStatus.COMPLETED]
    if by == "pareto":
        chosen = pareto_front(done)
    else:  # best first in the metric's own direction (objectives.py), ties by the other one
        key = best_first(RANKED_BY[by], FRONT)
        chosen = sorted(done, key=lambda row: key(row.metrics))
    limit = top if top is not None else (len(chosen) if by == "pareto" else DEFAULT_TOP)
    return chosen[:limit]


def accuracy_signal(rows: list[TrialRecord]) -> str:
    """What the rows' accuracy is (e.g. 'naswot', 'short-training top-1'), as their run recorded it."""
    return next(
        (row.metrics["accuracy_signal"] for row in rows if "accuracy_signal" in row.metrics), ""
    )


def write_configs(rows: list[TrialRecord], out: str | Path) -> list[Path]:
    """One `<name>.yaml` per trial, and index.json (order, metrics) listing them.

    Files listed by a previous index.json in `out` are removed first, so the folder holds
    exactly this selection; other files there are left alone.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    index = out / "index.json"
    if index.is_file():
        for entry in json.loads(index.read_text()).get("configs", []):
            (out / Path(entry["file"]).name).unlink(missing_ok=True)
    written, entries = [], []
    for rank, row in enumerate(rows, start=1):
        config = ArchConfig.from_dict(row.config, f"trial {row.number}")
        path = config.save(out / f"{config.name}.yaml")
        written.append(path)
        entries.append({"rank": rank, "file": path.name, **front_entry(row)})
    write_json_atomic(index, {"accuracy_signal": accuracy_signal(rows), "configs": entries})
    return written


def export_run(
    run_dir: str | Path, by: str = "pareto", top: int | None = None, out: str | Path | None = None
) -> list[Path]:
    """Export the best configs of the run in `run_dir` (default target: RUN_DIR/best/)."""
    run = RunFolder(run_dir)
    run_dir = Path(run_dir)
    if not run.run_json.is_file():
        raise UserError(f"{run_dir} is not a search run folder (it has no {run.run_json.name})")
    from neonas.search.study import load_trials  # optuna, only to read a run

    rows = load_trials(run_dir).with_status("completed")
    if not rows:
        raise UserError(
            f"run {run_dir} has no completed trials yet: resume it with `neonas search --resume {run_dir}`"
        )
    return write_configs(select_best(rows, by, top), out or run.best_dir)

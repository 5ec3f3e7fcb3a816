"""Whole searches on the tiny space with a real local Ray, Optuna on a real SQLite file."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState
from PIL import Image
from rich.console import Console

from evaluators.flops import count_flops
from neonas.arch import ArchConfig
from neonas.models import build_model
from neonas.search import SearchSettings, resume_run, start_run
from neonas.search.settings import EvalSettings
from neonas.search.study import STUDY_NAME, load_trials, storage_url
from neonas.search.trial import score_candidate
from neonas.signals import DEFAULT_ZERO_COST

BUDGET = 7_000_000  # about half of the tiny space's random points are over it

# Ray workers import nothing from tests/: ship this module's evaluators to them by value.
pytest.importorskip("ray").cloudpickle.register_pickle_by_value(sys.modules[__name__])


def settings(tmp_path: Path, name: str, **fields) -> SearchSettings:
    evaluation = fields.pop("eval", {})
    return SearchSettings(
        name=name,
        results_dir=str(tmp_path),
        space="tiny",
        trials=fields.pop("trials", 6),
        concurrency=2,
        eval=EvalSettings(hw="ascend", proxy_batch=8, **evaluation),
        **fields,
    )


def quiet() -> Console:
    return Console(file=open("/dev/null", "w"))  # noqa: SIM115  (closed with the process)


def study_trials(run_dir: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(
        study_name=STUDY_NAME, storage=storage_url(run_dir / "study.db")
    ).trials


@pytest.fixture(scope="module")
def budget_run(ray_session, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("budget")
    outcome = start_run(settings(tmp, "budget", budget_flops=BUDGET), console=quiet())
    return outcome


def test_run_reaches_its_count_of_completed_trials(budget_run) -> None:
    table = load_trials(budget_run.run_dir)
    assert budget_run.completed == table.count("completed") == 6
    rows = table.with_status("completed")
    assert len(rows) == 6 and all(
        row.metrics["accuracy_signal"] == DEFAULT_ZERO_COST for row in rows
    )


def test_over_budget_points_are_recorded_not_counted_and_told_to_optuna(budget_run) -> None:
    table = load_trials(budget_run.run_dir)
    rejected = table.with_status("rejected")
    assert len(rejected) == budget_run.counts["rejected"] >= 1, (
        "the tiny space at 7M FLOPs always proposes some over-budget points"
    )
    assert all(
        "over the budget of 7.00M" in row.reason and row.metrics["flops"] > BUDGET
        for row in rejected
    )
    trials = {t.number: t for t in study_trials(budget_run.run_dir)}
    for row in rejected:
        assert trials[row.number].state == TrialState.PRUNED
        assert trials[row.number].constraints["flops"] > 0
    # Rejected points never became Ray trials: the Tune experiment has only evaluated ones.
    ray_trials = {p.name for p in (budget_run.run_dir / "tune" / "session-1").glob("trial-*")}
    assert ray_trials == {f"trial-{row.number:05d}" for row in table.with_status("completed")}


def test_study_complete_trials_are_the_completed_trials(budget_run) -> None:
    completed = {row.number for row in load_trials(budget_run.run_dir).with_status("completed")}
    trials = study_trials(budget_run.run_dir)
    assert {t.number for t in trials if t.state == TrialState.COMPLETE} == completed
    assert not [t for t in trials if t.state == TrialState.RUNNING]


def test_best_configs_are_all_within_budget(budget_run) -> None:
    best = sorted((budget_run.run_dir / "best").glob("*.yaml"))
    assert best and len(best) == len(budget_run.front)
    for path in best:
        config = ArchConfig.load(path)
        flops = count_flops(build_model(config), (1, 3, config.input_size, config.input_size)).flops
        assert flops <= BUDGET


def test_run_folder_holds_everything_to_resume_export_and_plot(budget_run) -> None:
    run_dir = budget_run.run_dir
    for name in (
        "run.json",
        "space.yaml",
        "trials.csv",
        "study.db",
        "pareto.json",
        "pareto.png",
    ):
        assert (run_dir / name).is_file(), name
    info = json.loads((run_dir / "run.json").read_text())
    assert info["settings"]["budget_flops"] == BUDGET and info["settings"]["eval"]["seed"] == 0
    assert {"torch", "ray", "optuna"} <= set(info["versions"])
    assert (
        info["sessions"][0]["completed"] == 6
        and info["space"]["accuracy_signal"] == DEFAULT_ZERO_COST
    )
    csv_lines = (run_dir / "trials.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(load_trials(run_dir).rows)  # one line per trial
    assert not (run_dir / "run.lock").exists()
    front = json.loads((run_dir / "pareto.json").read_text())["front"]
    assert [entry["number"] for entry in front] == [row.number for row in budget_run.front]


# --- failures ---------------------------------------------------------------------------------


def flaky_score(config: ArchConfig, settings: EvalSettings, report) -> None:
    """The real evaluation, except that some trials crash, run out of memory or return NaN."""
    number = int(config.name.rsplit("-t", 1)[1])
    if number == 1:
        raise RuntimeError("simulated crash inside the trial")
    if number == 2:
        torch.empty(2**62, dtype=torch.uint8)  # the allocator refuses: a real out-of-memory error
    if number == 3:
        score_candidate(config, settings, lambda metrics: report({**metrics, "accuracy": math.nan}))
        return
    score_candidate(config, settings, report)


def test_the_gp_sampler_runs_a_search_past_its_random_start(ray_session, tmp_path) -> None:
    from neonas.search.run_folder import RunFolder

    outcome = start_run(settings(tmp_path, "gp", trials=8, sampler="gp"), console=quiet())
    assert outcome.completed == load_trials(outcome.run_dir).count("completed") == 8
    assert RunFolder(outcome.run_dir).settings().sampler == "gp"  # 4 random, then GP's


def test_crashed_oom_and_nan_trials_are_failed_with_reasons_and_the_sweep_goes_on(
    ray_session, tmp_path
) -> None:
    outcome = start_run(
        settings(tmp_path, "flaky", trials=3, sampler="nsga2"),
        score=flaky_score,
        console=quiet(),
    )
    table = load_trials(outcome.run_dir)
    assert outcome.completed == table.count("completed") == 3
    reasons = {row.number: row.reason for row in table.with_status("failed")}
    assert "RuntimeError: simulated crash inside the trial" in reasons[1]
    assert "allocate" in reasons[2]
    assert "FloatingPointError: non-finite result: accuracy nan" in reasons[3]
    states = {t.number: t.state for t in study_trials(outcome.run_dir)}
    failed = table.with_status("failed")
    assert len(failed) == 3 and all(states[row.number] == TrialState.FAIL for row in failed)


# --- objectives, short training, time budget ---------------------------------------------------


def test_scalar_objective_optimises_one_mnas_reward_under_a_latency_budget(
    ray_session, tmp_path
) -> None:
    # The tiny space predicts 0.36 to 0.56 ms on the Ascend 310 (overhead-bound networks).
    evaluation = {"objective": "scalar", "latency_target_ms": 0.40, "latency_budget_ms": 0.44}
    outcome = start_run(settings(tmp_path, "scalar", trials=3, eval=evaluation), console=quiet())
    table = load_trials(outcome.run_dir)
    rows = table.with_status("completed")
    assert outcome.completed == len(rows) == 3  # latency rejections inside Ray do not count
    for row in rows:
        m = row.metrics
        assert m["reward"] == pytest.approx(m["accuracy"] * (m["latency_ms"] / 0.40) ** -0.07)
        assert m["latency_ms"] <= 0.44
    complete = [t for t in study_trials(outcome.run_dir) if t.state == TrialState.COMPLETE]
    assert len(complete) == 3
    assert sorted(t.value for t in complete) == sorted(row.metrics["reward"] for row in rows)
    # The seeded start-up draws include slower networks (about 0.49 ms): they are rejected
    # inside their trial, before the proxy, with the latency constraint.
    slow = [row for row in table.with_status("rejected") if "latency" in row.reason]
    assert len(slow) >= 1 and all(
        row.constraints["latency"] > 0 and "accuracy" not in row.metrics for row in slow
    )


def write_image_folder(root: Path, classes: int = 3, per_class: int = 6) -> Path:
    """An easy ImageFolder: each class is one colour, with noise."""
    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", per_class), ("val", per_class // 2)):
        for label in range(classes):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for index in range(count):
                pixels = torch.rand(32, 32, 3, generator=generator) * 60
                pixels[..., label % 3] += 180
                Image.fromarray(pixels.clamp(0, 255).byte().numpy()).save(folder / f"{index}.png")
    return root


def test_data_runs_short_training_reporting_top1_per_epoch(ray_session, tmp_path) -> None:
    data = write_image_folder(tmp_path / "data")
    evaluation = {"data": str(data), "signal": "short-training", "epochs": 2, "batch_size": 8}
    outcome = start_run(settings(tmp_path, "trained", trials=2, eval=evaluation), console=quiet())
    table = load_trials(outcome.run_dir)
    rows = table.with_status("completed")
    assert len(rows) == 2
    for row in table.with_status("completed", "pruned"):
        assert row.metrics["accuracy_signal"] == "short-training top-1"
        assert 0 <= row.metrics["accuracy"] <= 100
        # Completed trials trained every epoch; ASHA's early stops are pruned, never completed.
        assert row.metrics["epochs"] == (2 if row.status == "completed" else 1)
        progress = (
            outcome.run_dir / "tune" / "session-1" / f"trial-{row.number:05d}" / "progress.csv"
        )
        assert progress.read_text().count("\n") - 1 == row.metrics["epochs"]  # one report per epoch


def test_time_budget_stops_a_session_and_resume_finishes_the_run(ray_session, tmp_path) -> None:
    first = start_run(settings(tmp_path, "timed", trials=4, time_budget_s=0.5), console=quiet())
    assert not first.reached_target and "time budget" in first.stop_reason
    # Repeating a defining option unchanged is fine; only --trials, --time-budget, ... may change.
    overrides = {"time_budget_s": 300.0, "space": "tiny", "eval.hw": "ascend"}
    resumed = resume_run("timed", overrides, str(tmp_path), console=quiet())
    assert resumed.completed == 4
    table = load_trials(resumed.run_dir)
    assert {row.session for row in table.with_status("completed")} <= {1, 2}
    stopped = table.with_status("stopped")
    assert all(row.reason for row in stopped)
    assert len(table.rows) == 4 + len(stopped) + table.count("rejected", "duplicate", "failed")


def always_failing(config: ArchConfig, settings: EvalSettings, report) -> None:
    raise RuntimeError("no device for this trial")


def test_a_sweep_in_which_every_trial_fails_ends_after_max_failures(ray_session, tmp_path) -> None:
    run = settings(tmp_path, "failing", trials=3, max_failures=2)
    outcome = start_run(run, score=always_failing, console=quiet())
    table = load_trials(outcome.run_dir)
    assert outcome.completed == 0 and table.count("failed") >= 2
    assert outcome.stop_reason.startswith(
        "2 trials in a row failed (the last: RuntimeError: no device"
    )

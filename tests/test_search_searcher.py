"""The searcher's stopping rules and outcome states, driven as Ray Tune drives it (no Ray run)."""

from __future__ import annotations

import math

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from neonas.search import searcher as searcher_module
from neonas.search.records import TrialTable
from neonas.search.searcher import StudySearcher
from neonas.search.study import make_sampler
from neonas.space import load_space

LATENCY_REJECTION = {
    "status": "rejected",
    "reason": "latency 0.3 ms over the budget of 0.1 ms",
    "constraint_latency": 2.0,
    "accuracy": -math.inf,
    "reward": -math.inf,
    "latency_ms": 0.3,
}


def make_searcher(target: int = 3, **options) -> StudySearcher:
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=make_sampler("tpe", 0, target)
    )
    return StudySearcher(
        space=load_space("tiny"),
        study=study,
        objective="pareto",
        table=TrialTable(),
        target=target,
        session=1,
        run_name="unit",
        **options,
    )


def result(accuracy: float, **extra) -> dict:
    return {"status": "completed", "accuracy": accuracy, "latency_ms": 0.1, **extra}


def states(searcher: StudySearcher) -> list[TrialState]:
    return [trial.state for trial in searcher.study.trials]


def test_latency_rejections_inside_ray_are_not_completed_and_end_the_run(monkeypatch) -> None:
    monkeypatch.setattr(searcher_module, "MAX_REFUSED_IN_A_ROW", 3)
    searcher = make_searcher()
    for index in range(3):
        assert isinstance(searcher.suggest(f"t{index}"), dict)
        searcher.on_trial_complete(f"t{index}", LATENCY_REJECTION)
    assert searcher.completed == 0 and searcher.table.count("rejected") == 3
    assert states(searcher) == [TrialState.PRUNED] * 3
    assert searcher.suggest("t3") == Searcher.FINISHED
    assert searcher.stop_reason == (
        "3 points in a row could not run (3 over the latency budget): "
        "raise --latency-budget or use a smaller space"
    )


def test_points_over_the_flops_budget_end_the_run_naming_the_budget(monkeypatch) -> None:
    monkeypatch.setattr(searcher_module, "MAX_REFUSED_IN_A_ROW", 4)
    searcher = make_searcher(budget_flops=1)
    assert searcher.suggest("t0") == Searcher.FINISHED
    assert len(searcher.study.trials) == 4 and searcher.table.count("rejected") == 4
    assert (
        "4 over the FLOPs budget" in searcher.stop_reason
        and "raise --budget" in searcher.stop_reason
    )


def test_an_exception_while_building_is_a_failure_and_failures_end_the_run(monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("no memory for the candidate")

    monkeypatch.setattr(searcher_module, "screen_candidate", broken)
    searcher = make_searcher(max_failures=2)
    assert searcher.suggest("t0") == Searcher.FINISHED
    assert searcher.table.count("failed") == 2 and searcher.table.count("rejected") == 0
    assert states(searcher) == [TrialState.FAIL] * 2
    assert searcher.stop_reason.startswith(
        "2 trials in a row failed (the last: could not be built: RuntimeError: no memory"
    )


def test_trials_failing_inside_ray_end_the_run_and_a_completion_resets_the_count() -> None:
    searcher = make_searcher(target=5, max_failures=2)
    searcher.suggest("t0")
    searcher.finish("t0", "failed", "RuntimeError: boom")  # what FailureReasons does
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", result(50.0))
    searcher.suggest("t2")
    searcher.finish("t2", "failed", "RuntimeError: boom")
    assert searcher.stop_reason is None  # 1 in a row since the completion
    searcher.suggest("t3")
    searcher.finish("t3", "failed", "RuntimeError: boom")
    assert searcher.suggest("t4") == Searcher.FINISHED
    assert "2 trials in a row failed (the last: RuntimeError: boom)" in searcher.stop_reason
    assert searcher.completed == 1 and searcher.table.count("failed") == 3


def test_a_trial_asha_stopped_early_is_pruned_not_completed() -> None:
    searcher = make_searcher(target=2, full_epochs=3)
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", result(30.0, epochs=1))
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", result(40.0, epochs=3))
    assert searcher.completed == 1
    assert [row.status for row in searcher.table.with_status("pruned", "completed")] == [
        "pruned",
        "completed",
    ]
    assert searcher.table.get(0).reason == "stopped by ASHA after epoch 1 of 3"
    assert states(searcher) == [TrialState.PRUNED, TrialState.COMPLETE]
    assert isinstance(searcher.suggest("t2"), dict)  # the pruned trial does not count: one more


def test_the_searcher_finishes_once_the_target_completed() -> None:
    searcher = make_searcher(target=2)
    searcher.suggest("t0")
    searcher.suggest("t1")
    assert searcher.suggest("t2") is None  # two in flight for a target of two: wait
    searcher.on_trial_complete("t0", result(10.0))
    searcher.on_trial_complete("t1", result(20.0))
    assert searcher.suggest("t2") == Searcher.FINISHED and searcher.completed == 2
    assert states(searcher) == [TrialState.COMPLETE] * 2


# A point of the tiny space: stage 0 in two unshifted 2x2 halves.
SPLIT = {
    "transitions": "1:1 1:1",
    "s0.shares": "0.5,0.5",
    "s0.c0.size": 2,
    "s0.c0.shift": False,
    "s0.c1.size": 2,
    "s0.c1.shift": False,
    "s0.depth": 1,
    "s0.width": 16,
    "s0.mlp_ratio": 2.0,
    "s1.shares": "1",
    "s1.c0.size": 3,
    "s1.c0.shift": True,
    "s1.depth": 1,
    "s1.width": 32,
    "s1.mlp_ratio": 2.0,
    "s2.shares": "1",
    "s2.c0.size": 4,
    "s2.c0.shift": True,
    "s2.depth": 1,
    "s2.width": 48,
    "s2.mlp_ratio": 2.0,
}


def test_a_resumed_run_does_not_evaluate_again_a_network_it_already_has() -> None:
    # Session 1 evaluates a point; session 2 (a resume: a new searcher over the same study, its
    # table read back from the study) is offered that network again and must not pay for it.
    # The stored config was renamed 'unit-t0000' and the new proposal is named 'tiny': the
    # duplicate check must compare networks, not names.
    first = make_searcher(target=1)
    first.study.enqueue_trial(SPLIT)
    assert first.suggest("t0")["number"] == 0
    first.on_trial_complete("t0", result(50.0))
    assert first.table.get(0).config["name"] == "unit-t0000"
    resumed = StudySearcher(
        space=load_space("tiny"),
        study=first.study,
        objective="pareto",
        table=TrialTable.from_study(first.study),
        target=2,
        session=2,
        run_name="unit",
    )
    resumed.study.enqueue_trial(SPLIT)
    proposal = resumed.suggest("t1")
    assert isinstance(proposal, dict) and proposal["number"] == 2  # trial 1 was not paid for
    assert resumed.table.get(1).status == "duplicate"
    assert resumed.table.get(1).reason == "same network as trial 0"


def test_one_network_spelled_two_ways_is_evaluated_once() -> None:
    # Two unshifted 2x2 halves are the single 2x2 group: the same network, other params.
    split = SPLIT
    single = {
        key: value for key, value in split.items() if key not in ("s0.c1.size", "s0.c1.shift")
    }
    single["s0.shares"] = "1"
    searcher = make_searcher(target=2)
    searcher.study.enqueue_trial(split)
    searcher.study.enqueue_trial(single)
    first = searcher.suggest("t0")
    assert isinstance(first, dict) and first["number"] == 0
    searcher.on_trial_complete("t0", result(50.0))
    second = searcher.suggest("t1")
    assert isinstance(second, dict) and second["number"] == 2  # trial 1 was not paid for
    duplicates = searcher.table.with_status("duplicate")
    assert [row.number for row in duplicates] == [1]
    assert duplicates[0].reason == "same network as trial 0"

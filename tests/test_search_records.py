"""Trial records read from the study, Pareto front, export and crash repair (no Ray needed)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import optuna
import pytest
from optuna.study import StudyDirection
from optuna.trial import TrialState

from neonas.arch import ArchConfig
from neonas.cli import main
from neonas.errors import UserError
from neonas.search.export import export_run, select_best
from neonas.search.pareto import pareto_front, plot_pareto, write_pareto
from neonas.search.progress import ProgressDisplay
from neonas.search.records import (
    OUTCOME_ATTR,
    CsvLog,
    TrialRecord,
    TrialStatus,
    TrialTable,
    csv_row,
)
from neonas.search.study import (
    load_study,
    load_trials,
    make_sampler,
    open_storage,
    open_study,
    repair,
    tell_record,
)
from neonas.space import load_space


def completed(
    number: int, accuracy: float, latency: float, config: ArchConfig | None = None
) -> TrialRecord:
    space = load_space("tiny")
    config = config or space.sample(random.Random(number))
    config = config.model_copy(update={"name": f"run-t{number:04d}"})
    return TrialRecord(
        number=number,
        status="completed",
        params=space.params_of(config) or {},
        config=config.to_dict(),
        metrics={
            "accuracy": accuracy,
            "latency_ms": latency,
            "flops": 5e6,
            "params": 4e4,
            "latency_source": "predicted",
        },
        finished=1.0,
    )


def tell(study: optuna.Study, record: TrialRecord) -> None:
    """Finish the study's next trial as `record`, the way the searcher does (ask, tell_record)."""
    if record.params:
        study.enqueue_trial(record.params)
    trial = study.ask()
    if record.params:
        load_space("tiny").suggest(trial)
    assert trial.number == record.number
    tell_record(study, trial, record, "pareto")


@pytest.fixture(scope="module")
def template_run(tmp_path_factory) -> Path:
    """Built once (creating an SQLite study takes seconds); each test gets a copy."""
    folder = tmp_path_factory.mktemp("template")
    (folder / "run.json").write_text("{}")
    study = open_study(open_storage(folder / "study.db"), "pareto")
    for row in (
        completed(0, 100.0, 1.0),
        completed(1, 120.0, 2.0),
        completed(2, 110.0, 3.0),  # dominated by 1
        completed(3, 130.0, 4.0),
        TrialRecord(number=4, status="rejected", reason="12M flops over the budget of 10M"),
        TrialRecord(number=5, status="failed", reason="RuntimeError: boom"),
    ):
        tell(study, row)
    return folder


@pytest.fixture
def run_dir(template_run, tmp_path) -> Path:
    return Path(shutil.copytree(template_run, tmp_path / "run"))


def test_records_round_trip_through_the_study(run_dir) -> None:
    again = load_trials(run_dir)
    assert [row.number for row in again.with_status("completed")] == [0, 1, 2, 3]
    assert again.get(4).reason == "12M flops over the budget of 10M"
    assert again.count("failed") == 1 and len(again.rows) == 6
    states = [
        t.state
        for t in optuna.load_study(
            study_name="neonas", storage=f"sqlite:///{run_dir / 'study.db'}"
        ).trials
    ]
    assert states == [TrialState.COMPLETE] * 4 + [TrialState.PRUNED, TrialState.FAIL]


def test_a_status_is_stored_as_its_word_and_read_back_as_the_enum(run_dir) -> None:
    # Runs made before the Enum stored plain words; the study and trials.csv still hold them.
    record = TrialRecord(number=9, status="duplicate", reason="same network as trial 1")
    assert record.status is TrialStatus.DUPLICATE and record.status == "duplicate"
    assert type(record.outcome()["status"]) is str and record.outcome()["status"] == "duplicate"
    assert json.loads(json.dumps(record.outcome()))["status"] == "duplicate"
    assert csv_row(record)[1] == "duplicate" and f"{record.status:<10}|" == "duplicate |"
    again = load_trials(run_dir)
    assert [row.status for _, row in sorted(again.rows.items())][-2:] == ["rejected", "failed"]
    assert all(isinstance(row.status, TrialStatus) for row in again.rows.values())
    with pytest.raises(ValueError, match="unknown trial status 'done'"):
        TrialRecord(number=10, status="done")


def test_trials_csv_is_written_from_the_study_and_appended(run_dir) -> None:
    log = CsvLog(run_dir / "trials.csv")
    table = load_trials(run_dir)
    log.rewrite(table)
    log.append(completed(6, 90.0, 0.5))
    lines = (run_dir / "trials.csv").read_text().splitlines()
    assert len(lines) == 1 + 6 + 1 and lines[0].startswith("number,status,accuracy")
    assert lines[1].startswith("0,completed,100.0") and lines[-1].startswith("6,completed,90.0")
    assert not list(run_dir.glob(".*.tmp"))  # atomic writes leave no temp files behind


def test_pareto_front_keeps_only_undominated_trials_fastest_first(run_dir) -> None:
    front = pareto_front(load_trials(run_dir).with_status("completed"))
    assert [row.number for row in front] == [0, 1, 3]


def test_pareto_front_drops_points_tied_on_one_objective_and_worse_on_the_other() -> None:
    rows = [
        completed(0, 100.0, 1.0),
        completed(1, 100.0, 2.0),  # as accurate as 0, slower: dominated
        completed(2, 120.0, 3.0),
        completed(3, 110.0, 3.0),  # as fast as 2, less accurate: dominated
        completed(4, 120.0, 3.0),  # the same point as 2: neither dominates the other
    ]
    assert [row.number for row in pareto_front(rows)] == [0, 2, 4]


def test_the_study_maximises_accuracy_and_reward_and_minimises_latency(run_dir) -> None:
    # Optuna's own front (what TPE and NSGA-II steer towards) is the run's Pareto front; with
    # the directions swapped, the sampler would chase slow, inaccurate networks.
    study = load_study(run_dir / "study.db")
    assert study.directions == [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
    assert sorted(trial.number for trial in study.best_trials) == [0, 1, 3]
    scalar = open_study(optuna.storages.InMemoryStorage(), "scalar")
    for reward in (0.5, 0.9, 0.7):
        trial = scalar.ask()
        record = TrialRecord(number=trial.number, status="completed", metrics={"reward": reward})
        tell_record(scalar, trial, record, "scalar")
    assert scalar.best_trial.number == 1


def test_a_run_made_when_the_reward_was_stored_as_score_resumes_and_reads_it_as_reward() -> None:
    # Runs made before the rename stored the MnasNet reward as "score" in each trial's outcome.
    study = open_study(optuna.storages.InMemoryStorage(), "scalar")
    old = {"status": "completed", "metrics": {"accuracy": 60.0, "latency_ms": 0.4, "score": 0.58}}
    told = study.ask()
    told.set_user_attr(OUTCOME_ATTR, old)
    study.tell(told, 0.58)
    killed = study.ask()  # a driver killed between the outcome and the tell
    killed.set_user_attr(OUTCOME_ATTR, old)
    assert repair(study, "scalar") == []  # told from its outcome: the reward is found
    rows = TrialTable.from_study(study).with_status(TrialStatus.COMPLETED)
    assert [row.metrics for row in rows] == [
        {"accuracy": 60.0, "latency_ms": 0.4, "reward": 0.58}
    ] * 2
    assert [trial.value for trial in study.trials] == [0.58, 0.58]


def test_pareto_json_and_plot_are_written_with_the_reference_networks(run_dir) -> None:
    from neonas.search.references import Reference

    rows = load_trials(run_dir).with_status("completed")
    reference = Reference("NeoNeXt-T", 125.0, 2.5, 4_389_679_104, 27_608_680)
    write_pareto(run_dir / "pareto.json", rows, {"flops": 10_000_000}, "naswot", [reference])
    data = json.loads((run_dir / "pareto.json").read_text())
    assert [entry["number"] for entry in data["front"]] == [0, 1, 3] and data["completed"] == 4
    assert data["accuracy_signal"] == "naswot" and data["references"] == [reference.to_dict()]
    plot_pareto(
        run_dir / "pareto.png",
        rows,
        {"flops": 10_000_000, "latency_ms": 3.5},
        "test",
        "naswot",
        [reference],
    )
    assert (run_dir / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_line_says_done_total_rejected_failed_best_elapsed_and_eta(run_dir) -> None:
    table = load_trials(run_dir)
    display = ProgressDisplay(table, total=10, signal="naswot")
    display.done_at_start = 2  # two trials finished since this session started
    line = display.line(table.get(3))
    assert line.startswith("[  4/10] trial    3")
    assert "rejected 1 failed 1" in line and "front 3, best naswot 130 @ 4 ms" in line
    assert "naswot 130  lat 4 ms" in line and " cells " in line
    assert "elapsed, ETA" in line and "ETA ?" not in line


def test_export_writes_the_front_as_loadable_configs(run_dir) -> None:
    paths = export_run(run_dir)
    assert sorted(p.name for p in paths) == ["run-t0000.yaml", "run-t0001.yaml", "run-t0003.yaml"]
    for path in paths:
        assert ArchConfig.load(path).name == path.stem
    index = json.loads((run_dir / "best" / "index.json").read_text())
    assert [entry["number"] for entry in index["configs"]] == [0, 1, 3]


def test_a_second_export_replaces_the_first_and_spares_other_files(run_dir) -> None:
    export_run(run_dir)
    (run_dir / "best" / "notes.txt").write_text("mine")
    export_run(run_dir, by="accuracy", top=2)
    assert sorted(p.name for p in (run_dir / "best").iterdir()) == [
        "index.json",
        "notes.txt",
        "run-t0001.yaml",
        "run-t0003.yaml",
    ]


def test_export_orders_by_accuracy_or_latency(run_dir) -> None:
    rows = load_trials(run_dir).with_status("completed")
    assert [r.number for r in select_best(rows, "accuracy", 3)] == [3, 1, 2]
    assert [r.number for r in select_best(rows, "latency")] == [0, 1, 2, 3]


def test_export_command_writes_to_out(run_dir, tmp_path, capsys) -> None:
    out = tmp_path / "picked"
    assert main(["export", str(run_dir), "--by", "latency", "--top", "1", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "run-t0000.yaml")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "nowhere"], "no search run 'nowhere'"),
        (["export", "{run}", "--top", "0"], "--top must be at least 1"),
        (["export", "{empty}"], "has no completed trials yet"),
    ],
)
def test_export_bad_input_is_one_line_and_status_2(
    run_dir, tmp_path, capsys, argv, message
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "run.json").write_text("{}")
    argv = [a.format(run=run_dir, empty=empty) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_export_of_a_folder_without_run_json_is_refused(tmp_path) -> None:
    with pytest.raises(UserError, match="not a search run folder"):
        export_run(tmp_path)


def test_repair_settles_trials_a_killed_driver_left_running(tmp_path) -> None:
    study = open_study(open_storage(tmp_path / "study.db"), "pareto")
    space = load_space("tiny")
    done, rejected, lost = study.ask(), study.ask(), study.ask()
    for trial in (done, rejected, lost):
        space.suggest(trial)
    # The outcomes of 0 and 1 were stored, then the driver died before telling Optuna;
    # trial 2 was still being evaluated.
    done.set_user_attr("outcome", completed(0, 150.0, 1.5).outcome())
    rejected.set_constraint("flops", 0.3)
    record = TrialRecord(number=1, status="rejected", constraints={"flops": 0.3}, reason="over")
    rejected.set_user_attr("outcome", record.outcome())

    reopened = open_study(open_storage(tmp_path / "study.db"), "pareto")
    assert repair(reopened, "pareto") == [lost.number]

    states = {t.number: t for t in reopened.get_trials()}
    assert states[0].state == TrialState.COMPLETE and states[0].values == [150.0, 1.5]
    assert states[1].state == TrialState.PRUNED and states[1].constraints == {"flops": 0.3}
    assert states[2].state == TrialState.FAIL
    waiting = [t for t in reopened.get_trials() if t.state == TrialState.WAITING]
    assert len(waiting) == 1 and waiting[0].system_attrs["fixed_params"] == lost.params
    table = load_trials(tmp_path)
    assert [row.status for _, row in sorted(table.rows.items())] == [
        "completed",
        "rejected",
        "lost",
    ]


def test_a_trial_asha_stopped_is_pruned_and_kept_off_the_front_and_export(run_dir) -> None:
    study = open_study(open_storage(run_dir / "study.db"), "pareto")
    early = completed(6, 500.0, 0.1)  # best on both axes, but measured after 1 epoch of 3
    early.status, early.metrics["epochs"] = "pruned", 1
    tell(study, early)
    table = load_trials(run_dir)
    assert (
        optuna.load_study(study_name="neonas", storage=f"sqlite:///{run_dir / 'study.db'}")
        .trials[6]
        .state
        == TrialState.PRUNED
    )
    assert [row.number for row in pareto_front(table.with_status(*table_statuses()))] == [0, 1, 3]
    assert [p.stem for p in export_run(run_dir, by="accuracy", top=1)] == ["run-t0003"]


def table_statuses() -> tuple[str, ...]:
    from neonas.search.records import TrialStatus

    return tuple(TrialStatus)


def test_tpe_learns_the_feasible_region_from_pruned_infeasible_trials() -> None:
    # The objective (y) says nothing about x; only the constraint does: points with x > 0.3 are
    # told as PRUNED with a positive constraint, as the searcher tells over-budget points.
    study = optuna.create_study(
        sampler=make_sampler("tpe", seed=0, trials=30), direction="maximize"
    )
    for _ in range(60):
        trial = study.ask()
        x, y = trial.suggest_float("x", 0.0, 1.0), trial.suggest_float("y", 0.0, 1.0)
        trial.set_constraint("flops", x / 0.3 - 1)
        if x > 0.3:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, y)
    late = [t.params["x"] for t in study.trials[-30:]]
    assert sum(x <= 0.3 for x in late) >= 15  # uniform sampling gives about 9 of 30


def test_a_run_whose_scores_are_all_at_chance_says_what_to_raise(tmp_path) -> None:
    from PIL import Image

    from neonas.search.settings import EvalSettings, SearchSettings
    from neonas.search.summary import chance_warning

    for split, count in (("train", 2), ("val", 100)):
        for label in range(4):
            folder = tmp_path / "data" / split / f"c{label}"
            folder.mkdir(parents=True)
            for index in range(count):
                Image.new("RGB", (8, 8), (label * 60, 0, 0)).save(folder / f"{index}.png")
    run = SearchSettings(
        name="x", eval=EvalSettings(data=str(tmp_path / "data"), signal="short-training", epochs=3)
    )

    def table(*accuracies: float) -> TrialTable:
        return TrialTable(completed(n, acc, 1.0) for n, acc in enumerate(accuracies))

    # 4 classes, 400 validation images: chance 25 %, two binomial sd 4.3 %.
    warning = chance_warning(run, table(24.0, 27.5, 29.2))
    assert warning == (
        "every trial scored within noise of chance (best 29.2 %; chance 25.0 % +- 4.3 % for 4 "
        "classes on 400 validation images): the ranking is noise; raise --epochs (now 3) or "
        "--train-images (now 2000)"
    )
    assert chance_warning(run, table(24.0, 31.0)) is None  # one trial learned something
    zero_cost = SearchSettings(name="x")
    assert chance_warning(zero_cost, table(24.0)) is None  # a proxy score has no chance level

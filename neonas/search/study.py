"""The run's Optuna study on SQLite: opening it, its sampler, and repairing it on resume.

Why a repair step and no storage heartbeat: Ray's OptunaSearch drives Optuna through
ask/tell, and Optuna only beats a trial's heartbeat inside `Study.optimize` (with ask it
warns that the heartbeat is not used), so a driver killed with SIGKILL leaves its trials
RUNNING forever. On resume the previous driver is known to be dead (the run lock), so
`reconcile` settles every RUNNING trial from the run's trial table, which is written before
Optuna is told: completed -> COMPLETE with its values, rejected -> PRUNED with constraints,
failed -> FAIL, and a trial the table does not know (in flight when the driver died) ->
FAIL, recorded as lost, and its point enqueued so it is evaluated again.
"""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from neonas.search.objectives import study_directions
from neonas.search.records import TrialRecord, TrialTable

STUDY_NAME = "neonas"


def storage_url(db_path: str | Path) -> str:
    return f"sqlite:///{Path(db_path).resolve()}"


def open_storage(db_path: str | Path) -> optuna.storages.RDBStorage:
    """SQLite storage with a generous lock timeout (the dashboard may read while we write)."""
    return optuna.storages.RDBStorage(
        storage_url(db_path), engine_kwargs={"connect_args": {"timeout": 60}}
    )


def open_study(storage: optuna.storages.BaseStorage, objective: str) -> optuna.Study:
    """The run's study, created on first use with the objective's directions."""
    return optuna.create_study(
        storage=storage,
        study_name=STUDY_NAME,
        directions=study_directions(objective),
        load_if_exists=True,
    )


def make_sampler(kind: str, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    """TPE (default; constant liar so concurrent trials spread out) or NSGA-II.

    Random start-up trials: a third of the run, 4 to 10. NSGA-II's population: a quarter of
    the run, 4 to 50, so that a short run still sees a few generations.
    """
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(
            seed=seed, population_size=max(4, min(50, trials // 4))
        )
    return optuna.samplers.TPESampler(
        seed=seed, constant_liar=True, n_startup_trials=max(4, min(10, trials // 3))
    )


def reconcile(study: optuna.Study, table: TrialTable, objective: str, session: int) -> list[int]:
    """Make study and table agree after a crash; returns the numbers of lost trials re-enqueued."""
    from neonas.search.searcher import tell_record

    lost = []
    for frozen in study.get_trials(deepcopy=False):
        row = table.get(frozen.number)
        if frozen.state == TrialState.RUNNING:
            trial = optuna.Trial(study, frozen._trial_id)
            if row is None:
                row = table.record(
                    TrialRecord(
                        number=frozen.number,
                        status="lost",
                        params=dict(frozen.params),
                        reason=(
                            "in flight when the driver stopped; its point is proposed again"
                            if frozen.params
                            else "the driver stopped while this trial was drawing its point"
                        ),
                        session=session,
                        started=frozen.datetime_start.timestamp() if frozen.datetime_start else 0.0,
                    )
                )
                if frozen.params:
                    study.enqueue_trial(dict(frozen.params), user_attrs={"retry_of": frozen.number})
                lost.append(frozen.number)
            tell_record(study, trial, row, objective)
        elif frozen.state != TrialState.WAITING and row is None:
            table.record(_record_from_study(frozen))
    return lost


def _record_from_study(frozen: FrozenTrial) -> TrialRecord:
    """A table row rebuilt from what the study holds (attrs are set before every tell)."""
    attrs = frozen.user_attrs
    status = attrs.get("status") or {
        TrialState.COMPLETE: "completed",
        TrialState.PRUNED: "rejected",
    }.get(frozen.state, "failed")
    return TrialRecord(
        number=frozen.number,
        status=status,
        params=dict(frozen.params),
        config=attrs.get("config"),
        metrics=attrs.get("metrics", {}),
        constraints=dict(frozen.constraints),
        reason=attrs.get("reason"),
        started=frozen.datetime_start.timestamp() if frozen.datetime_start else 0.0,
        finished=frozen.datetime_complete.timestamp() if frozen.datetime_complete else None,
    )

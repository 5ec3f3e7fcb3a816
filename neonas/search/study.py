"""The run's Optuna study on SQLite: the one record of its trials, its sampler, its repair.

How a trial is finished (`tell_record`): its constraints, then one user attribute `outcome`
holding the whole TrialRecord (one SQLite transaction: the commit point), then `study.tell`.

Why a repair step and no storage heartbeat: the searcher drives Optuna through ask/tell, and
Optuna only beats a trial's heartbeat inside `Study.optimize`, so a driver killed with SIGKILL
leaves its trials RUNNING forever. On resume the previous driver is known to be dead (the run
lock), so `repair` settles every RUNNING trial: one with an outcome is told as the outcome
says (the driver died between the two steps above); one without was in flight, so it is
failed, reads back as lost, and its point is enqueued to be evaluated again.
"""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState

from neonas.search.objectives import objective_values, study_directions
from neonas.search.records import OUTCOME_ATTR, TrialRecord, TrialStatus, TrialTable
from neonas.search.refusal_fallback import RefusalFallbackSampler
from neonas.search.run_folder import RunFolder

STUDY_NAME = "neonas"
# How a record's status is told to Optuna. Rejections and duplicates are PRUNED with their
# constraints, which TPE and NSGA-II use to learn the feasible region; so are trials that
# ASHA stopped early (Optuna's name for them).
STATES = {
    TrialStatus.COMPLETED: TrialState.COMPLETE,
    TrialStatus.PRUNED: TrialState.PRUNED,
    TrialStatus.REJECTED: TrialState.PRUNED,
    TrialStatus.DUPLICATE: TrialState.PRUNED,
    TrialStatus.FAILED: TrialState.FAIL,
    TrialStatus.STOPPED: TrialState.FAIL,
    TrialStatus.LOST: TrialState.FAIL,
}


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


def load_study(db_path: str | Path) -> optuna.Study:
    """An existing run's study, opened read-only: a reader (export, a test watching a live run)
    never writes, not even the tables a new database would get while the driver creates them.

    A driver killed in the middle of a write leaves a journal that only a writer may roll
    back, and a read-only open then fails; the study is opened for writing then, which
    rolls the unfinished write back (the run's tables exist by then, so nothing is created).
    """
    path = Path(db_path).resolve()
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
        return optuna.load_study(study_name=STUDY_NAME, storage=storage)
    except Exception:  # SQLAlchemy's OperationalError, wrapped differently by its versions
        if not Path(str(path) + "-journal").is_file():
            raise
    return optuna.load_study(study_name=STUDY_NAME, storage=open_storage(path))


def load_trials(run_dir: str | Path) -> TrialTable:
    """The records of a run folder's trials, read from its study (empty before the first)."""
    db = RunFolder(run_dir).study_db
    return TrialTable.from_study(load_study(db)) if db.is_file() else TrialTable()


def make_sampler(kind: str, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    """TPE (default; constant liar so concurrent trials spread out), NSGA-II or GP.

    Random start-up trials: a third of the run, 4 to 10. NSGA-II's population: a quarter of
    the run, 4 to 50, so that a short run still sees a few generations. GP (Gaussian-process
    Bayesian optimisation, expected hypervolume improvement) models the parameters every
    network has and draws a cell's size and shift, which exist only for some share patterns,
    at random; it accounts for trials still running. It models completed trials only, so
    points refused over a budget teach it nothing: after a few refusals in a row TPE proposes
    until a point runs (RefusalFallbackSampler). benchmarks/README.md, "Samplers against
    random", compares the three, and "Under a hard latency budget" the GP with and without
    the fallback.
    """
    startup = max(4, min(10, trials // 3))
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(
            seed=seed, population_size=max(4, min(50, trials // 4))
        )
    tpe = optuna.samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=startup)
    if kind == "gp":
        gp = optuna.samplers.GPSampler(
            seed=seed, n_startup_trials=startup, warn_independent_sampling=False
        )
        return RefusalFallbackSampler(gp, tpe)
    return tpe


def tell_record(
    study: optuna.Study, trial: optuna.Trial, record: TrialRecord, objective: str
) -> None:
    """Finish an Optuna trial as `record` says: constraints, the outcome, then the tell."""
    state = STATES[record.status]
    if state == TrialState.PRUNED or state == TrialState.COMPLETE:
        for name, value in record.constraints.items():
            trial.set_constraint(name, value)
    trial.set_user_attr(OUTCOME_ATTR, record.outcome())
    _tell(study, trial.number, record, objective)


def _tell(study: optuna.Study, number: int, record: TrialRecord, objective: str) -> None:
    state = STATES[record.status]
    values = objective_values(record.metrics, objective) if state == TrialState.COMPLETE else None
    study.tell(number, values, state=state)


def repair(study: optuna.Study, objective: str) -> list[int]:
    """Settle the trials a killed driver left RUNNING; returns the numbers of the lost ones."""
    lost = []
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        outcome = frozen.user_attrs.get(OUTCOME_ATTR)
        if outcome is not None:
            record = TrialRecord(number=frozen.number, params=dict(frozen.params), **outcome)
            _tell(study, frozen.number, record, objective)
            continue
        study.tell(frozen.number, state=TrialState.FAIL)
        if frozen.params:
            study.enqueue_trial(dict(frozen.params), user_attrs={"retry_of": frozen.number})
        lost.append(frozen.number)
    return lost

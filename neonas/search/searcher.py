"""Ray Tune's OptunaSearch, made budget-aware and durable for neonas.

Three additions to the library searcher, nothing else:
- every proposal is screened in the driver before Ray sees it (buildable, not a duplicate,
  FLOPs and parameters within budget); a rejected point is recorded, told to Optuna as PRUNED
  with its constraint values (`Trial.set_constraint`, which TPE and NSGA-II use to learn the
  feasible region) and the next point is asked for, so rejections never become Ray trials;
- every outcome is written to the run's trial table *before* Optuna is told, so a kill
  between the two is repaired on resume from the table (see `study.reconcile`);
- it finishes once `target` trials are completed, however many were rejected or failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune import Callback
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from neonas.errors import UserError
from neonas.search.evaluate import screen_candidate
from neonas.search.objectives import objective_values, tune_metric
from neonas.search.records import TrialRecord, TrialTable, params_key
from neonas.search.space import SearchSpace

log = logging.getLogger(__name__)

# Give up after this many proposals in a row that could not run (over budget, duplicates):
# the budget or the space leaves (almost) nothing to evaluate.
MAX_UNRUN_IN_A_ROW = 200
RESULT_METRICS = (
    "accuracy",
    "accuracy_kind",
    "latency_ms",
    "latency_source",
    "latency_spread",
    "flops",
    "params",
    "matrix_efficiency",
    "score",
    "epochs",
    "val_loss",
    "proxy_s",
)


class ScreenedOptunaSearch(OptunaSearch):
    """OptunaSearch over a SearchSpace that screens, records, and stops at `target` completed."""

    def __init__(
        self,
        *,
        space: SearchSpace,
        objective: str,
        sampler: optuna.samplers.BaseSampler,
        storage: optuna.storages.BaseStorage,
        study_name: str,
        table: TrialTable,
        target: int,
        session: int,
        run_name: str,
        budget_flops: int | None = None,
        budget_params: int | None = None,
        on_record: Callable[[TrialRecord], None] | None = None,
    ) -> None:
        metric, mode = tune_metric(objective)
        self.search_space = space
        super().__init__(
            space=self._define_by_run,
            metric=metric,
            mode=mode,
            sampler=sampler,
            storage=storage,
            study_name=study_name,
        )
        self.objective = objective
        self.table = table
        self.target = target
        self.session = session
        self.run_name = run_name
        self.budgets = (budget_flops, budget_params)
        self.on_record = on_record
        self.completed = table.count("completed")
        self.stop_reason: str | None = None
        self._seen = table.completed_params()  # params key -> trial number (completed or running)
        self._running: dict[str, dict[str, Any]] = {}  # Ray trial id -> the proposal
        self._unrun_in_a_row = 0

    def _define_by_run(self, trial: optuna.Trial) -> None:
        # OptunaSearch needs a space to set up its study; `suggest` below does the asking.
        self.search_space.suggest(trial)

    # --- proposals ------------------------------------------------------------------------------

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.completed >= self.target or self.stop_reason:
            return Searcher.FINISHED
        if self.completed + len(self._running) >= self.target:
            return None  # enough in flight; ask again when one ends (it may fail)
        while self._unrun_in_a_row < MAX_UNRUN_IN_A_ROW:
            ot_trial = self._ot_study.ask()
            proposal = self._screen(ot_trial)
            if proposal is not None:
                self._unrun_in_a_row = 0
                self._ot_trials[trial_id] = ot_trial
                self._running[trial_id] = proposal
                return {key: proposal[key] for key in ("number", "arch", "screen")}
            self._unrun_in_a_row += 1
        self.stop_reason = (
            f"{MAX_UNRUN_IN_A_ROW} proposals in a row were over budget or already evaluated: "
            "the budget or the space leaves too little to search (raise --budget or widen the space)"
        )
        return Searcher.FINISHED

    def _screen(self, ot_trial: optuna.Trial) -> dict[str, Any] | None:
        """The proposal for Ray if the point may run; otherwise record and tell why not."""
        started = time.time()
        try:
            config = self.search_space.suggest(ot_trial)
        except UserError as err:
            self._finish_unrun(
                ot_trial, "rejected", started, f"not buildable: {err}", {"buildable": 1.0}
            )
            return None
        params = dict(ot_trial.params)
        key = params_key(params)
        if key in self._seen:
            reason = f"same point as trial {self._seen[key]}"
            self._finish_unrun(ot_trial, "duplicate", started, reason, {}, params=params)
            return None
        config = config.model_copy(update={"name": f"{self.run_name}-t{ot_trial.number:04d}"})
        try:
            screen = screen_candidate(config, *self.budgets)
        except Exception as err:  # a point that does not build is rejected, never a crashed run
            reason = f"could not be built: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            self._finish_unrun(
                ot_trial, "rejected", started, reason, {"buildable": 1.0}, params, config.to_dict()
            )
            return None
        constraints = {f"constraint_{name}": value for name, value in screen.constraints.items()}
        cost = {"flops": screen.flops, "params": screen.params}
        if screen.rejected:
            self._finish_unrun(
                ot_trial,
                "rejected",
                started,
                screen.reason,
                screen.constraints,
                params,
                config.to_dict(),
                cost,
            )
            return None
        self._seen[key] = ot_trial.number
        return {
            "number": ot_trial.number,
            "arch": config.to_dict(),
            "screen": {**cost, **constraints},
            "params": params,
            "constraints": screen.constraints,
            "started": started,
        }

    def _finish_unrun(
        self,
        ot_trial: optuna.Trial,
        status: str,
        started: float,
        reason: str | None,
        constraints: dict[str, float],
        params: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        record = TrialRecord(
            number=ot_trial.number,
            status=status,
            params=params if params is not None else dict(ot_trial.params),
            config=config,
            metrics=metrics or {},
            constraints=constraints,
            reason=reason,
            session=self.session,
            started=started,
            finished=time.time(),
        )
        self._record(record)
        tell_record(self._ot_study, ot_trial, record, self.objective)

    # --- outcomes -------------------------------------------------------------------------------

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        # Single-objective runs pass epochs on as Optuna intermediate values; a rejection is none.
        if result.get("status") == "completed":
            super().on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in self._completed_trials or trial_id not in self._running:
            return
        if error:
            return  # FailureReasons.on_trial_error follows at once with the reason
        status = (result or {}).get("status")
        if status not in ("completed", "rejected"):
            self.finish(trial_id, "stopped", "stopped before it reported a result")
            return
        self.finish(trial_id, status, result.get("reason"), result)

    def finish(
        self, trial_id: str, status: str, reason: str | None, result: dict[str, Any] | None = None
    ) -> None:
        """Record a Ray trial's outcome in the table, then tell Optuna."""
        proposal = self._running.pop(trial_id)
        result = result or {}
        constraints = dict(proposal["constraints"])
        if "constraint_latency" in result:
            constraints["latency"] = float(result["constraint_latency"])
        metrics = {key: result[key] for key in RESULT_METRICS if key in result}
        if status != "completed":  # a rejection's -inf objectives are placeholders, not results
            metrics = {k: v for k, v in metrics.items() if k not in ("accuracy", "score")}
        metrics.update(
            {k: v for k, v in proposal["screen"].items() if not k.startswith("constraint_")}
        )
        record = TrialRecord(
            number=proposal["number"],
            status=status,
            params=proposal["params"],
            config=proposal["arch"],
            metrics=metrics,
            constraints=constraints,
            reason=reason,
            session=self.session,
            node=result.get("node"),
            started=proposal["started"],
            finished=time.time(),
        )
        if status != "completed":
            self._seen.pop(params_key(record.params), None)
        self._record(record)
        tell_record(self._ot_study, self._ot_trials[trial_id], record, self.objective)
        self._completed_trials.add(trial_id)
        if status == "completed":
            self.completed += 1

    def close(self, reason: str) -> None:
        """Mark trials still in flight (time budget, Ctrl-C) as stopped."""
        for trial_id in list(self._running):
            self.finish(trial_id, "stopped", reason)

    def _record(self, record: TrialRecord) -> None:
        self.table.record(record)
        if self.on_record is not None:
            self.on_record(record)

    # Tune pickles the searcher (into tuner.pkl and its experiment checkpoints) for
    # Tuner.restore, which neonas does not use: the study database and the trial table are the
    # run's state. Live handles (database connection, console, table) stay out of those copies.
    _LIVE = ("on_record", "table", "_ot_study", "_ot_trials", "_storage", "_sampler")

    def __getstate__(self) -> dict[str, Any]:
        return {key: (None if key in self._LIVE else value) for key, value in self.__dict__.items()}

    def save(self, checkpoint_path: str) -> None:
        pass

    def restore(self, checkpoint_path: str) -> None:
        pass


def tell_record(
    study: optuna.Study, trial: optuna.Trial, record: TrialRecord, objective: str
) -> None:
    """Finish an Optuna trial as the record says: COMPLETE, PRUNED (with constraints) or FAIL."""
    trial.set_user_attr("status", record.status)
    if record.reason:
        trial.set_user_attr("reason", record.reason)
    if record.metrics:
        trial.set_user_attr("metrics", record.metrics)
    if record.config:
        trial.set_user_attr("config", record.config)
    if record.status in ("completed", "rejected", "duplicate"):
        for name, value in record.constraints.items():
            trial.set_constraint(name, value)
    if record.status == "completed":
        study.tell(trial, objective_values(record.metrics, objective), state=TrialState.COMPLETE)
    elif record.status in ("rejected", "duplicate"):
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)


class FailureReasons(Callback):
    """Records a crashed trial (exception, out of memory, NaN) as failed, with the error's first line."""

    def __init__(self, searcher: ScreenedOptunaSearch) -> None:
        self.searcher = searcher

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id in self.searcher._running:
            self.searcher.finish(trial.trial_id, "failed", error_reason(trial))


def error_reason(trial: Any) -> str:
    """'RuntimeError: ...' for the exception a Ray trial died of (its cause, not Ray's wrapper)."""
    import ray.cloudpickle as cloudpickle

    error = None
    # Tune writes the error files to the trial's local folder before calling on_trial_error;
    # the copies in the experiment's storage may not exist yet.
    pickled, text = trial.pickled_error_file, trial.error_file
    if pickled and Path(pickled).is_file():
        try:
            error = cloudpickle.loads(Path(pickled).read_bytes())
        except Exception:  # an error that does not unpickle here leaves only the text file
            error = None
    if error is not None:
        cause = getattr(error, "cause", None)
        exc = cause if isinstance(cause, BaseException) else error
        lines = [line for line in str(exc).splitlines() if line.strip()]
        return f"{type(exc).__name__}: {lines[0].strip() if lines else ''}".strip()
    lines = []
    if text and Path(text).is_file():
        lines = [line for line in Path(text).read_text().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "the trial failed without an error message"

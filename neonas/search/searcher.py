"""The searcher Ray Tune asks for trials: Ray's public `Searcher` over an Optuna study it owns.

It asks the study for a point, screens it in the driver before Ray sees it (a valid network,
not a duplicate, FLOPs and parameters within budget) and asks again when the point cannot
run; each outcome is told back (`study.tell_record`), rejections as PRUNED with their
constraint values so that TPE and NSGA-II learn the feasible region. The study is the run's
record; the searcher keeps only the counters that decide when the run ends:
- `target` trials completed at full fidelity (a trial ASHA stopped early is pruned, not
  completed);
- `max_failures` trials in a row that failed (inside Ray, or while building the candidate);
- MAX_REFUSED_IN_A_ROW points in a row that could not run (over a budget, also the latency
  budget checked inside a trial; duplicates; invalid networks), with the cause named.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from ray.tune import Callback
from ray.tune.search import Searcher

from evaluators.metrics import METRICS
from neonas.errors import UserError
from neonas.search.records import TrialRecord, TrialTable
from neonas.search.settings import DEFAULT_MAX_FAILURES
from neonas.search.study import tell_record
from neonas.search.trial import screen_candidate
from neonas.space import SearchSpace

# Give up after this many points in a row that could not run: the budget or the space leaves
# (almost) nothing to evaluate.
MAX_REFUSED_IN_A_ROW = 200
# Why a point could not run -> what to change, for the stop message.
REFUSAL_ADVICE = {
    "flops": "raise --budget or use a smaller space",
    "params": "raise --params-budget or use a smaller space",
    "latency": "raise --latency-budget or use a smaller space",
    "duplicate": "the space has few new points left: widen it or ask for fewer --trials",
    "invalid": "the space offers networks that do not build: fix the space file",
}
REFUSAL_TEXT = {
    "flops": "over the FLOPs budget",
    "params": "over the parameter budget",
    "latency": "over the latency budget",
    "duplicate": "already evaluated",
    "invalid": "not valid networks",
}


class StudySearcher(Searcher):
    """Proposes the study's points for Ray trials and tells the study every outcome."""

    def __init__(
        self,
        *,
        space: SearchSpace,
        study: optuna.Study,
        objective: str,
        table: TrialTable,
        target: int,
        session: int,
        run_name: str,
        budget_flops: int | None = None,
        budget_params: int | None = None,
        full_epochs: int | None = None,
        max_failures: int = DEFAULT_MAX_FAILURES,
        on_record: Callable[[TrialRecord], None] | None = None,
    ) -> None:
        super().__init__()  # metric and mode: the study has the directions, ASHA its own metric
        self.search_space = space
        self.study = study
        self.objective = objective
        self.table = table
        self.target = target
        self.session = session
        self.run_name = run_name
        self.budgets = (budget_flops, budget_params)
        self.full_epochs = full_epochs
        self.max_failures = max_failures
        self.on_record = on_record
        self.completed = table.count("completed")
        self.stop_reason: str | None = None
        # network key -> trial number (evaluated or running): one network, however spelled
        self._seen = table.evaluated_networks(self.search_space.key)
        self._running: dict[str, dict[str, Any]] = {}  # Ray trial id -> the proposal
        self._refused: Counter[str] = Counter()  # refusals in a row, by cause
        self._failed_in_a_row = 0

    # --- proposals ------------------------------------------------------------------------------

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.completed >= self.target or self.stop_reason:
            return Searcher.FINISHED
        if self.completed + len(self._running) >= self.target:
            return None  # enough in flight; ask again when one ends (it may fail)
        while not self.stop_reason:
            trial = self.study.ask()
            proposal = self._screen(trial)
            if proposal is not None:
                self._running[trial_id] = proposal
                return {key: proposal[key] for key in ("number", "arch", "screen")}
        return Searcher.FINISHED

    def _screen(self, trial: optuna.Trial) -> dict[str, Any] | None:
        """The proposal for Ray if the point may run; otherwise record and tell why not."""
        started = time.time()
        try:
            config = self.search_space.suggest(trial)
        except UserError as err:  # the space's own choices do not make a valid network
            self._finish(trial, "rejected", started, f"not a valid network: {err}", "invalid")
            return None
        key = self.search_space.key(config)
        if key in self._seen:
            reason = f"same network as trial {self._seen[key]}"
            self._finish(trial, "duplicate", started, reason, "duplicate")
            return None
        config = config.model_copy(update={"name": f"{self.run_name}-t{trial.number:04d}"})
        try:
            screen = screen_candidate(config, *self.budgets)
        except Exception as err:  # a bug or a resource error while building: a failure
            reason = f"could not be built: {first_line(err)}"
            self._finish(trial, "failed", started, reason, config=config.to_dict())
            return None
        cost = {"flops": screen.flops, "params": screen.params}
        if screen.rejected:
            over = next(name for name, slack in screen.constraints.items() if slack > 0)
            self._finish(
                trial,
                "rejected",
                started,
                screen.reason,
                over,
                config.to_dict(),
                cost,
                screen.constraints,
            )
            return None
        self._seen[key] = trial.number
        constraints = {f"constraint_{name}": value for name, value in screen.constraints.items()}
        return {
            "number": trial.number,
            "arch": config.to_dict(),
            "screen": {**cost, **constraints},
            "trial": trial,
            "constraints": screen.constraints,
            "started": started,
            "key": key,
        }

    def _finish(
        self,
        trial: optuna.Trial,
        status: str,
        started: float,
        reason: str | None,
        refusal: str | None = None,
        config: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        constraints: dict[str, float] | None = None,
        node: str | None = None,
    ) -> None:
        """Tell the study, then count the outcome towards the run's stopping rules."""
        if refusal == "invalid":
            constraints = {"buildable": 1.0}
        record = TrialRecord(
            number=trial.number,
            status=status,
            params=dict(trial.params),
            config=config,
            metrics=metrics or {},
            constraints=constraints or {},
            reason=reason,
            session=self.session,
            node=node,
            started=started,
            finished=time.time(),
        )
        tell_record(self.study, trial, record, self.objective)
        self.table.add(record)
        if self.on_record is not None:
            self.on_record(record)
        self._count(record, refusal)

    def _count(self, record: TrialRecord, refusal: str | None) -> None:
        if record.status == "completed":
            self.completed += 1
        if record.status in ("completed", "pruned"):
            self._refused.clear()
            self._failed_in_a_row = 0
        elif refusal is not None:
            self._refused[refusal] += 1
            if sum(self._refused.values()) >= MAX_REFUSED_IN_A_ROW and not self.stop_reason:
                self.stop_reason = refusal_message(self._refused)
        elif record.status == "failed":
            self._failed_in_a_row += 1
            if self._failed_in_a_row >= self.max_failures and not self.stop_reason:
                self.stop_reason = (
                    f"{self._failed_in_a_row} trials in a row failed (the last: {record.reason}); "
                    f"fix the cause, then continue with --resume {self.run_name} "
                    "(--max-failures sets the limit)"
                )

    # --- outcomes -------------------------------------------------------------------------------

    def is_running(self, trial_id: str) -> bool:
        return trial_id in self._running

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id not in self._running or error:
            return  # on error, FailureReasons.on_trial_error follows at once with the reason
        result = result or {}
        status = result.get("status")
        if (
            status == "completed"
            and self.full_epochs
            and result.get("epochs", 0) < self.full_epochs
        ):
            reason = f"stopped by ASHA after epoch {result['epochs']} of {self.full_epochs}"
            self.finish(trial_id, "pruned", reason, result)
        elif status in ("completed", "rejected"):
            self.finish(trial_id, status, result.get("reason"), result)
        else:
            self.finish(trial_id, "stopped", "stopped before it reported a result")

    def finish(
        self, trial_id: str, status: str, reason: str | None, result: dict[str, Any] | None = None
    ) -> None:
        """Record a Ray trial's outcome in the study."""
        proposal = self._running.pop(trial_id)
        result = result or {}
        constraints = dict(proposal["constraints"])
        if "constraint_latency" in result:
            constraints["latency"] = float(result["constraint_latency"])
        metrics = {key: result[key] for key in METRICS if key in result}
        if status == "rejected":  # its -inf objectives are placeholders, not results
            metrics = {k: v for k, v in metrics.items() if k not in ("accuracy", "reward")}
        metrics.update(
            {k: v for k, v in proposal["screen"].items() if not k.startswith("constraint_")}
        )
        if status not in ("completed", "pruned"):
            self._seen.pop(proposal["key"], None)
        self._finish(
            proposal["trial"],
            status,
            proposal["started"],
            reason,
            "latency" if status == "rejected" else None,
            proposal["arch"],
            metrics,
            constraints,
            result.get("node"),
        )

    def close(self, reason: str) -> None:
        """Mark trials still in flight (time budget, Ctrl-C) as stopped."""
        for trial_id in list(self._running):
            self.finish(trial_id, "stopped", reason)

    # Tune pickles the searcher into its experiment checkpoints, for Tuner.restore, which
    # neonas does not use: the study is the run's state. Live handles stay out of those copies.
    _LIVE = ("on_record", "table", "study", "_running", "search_space")

    def __getstate__(self) -> dict[str, Any]:
        return {key: (None if key in self._LIVE else value) for key, value in self.__dict__.items()}

    def save(self, checkpoint_path: str) -> None:
        pass

    def restore(self, checkpoint_path: str) -> None:
        pass


def refusal_message(refused: Counter[str]) -> str:
    """'200 points in a row could not run (150 over the FLOPs budget, 50 ...): <advice>'."""
    causes = ", ".join(f"{count} {REFUSAL_TEXT[cause]}" for cause, count in refused.most_common())
    advice = REFUSAL_ADVICE[refused.most_common(1)[0][0]]
    return f"{sum(refused.values())} points in a row could not run ({causes}): {advice}"


def first_line(err: BaseException) -> str:
    """'RuntimeError: first line of the message'."""
    lines = [line for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0].strip() if lines else ''}".strip()


class FailureReasons(Callback):
    """Records a crashed trial (exception, out of memory, NaN) as failed, with the error's first line."""

    def __init__(self, searcher: StudySearcher) -> None:
        self.searcher = searcher

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.searcher.is_running(trial.trial_id):
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
        return first_line(cause if isinstance(cause, BaseException) else error)
    lines = []
    if text and Path(text).is_file():
        lines = [line for line in Path(text).read_text().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "the trial failed without an error message"

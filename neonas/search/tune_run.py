"""One session's Ray Tune run: Tuner(run_trial, StudySearcher, ASHA) over the remaining trials,
beside the stations that measure latency for a measured target, with Tune's own console
output off (our progress lines say it)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console

from neonas.search.progress import ProgressDisplay
from neonas.search.records import CsvLog, TrialRecord, TrialTable
from neonas.search.run_folder import RunFolder
from neonas.search.settings import SearchSettings
from neonas.search.trial import ScoreCandidate, run_trial
from neonas.space import SearchSpace

if TYPE_CHECKING:
    from evaluators.sweep import SweepMeasurement
    from neonas.search.capacity import TrialResources


@contextmanager
def measuring_stations(
    settings: SearchSettings, resources: TrialResources, console: Console
) -> Iterator[SweepMeasurement]:
    """The stations that measure latency for a measured target (one per device; none for a
    predicted one), opened so that a trial needing `resources` still fits; they close when the
    session's trials are done."""
    from evaluators.sweep import SweepMeasurement

    measuring = SweepMeasurement.open(
        settings.eval.hw, settings.eval.cpus_per_trial, trial_need=resources.bundle()
    )
    try:
        if measuring.describe():
            console.print(measuring.describe())
        yield measuring
    finally:
        measuring.close()


def run_tune(
    run: RunFolder,
    settings: SearchSettings,
    space: SearchSpace,
    study: Any,
    table: TrialTable,
    csv_log: CsvLog,
    session: int,
    score: ScoreCandidate,
    console: Console,
    address: str | None,
    measuring: SweepMeasurement,
    resources: TrialResources,
    concurrency: int,
) -> str | None:
    """One Tuner.fit over the remaining trials; returns why it stopped early, if it did."""
    from ray import tune

    from neonas.search.capacity import CapacityWatch
    from neonas.search.objectives import ranking_metric
    from neonas.search.searcher import FailureReasons, StudySearcher
    from neonas.search.watch import CapacityCallback, CapacityStop

    progress = ProgressDisplay(table, settings.trials, console, settings.eval.accuracy_signal)

    def on_record(record: TrialRecord) -> None:
        csv_log.append(record)
        progress(record)

    searcher = StudySearcher(
        space=space,
        study=study,
        objective=settings.eval.objective,
        table=table,
        target=settings.trials,
        session=session,
        run_name=run.path.name,
        budget_flops=settings.budget_flops,
        budget_params=settings.budget_params,
        full_epochs=settings.eval.epochs if settings.eval.short_training else None,
        max_failures=settings.max_failures,
        on_record=on_record,
    )
    scheduler = None
    if settings.eval.short_training and settings.eval.epochs > 1:
        from ray.tune.schedulers import ASHAScheduler

        metric, mode = ranking_metric(settings.eval.objective)
        scheduler = ASHAScheduler(
            metric=metric,
            mode=mode,
            max_t=settings.eval.epochs,
            grace_period=settings.eval.asha_grace_epochs,
            reduction_factor=2,
        )
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, settings=settings.eval, score=score),
        resources.placement(),
    )

    def release(nodes: tuple[str, ...]) -> None:
        measuring.release(nodes)
        console.print(
            "the cluster changed: no node could run a trial beside the measuring station's "
            f"reservation; now {measuring.describe()}"
        )

    watch = CapacityWatch(
        resources.bundle(),
        measuring.holds,
        release,
        f"add a node that has them, then continue with --resume {run.path.name}",
        lost=measuring.lost,
    )
    # --storage (shared path or URI) / <run name> / session-<n>, else <run>/tune/session-<n>.
    storage_path = (
        f"{settings.storage.rstrip('/')}/{run.path.name}" if settings.storage else run.tune_dir
    )
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=-1,  # the searcher finishes the run (target reached, or a stopping rule)
            max_concurrent_trials=concurrency,
            time_budget_s=settings.time_budget_s,
            # Locally, reusing trial actors saves a process start (torch imports) per trial.
            # On a cluster Tune would hand waiting trials to the first warm actor and drop
            # actors still starting on other nodes, so short trials could pile onto one
            # node; fresh actors go wherever Ray has a free CPU.
            reuse_actors=not address,
            trial_dirname_creator=trial_dirname,
            trial_name_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=f"session-{session}",
            storage_path=str(storage_path),
            callbacks=[FailureReasons(searcher), CapacityCallback(watch)],
            stop=CapacityStop(watch),
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
    console.print(
        f"searching with {concurrency} trial(s) at a time, each on {resources.text()}; "
        f"Ray Tune experiment in {storage_path}"
    )
    with quiet_tune():
        tuner.fit()
    searcher.stop_reason = searcher.stop_reason or watch.stop_reason
    if settings.time_budget_s and searcher.completed < settings.trials:
        searcher.stop_reason = (
            searcher.stop_reason or f"time budget of {settings.time_budget_s:g} s reached"
        )
    searcher.close(searcher.stop_reason or "stopped when the search ended")
    return searcher.stop_reason


@contextmanager
def quiet_tune() -> Iterator[None]:
    """Tune's own console output off (our progress lines say it): its legacy reporter at verbose 0."""
    # Failed trials: our progress line has the reason, the trial folder's error.txt the trace.
    settings = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_PRINT_ALL_TRIAL_ERRORS": "0"}
    previous = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    # tensorboardX (Tune's TensorBoard logger, when installed) warns "NaN or Inf found in input
    # tensor" for every rejected trial, whose objectives are reported as -inf by design.
    names = ("ray.tune", "ray.train", "ray.air", "tensorboardX.x2num")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def trial_dirname(trial: Any) -> str:
    """Ray trial folders named by Optuna trial number, e.g. trial-00012."""
    return f"trial-{trial.config.get('number', 0):05d}"

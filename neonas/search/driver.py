"""The search itself: Ray Tune runs the trials, OptunaSearch proposes them, the run folder keeps it.

    start_run / resume_run
      -> run folder (run.json, space.yaml, lock)        run_folder.py
      -> Optuna study on study.db, repaired on resume   study.py
      -> Tuner(run_trial, ScreenedOptunaSearch, ASHA)   searcher.py, evaluate.py
      -> trials.jsonl/csv after every outcome           records.py
      -> pareto.json, pareto.png, best/*.yaml, summary  pareto.py, export.py, progress.py

Every session is a fresh Tuner in `tune/session-<n>`: the study and the trial table carry the
state across sessions, not Tune's own experiment checkpoint (see study.py for why).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from neonas.arch import ArchConfig
from neonas.errors import UserError
from neonas.search.evaluate import Evaluate, evaluate_candidate, run_trial, screen_candidate
from neonas.search.export import write_configs
from neonas.search.pareto import plot_pareto, write_pareto
from neonas.search.progress import ProgressDisplay, front_table
from neonas.search.records import TrialRecord, TrialTable
from neonas.search.run_folder import RunFolder
from neonas.search.settings import SearchSettings
from neonas.search.space import SearchSpace, load_space, space_from_yaml
from neonas.si import format_si

if TYPE_CHECKING:  # the target registry imports torch; a search loads it only to run
    from evaluators.hardware import HardwareTarget

# Options a resume may change; everything else defines the run and must stay as it was.
RESUMABLE = ("trials", "time_budget_s", "concurrency", "address", "storage")
# Settings whose command-line option is not simply --<last part of the name>.
OPTION_NAMES = {
    "budget_flops": "--budget",
    "budget_params": "--params-budget",
    "time_budget_s": "--time-budget",
    "eval.latency_budget_ms": "--latency-budget",
    "eval.latency_target_ms": "--latency-target",
}


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


def start_run(
    settings: SearchSettings,
    argv: Sequence[str] = (),
    evaluate: Evaluate = evaluate_candidate,
    console: Console | None = None,
) -> SearchOutcome:
    """A new run in `settings.run_dir`; checks space, budgets and data before any work."""
    RunFolder.check_new(settings)  # before the slower checks below
    space = load_space(settings.space)
    check_inputs(space, settings)
    info = {**space.describe(), "spec": space.spec.model_dump(mode="json")}
    run = RunFolder.create(settings, space.text, info, argv)
    return _session(run, settings, space, argv, evaluate, console)


def resume_run(
    name_or_path: str,
    overrides: dict[str, Any],
    results_dir: str = "results",
    argv: Sequence[str] = (),
    evaluate: Evaluate = evaluate_candidate,
    console: Console | None = None,
    force: bool = False,
) -> SearchOutcome:
    """Continue a run (killed, stopped by its time budget, or extended with more --trials)."""
    run = RunFolder.find(name_or_path, results_dir)
    stored = run.settings()
    given = {key: value for key, value in overrides.items() if value is not None}
    changed = sorted(
        key
        for key, value in given.items()
        if key not in RESUMABLE and _setting(stored, key) != value
    )
    if changed:
        options = ", ".join(_option(key) for key in changed)
        raise UserError(
            f"--resume continues run {run.path.name} as it was defined: {options} cannot change "
            f"(only {', '.join(_option(key) for key in RESUMABLE)} can)"
        )
    updates = {key: value for key, value in given.items() if key in RESUMABLE}
    settings = stored.model_copy(
        update={**updates, "results_dir": str(run.path.parent), "name": run.path.name}
    )
    run.update_settings(settings)
    space = space_from_yaml(run.space_yaml.read_text(), str(run.space_yaml))
    return _session(run, settings, space, argv, evaluate, console, force)


def _option(key: str) -> str:
    return OPTION_NAMES.get(key, "--" + key.split(".")[-1].replace("_", "-"))


def _setting(settings: SearchSettings, path: str) -> Any:
    """A setting by dotted path, e.g. 'eval.hw'."""
    value: Any = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


def check_inputs(space: SearchSpace, settings: SearchSettings) -> None:
    """Fail fast (UserError) on a budget no network meets, an unknown target or a bad data folder."""
    from evaluators import get_hw

    target = get_hw(settings.eval.hw)  # UserError for an unknown target or an absent device
    if settings.eval.data is not None:
        check_images(settings.eval.data)
    if settings.eval.supernet is not None:
        from neonas.supernet.checkpoint import check_supernet_for

        check_supernet_for(settings.eval.supernet, space, settings.eval.data)
    smallest = space.smallest()
    screen = screen_candidate(smallest, settings.budget_flops, settings.budget_params)
    if screen.rejected:
        raise UserError(
            f"the smallest network of space {space.name!r} ({format_si(screen.flops)} FLOPs, "
            f"{format_si(screen.params)} params) is already over budget: {screen.reason}; "
            "raise the budget or use a smaller space"
        )
    if settings.eval.latency_budget_ms is not None:
        check_latency_budget(space, smallest, target, settings.eval.latency_budget_ms)


# A measured latency of the smallest network may exceed the budget by this factor before the
# budget is called impossible: timing noise must not refuse a budget that some network meets.
MEASURED_LATENCY_SLACK = 1.25


def check_latency_budget(
    space: SearchSpace, smallest: ArchConfig, target: HardwareTarget, budget_ms: float
) -> None:
    """UserError when even the space's smallest network is slower than the latency budget."""
    from neonas.models import build_model

    shape = (smallest.in_chans, smallest.input_size, smallest.input_size)
    result = target.latency(build_model(smallest), shape, batch=1)
    allowed = budget_ms * (MEASURED_LATENCY_SLACK if result.source == "measured" else 1.0)
    if result.median_ms > allowed:
        raise UserError(
            f"the smallest network of space {space.name!r} takes {result.median_ms:.3g} ms on "
            f"{target.name} ({result.source}), over the latency budget of {budget_ms:g} ms: "
            "raise --latency-budget or use a smaller space"
        )


# Images decoded from each split before any trial starts: a folder of unreadable files is
# refused in a second instead of failing every trial.
IMAGES_CHECKED = 3


def check_images(data: str) -> None:
    """UserError unless `data` is a data folder whose first, middle and last images decode."""
    from neonas.train.data import detect_layout, load_split

    layout = detect_layout(data)  # UserError with what a data folder must look like
    for split in ("train", "val"):
        dataset = load_split(layout, split, lambda image: image)
        count = len(dataset)
        for index in sorted({0, count // 2, count - 1})[:IMAGES_CHECKED]:
            try:
                dataset[index]
            except Exception as err:  # any decoder error: the trials would all fail on it
                samples = getattr(dataset, "samples", None)
                where = samples[index][0] if samples else f"{split} image {index}"
                first = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise UserError(f"cannot read the images of {data}: {where}: {first}") from None


def _session(
    run: RunFolder,
    settings: SearchSettings,
    space: SearchSpace,
    argv: Sequence[str],
    evaluate: Evaluate,
    console: Console | None,
    force: bool = False,
) -> SearchOutcome:
    import optuna

    from neonas.search.study import make_sampler, open_storage, open_study, reconcile

    console = console or make_console()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with run.lock(force):
        session = run.start_session(argv)
        table = TrialTable(run.path)
        storage = open_storage(run.study_db)
        study = open_study(storage, settings.eval.objective)
        lost = reconcile(study, table, settings.eval.objective, session)
        if lost:
            console.print(
                f"resume: trials {lost} were in flight when the run stopped; their points run again"
            )
        done = table.count("completed")
        console.print(
            f"run {run.path} (session {session}): {done}/{settings.trials} completed, "
            f"space {space.name}, hw {settings.eval.hw}, objective {settings.eval.objective}, "
            f"budget {_budget_text(settings)}"
        )
        stop_reason = None
        started = time.time()
        if done < settings.trials:
            # A fresh seed per session: the sampler must not replay the previous session's draws.
            sampler = make_sampler(
                settings.sampler, settings.seed + len(study.trials), settings.trials
            )
            stop_reason = _tune(
                run, settings, space, table, storage, sampler, session, evaluate, console
            )
        outcome = finish_run(run, settings, table, stop_reason, console)
        run.end_session(
            session,
            {
                "completed": outcome.completed,
                "stop_reason": stop_reason,
                "seconds": round(time.time() - started, 1),
            },
        )
        return outcome


def _tune(
    run: RunFolder,
    settings: SearchSettings,
    space: SearchSpace,
    table: TrialTable,
    storage: Any,
    sampler: Any,
    session: int,
    evaluate: Evaluate,
    console: Console,
) -> str | None:
    """One Tuner.fit over the remaining trials; returns why it stopped early, if it did."""
    from ray import tune

    from neonas.search.objectives import ranking_metric
    from neonas.search.searcher import FailureReasons, ScreenedOptunaSearch
    from neonas.search.study import STUDY_NAME

    started_ray = connect_ray(settings.address)
    measuring = None
    try:
        from evaluators.sweep import SweepMeasurement

        # Measured targets: one measuring station per device, opened before any trial runs.
        measuring = SweepMeasurement.open(settings.eval.hw, settings.eval.cpus_per_trial)
        if measuring.describe():
            console.print(measuring.describe())
        concurrency = settings.concurrency or default_concurrency(
            settings.eval.cpus_per_trial, measuring.reserved_cpus
        )
        progress = ProgressDisplay(table, settings.trials, console)
        searcher = ScreenedOptunaSearch(
            space=space,
            objective=settings.eval.objective,
            sampler=sampler,
            storage=storage,
            study_name=STUDY_NAME,
            table=table,
            target=settings.trials,
            session=session,
            run_name=run.path.name,
            budget_flops=settings.budget_flops,
            budget_params=settings.budget_params,
            on_record=progress,
        )
        scheduler = None
        if settings.eval.data is not None and settings.eval.epochs > 1:
            from ray.tune.schedulers import ASHAScheduler

            metric, mode = ranking_metric(settings.eval.objective)
            scheduler = ASHAScheduler(
                metric=metric,
                mode=mode,
                max_t=settings.eval.epochs,
                grace_period=1,
                reduction_factor=2,
            )
        trainable = tune.with_resources(
            tune.with_parameters(
                run_trial, settings=settings.eval, evaluate=measuring.wrap(evaluate)
            ),
            {"cpu": settings.eval.cpus_per_trial},
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
                num_samples=-1,  # the searcher finishes the run once enough trials completed
                max_concurrent_trials=concurrency,
                time_budget_s=settings.time_budget_s,
                # Locally, reusing trial actors saves a process start (torch imports) per trial.
                # On a cluster Tune would hand waiting trials to the first warm actor and drop
                # actors still starting on other nodes, so short trials could pile onto one
                # node; fresh actors go wherever Ray has a free CPU.
                reuse_actors=not settings.address,
                trial_dirname_creator=trial_dirname,
                trial_name_creator=trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=f"session-{session}",
                storage_path=str(storage_path),
                callbacks=[FailureReasons(searcher)],
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
        console.print(
            f"searching with {concurrency} trial(s) at a time; Ray Tune experiment in {storage_path}"
        )
        with _quiet_tune():
            tuner.fit()
        if settings.time_budget_s and searcher.completed < settings.trials:
            searcher.stop_reason = (
                searcher.stop_reason or f"time budget of {settings.time_budget_s:g} s reached"
            )
        searcher.close(searcher.stop_reason or "stopped when the search ended")
        return searcher.stop_reason
    finally:
        if measuring is not None:
            measuring.close()
        if started_ray:
            import ray

            ray.shutdown()


def finish_run(
    run: RunFolder,
    settings: SearchSettings,
    table: TrialTable,
    stop_reason: str | None,
    console: Console,
) -> SearchOutcome:
    """pareto.json, pareto.png, best/*.yaml and the summary table, from the trial table."""
    rows = table.with_status("completed")
    budgets = {
        "flops": settings.budget_flops,
        "params": settings.budget_params,
        "latency_ms": settings.eval.latency_budget_ms,
    }
    front = write_pareto(run.pareto_json, rows, budgets)
    title = f"{run.path.name}: {len(rows)} trials, hw {settings.eval.hw}, budget {_budget_text(settings)}"
    plot_pareto(run.pareto_png, rows, budgets, title)
    if front:
        write_configs(front, run.best_dir)
        console.print(
            front_table(
                rows, f"Pareto front of {run.path.name} ({len(front)} of {len(rows)} completed)"
            )
        )
    counts = {
        status: table.count(status)
        for status in ("completed", "rejected", "duplicate", "failed", "stopped", "lost")
    }
    console.print(
        f"{counts['completed']}/{settings.trials} completed, {counts['rejected']} rejected, "
        f"{counts['duplicate']} duplicates, {counts['failed']} failed"
        + (f"; stopped early: {stop_reason}" if stop_reason else "")
        + f"\nrun folder: {run.path}  (best configs in {run.best_dir}, study: sqlite:///{run.study_db})"
    )
    return SearchOutcome(run.path, counts["completed"], settings.trials, front, stop_reason, counts)


@contextmanager
def _quiet_tune() -> Iterator[None]:
    """Tune's own console output off (our progress lines say it): its legacy reporter at verbose 0."""
    # Failed trials: our progress line has the reason, the trial folder's error.txt the trace.
    settings = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_PRINT_ALL_TRIAL_ERRORS": "0"}
    previous = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    loggers = [logging.getLogger(name) for name in ("ray.tune", "ray.train", "ray.air")]
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


def make_console() -> Console:
    """Rich console; logs and pipes get long lines instead of rich's 80 columns."""
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=160)


def connect_ray(address: str | None) -> bool:
    """Join `address`, or start a local Ray without dashboard; True if this call started it."""
    import ray

    if ray.is_initialized():
        if address:
            raise UserError(
                "Ray is already initialised in this process: leave out the address, or call "
                "ray.shutdown() before searching on another cluster"
            )
        return False
    logging.getLogger("ray").setLevel(logging.WARNING)
    if address:
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as err:
            raise UserError(
                f"cannot join the Ray cluster at {address}: {str(err).splitlines()[0]}"
            ) from None
    else:
        # No dashboard. Ray 2.60 has no bind-to-localhost option for its other ports (they listen
        # on every interface); its token authentication, on by default, guards them.
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    return True


def default_concurrency(cpus_per_trial: int, reserved: int = 0) -> int:
    """As many trials at a time as the cluster has CPUs for, besides `reserved` ones."""
    import ray

    return max(1, (int(ray.cluster_resources().get("CPU", 1)) - reserved) // cpus_per_trial)


def _budget_text(settings: SearchSettings) -> str:
    parts = []
    if settings.budget_flops:
        parts.append(f"{format_si(settings.budget_flops)} FLOPs")
    if settings.budget_params:
        parts.append(f"{format_si(settings.budget_params)} params")
    if settings.eval.latency_budget_ms:
        parts.append(f"{settings.eval.latency_budget_ms:g} ms")
    return ", ".join(parts) or "none"

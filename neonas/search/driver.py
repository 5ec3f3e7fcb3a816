"""The search itself: Ray Tune runs the trials, a StudySearcher proposes them, the study keeps them.

    start_run / resume_run
      -> checks (space, budgets, latency budget, data) and the Ray cluster, before any file
      -> run folder (run.json, space.yaml, lock)        run_folder.py
      -> Optuna study on study.db, repaired on resume   study.py
      -> Tuner(run_trial, StudySearcher, ASHA)          searcher.py, trial.py
      -> trials.csv, appended per outcome               records.py
      -> pareto.json, pareto.png, best/*.yaml, summary  pareto.py, export.py, progress.py

Every session is a fresh Tuner in `tune/session-<n>`: the study carries the state across
sessions, not Tune's own experiment checkpoint (see study.py for why).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from neonas.arch import ArchConfig
from neonas.errors import UserError
from neonas.options import check_resumed, resumable
from neonas.search.export import write_configs
from neonas.search.pareto import plot_pareto, write_pareto
from neonas.search.progress import ProgressDisplay, front_table
from neonas.search.records import CsvLog, TrialRecord, TrialStatus, TrialTable
from neonas.search.references import reference_points
from neonas.search.run_folder import RunFolder
from neonas.search.settings import SEARCH_OPTIONS, SearchSettings, put, validated
from neonas.search.trial import ScoreCandidate, run_trial, score_candidate, screen_candidate
from neonas.si import format_si
from neonas.signals import ignored_data_note
from neonas.space import SearchSpace, load_space, space_from_yaml

if TYPE_CHECKING:  # the target registry imports torch; a search loads it only to run
    from evaluators.hardware import HardwareTarget
    from evaluators.sweep import SweepMeasurement
    from neonas.search.capacity import TrialResources

# The Ray resource a trial's GPU share is asked as; tests give a custom resource instead.
GPU_RESOURCE = "GPU"


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
    score: ScoreCandidate = score_candidate,
    console: Console | None = None,
    gpu_resource: str = GPU_RESOURCE,
) -> SearchOutcome:
    """A new run in `settings.run_dir`; checks space, budgets, data and cluster before any file.

    `gpu_resource` is the Ray resource that --gpus-per-trial asks for (a custom resource
    stands in for GPUs in tests)."""
    console = console or make_console()
    RunFolder.check_new(settings)  # before the slower checks below
    space = load_space(settings.space)
    check_inputs(space, settings)
    with ray_cluster(settings.address, console) as address:
        check_gpus(settings.gpus_per_trial, gpu_resource)
        info = {
            **space.describe(),
            "spec": space.spec.model_dump(mode="json"),
            "accuracy_signal": settings.eval.accuracy_signal,
        }
        run = RunFolder.create(settings, space.text, info, argv)
        with run.lock():
            return _session(run, settings, space, argv, score, console, address, gpu_resource)


def resume_run(
    name_or_path: str,
    overrides: dict[str, Any],
    results_dir: str = "results",
    argv: Sequence[str] = (),
    score: ScoreCandidate = score_candidate,
    console: Console | None = None,
    force: bool = False,
    gpu_resource: str = GPU_RESOURCE,
) -> SearchOutcome:
    """Continue a run (killed, stopped by its time budget or by a cluster that lost its
    capacity, or extended with more --trials)."""
    console = console or make_console()
    run = RunFolder.find(name_or_path, results_dir)
    settings = resumed_settings(run, overrides)
    space = space_from_yaml(run.space_yaml.read_text(), str(run.space_yaml))
    with ray_cluster(settings.address, console) as address, run.lock(force):
        check_gpus(settings.gpus_per_trial, gpu_resource, resuming=True)
        run.update_settings(settings)
        return _session(run, settings, space, argv, score, console, address, gpu_resource)


def resumed_settings(run: RunFolder, overrides: Mapping[str, Any]) -> SearchSettings:
    """The settings of `run` with the options a resume may change, after the resume rule
    (neonas/options.py): any other option given must equal the recorded value."""
    stored = run.settings()
    given = {key: value for key, value in overrides.items() if value is not None}
    recorded = {option.setting: _setting(stored, option.setting) for option in SEARCH_OPTIONS}
    check_resumed(
        given,
        recorded,
        SEARCH_OPTIONS,
        run=f"run {run.path.name}",
        instead="start a new run without --resume",
        list_resumable=True,
    )
    fields = stored.model_dump()
    for setting in resumable(SEARCH_OPTIONS):
        if setting in given:
            put(fields, setting, given[setting])
    fields.update(results_dir=str(run.path.parent), name=run.path.name)
    return validated(fields)


def check_gpus(gpus_per_trial: float, resource: str, resuming: bool = False) -> None:
    """UserError when trials would ask for GPUs on a Ray cluster that has none at all (they
    would wait forever)."""
    import ray

    if gpus_per_trial <= 0:
        return
    resources = ray.cluster_resources()
    if resources.get(resource, 0) > 0:
        return
    fix = (
        "give --gpus-per-trial 0 to continue on CPUs, or join a cluster with GPU nodes (--address)"
        if resuming
        else "leave out --gpus-per-trial, or join a cluster with GPU nodes (--address)"
    )
    gpu = "GPU" if resource == "GPU" else f"{resource} resource"
    raise UserError(
        f"--gpus-per-trial {gpus_per_trial:g}: the Ray cluster has no {gpu} "
        f"({sum(n['Alive'] for n in ray.nodes())} node(s), {int(resources.get('CPU', 0))} CPUs); "
        + fix
    )


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
    from evaluators.metrics import compute_metrics
    from neonas.models import build_model

    shape = (smallest.in_chans, smallest.input_size, smallest.input_size)
    latency = compute_metrics(
        build_model(smallest), shape, ["latency_ms", "latency_source"], target
    )
    source = latency["latency_source"]
    allowed = budget_ms * (MEASURED_LATENCY_SLACK if source == "measured" else 1.0)
    if latency["latency_ms"] > allowed:
        raise UserError(
            f"the smallest network of space {space.name!r} takes {latency['latency_ms']:.3g} ms on "
            f"{target.name} ({source}), over the latency budget of {budget_ms:g} ms: "
            "raise --latency-budget or use a smaller space"
        )


# Images decoded from each split before any trial starts: a folder of unreadable files is
# refused in a second instead of failing every trial.
IMAGES_CHECKED = 3


def check_images(data: str) -> None:
    """UserError unless `data` is a data folder whose first, middle and last images decode."""
    from neonas.train.data import DataError, detect_layout, load_split

    layout = detect_layout(data)  # UserError with what a data folder must look like
    for split in ("train", "val"):
        dataset = load_split(layout, split, lambda image: image)
        count = len(dataset)
        for index in sorted({0, count // 2, count - 1})[:IMAGES_CHECKED]:
            try:
                dataset[index]
            except DataError as err:  # already names the image and the cause
                raise UserError(f"cannot read the images of {data}: {err}") from None
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
    score: ScoreCandidate,
    console: Console,
    address: str | None,
    gpu_resource: str = GPU_RESOURCE,
) -> SearchOutcome:
    import optuna

    from neonas.search.capacity import TrialResources
    from neonas.search.study import make_sampler, open_storage, open_study, repair

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    session = run.start_session(argv)
    study = open_study(open_storage(run.study_db), settings.eval.objective)
    lost = repair(study, settings.eval.objective)
    if lost:
        console.print(
            f"resume: trials {lost} were in flight when the run stopped; their points run again"
        )
    table = TrialTable.from_study(study)
    csv_log = CsvLog(run.trials_csv)
    csv_log.rewrite(table)
    done = table.count("completed")
    console.print(
        f"run {run.path} (session {session}): {done}/{settings.trials} completed, "
        f"space {space.name}, hw {settings.eval.hw}, objective {settings.eval.objective}, "
        f"accuracy signal {settings.eval.accuracy_signal}, budget {_budget_text(settings)}"
    )
    note = ignored_data_note(settings.eval.signal, settings.eval.data is not None)
    if note:
        console.print(note)
    stop_reason = None
    started = time.time()
    if done < settings.trials:
        # A fresh seed per session: the sampler must not replay the previous session's draws.
        sampler = make_sampler(settings.sampler, settings.seed + len(study.trials), settings.trials)
        study.sampler = sampler
        resources = TrialResources(
            settings.eval.cpus_per_trial, settings.gpus_per_trial, gpu_resource
        )
        with measuring_stations(settings, resources, console) as measuring:
            stop_reason = _tune(
                run,
                settings,
                space,
                study,
                table,
                csv_log,
                session,
                measuring.wrap(score),
                console,
                address,
                measuring,
                resources,
            )
    csv_log.rewrite(table)
    outcome = finish_run(run, settings, table, stop_reason, console, space)
    run.end_session(
        session,
        {
            "completed": outcome.completed,
            "stop_reason": stop_reason,
            "seconds": round(time.time() - started, 1),
        },
    )
    return outcome


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


def _tune(
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
) -> str | None:
    """One Tuner.fit over the remaining trials; returns why it stopped early, if it did."""
    from ray import tune

    from neonas.search.capacity import CapacityWatch
    from neonas.search.objectives import ranking_metric
    from neonas.search.searcher import FailureReasons, StudySearcher
    from neonas.search.watch import CapacityCallback, CapacityStop

    concurrency = settings.concurrency or default_concurrency(resources, measuring.holds())
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
    with _quiet_tune():
        tuner.fit()
    searcher.stop_reason = searcher.stop_reason or watch.stop_reason
    if settings.time_budget_s and searcher.completed < settings.trials:
        searcher.stop_reason = (
            searcher.stop_reason or f"time budget of {settings.time_budget_s:g} s reached"
        )
    searcher.close(searcher.stop_reason or "stopped when the search ended")
    return searcher.stop_reason


def finish_run(
    run: RunFolder,
    settings: SearchSettings,
    table: TrialTable,
    stop_reason: str | None,
    console: Console,
    space: SearchSpace | None = None,
) -> SearchOutcome:
    """pareto.json, pareto.png, best/*.yaml and the summary, from full-fidelity trials only;
    the reference networks that fit the budget are scored and marked on the plot."""
    rows = table.with_status("completed")
    signal = settings.eval.accuracy_signal
    budgets = {
        "flops": settings.budget_flops,
        "params": settings.budget_params,
        "latency_ms": settings.eval.latency_budget_ms,
    }
    references, notes = reference_points(space.smallest(), settings) if space else ([], [])
    front = write_pareto(run.pareto_json, rows, budgets, signal, references)
    title = f"{run.path.name}: {len(rows)} trials, hw {settings.eval.hw}, budget {_budget_text(settings)}"
    plot_pareto(run.pareto_png, rows, budgets, title, signal, references)
    if front:
        write_configs(front, run.best_dir)
        console.print(
            front_table(
                rows,
                f"Pareto front of {run.path.name} ({len(front)} of {len(rows)} completed)",
                signal,
            )
        )
    for reference in references:
        console.print(
            f"reference {reference.name}: {signal} {reference.accuracy:.4g} at "
            f"{reference.latency_ms:.3g} ms, {format_si(reference.flops)} FLOPs (marked on pareto.png)"
        )
    for note in notes:
        console.print(note)
    warning = chance_warning(settings, table)
    if warning:
        console.print(f"[yellow]warning:[/] {warning}")
    counts = {status.value: table.count(status) for status in TrialStatus}
    console.print(
        f"{counts['completed']}/{settings.trials} completed, {counts['rejected']} rejected, "
        f"{counts['duplicate']} duplicates, {counts['failed']} failed"
        + pruned_text(table)
        + (f"; stopped early: {stop_reason}" if stop_reason else "")
        + f"\nrun folder: {run.path}  (best configs in {run.best_dir}, study: sqlite:///{run.study_db})"
    )
    return SearchOutcome(run.path, counts["completed"], settings.trials, front, stop_reason, counts)


def chance_warning(settings: SearchSettings, table: TrialTable) -> str | None:
    """What to raise when every short-training score is within noise of chance, else None.

    Noise: two binomial standard deviations of a top-1 at chance on the validation images used.
    """
    rows = table.with_status("completed", "pruned")
    if not settings.eval.short_training or not rows:
        return None
    from neonas.train.data import detect_layout, load_split

    layout = detect_layout(settings.eval.data)
    val = min(settings.eval.max_val_images, len(load_split(layout, "val", lambda image: image)))
    chance = 1 / len(layout.classes)
    band = 2 * (chance * (1 - chance) / val) ** 0.5
    best = max(row.metrics["accuracy"] for row in rows)
    if best > 100 * (chance + band):
        return None
    return (
        f"every trial scored within noise of chance (best {best:.1f} %; chance "
        f"{100 * chance:.1f} % +- {100 * band:.1f} % for {len(layout.classes)} classes on {val} "
        f"validation images): the ranking is noise; raise --epochs (now {settings.eval.epochs}) "
        f"or --train-images (now {settings.eval.max_train_images})"
    )


def pruned_text(table: TrialTable) -> str:
    """'; ASHA stopped 5 trials early (3 after epoch 1, 2 after epoch 2)', or nothing."""
    rungs = Counter(row.metrics.get("epochs") for row in table.with_status("pruned"))
    if not rungs:
        return ""
    detail = ", ".join(f"{count} after epoch {epoch}" for epoch, count in sorted(rungs.items()))
    return f"; ASHA stopped {sum(rungs.values())} trials early ({detail})"


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


# Where Ray 2.60 looks for the cluster's token, in its order (docs: ray-security/token-auth).
TOKEN_FILE = Path("~/.ray/auth_token")


def cluster_address(address: str | None) -> tuple[str | None, str]:
    """The cluster to join and what named it: --address, else RAY_ADDRESS, else none (local)."""
    if address:
        return address, "--address"
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"], "RAY_ADDRESS"
    return None, ""


@contextmanager
def ray_cluster(address: str | None, console: Console) -> Iterator[str | None]:
    """Ray for one session: the cluster at `address` (or RAY_ADDRESS), else a local Ray of its
    own; yields the address joined (None when local) and shuts Ray down after."""
    imported = sys.modules.get("ray")
    if imported is not None and imported.is_initialized():  # a caller's Ray (tests, notebooks)
        yield address
        return
    address, named_by = cluster_address(address)
    if address:
        check_reachable(address)
        choose_auth_mode(address)  # before `import ray`: Ray reads RAY_AUTH_MODE once per process
    import ray

    logging.getLogger("ray").setLevel(logging.WARNING)
    if address:
        join_cluster(address)
        resources = ray.cluster_resources()
        console.print(
            f"joined the Ray cluster at {address} (from {named_by}): {len(ray.nodes())} node(s), "
            f"{int(resources.get('CPU', 0))} CPUs"
        )
    else:
        # address="local": always a Ray of our own, never a cluster that an address file left
        # by `ray start` points to (alive, or dead: then ray.init would fail). No dashboard.
        # Ray 2.60 has no bind-to-localhost option for its other ports (they listen on every
        # interface); its token authentication, on by default for a local Ray, guards them.
        ray.init(
            address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False
        )
    try:
        yield address
    finally:
        ray.shutdown()


def check_reachable(address: str) -> None:
    """UserError when nothing answers at HOST:PORT (ray.init would retry for minutes)."""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", "ray://...": Ray's own forms, Ray checks them
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as err:
        raise UserError(
            f"cannot join the Ray cluster at {address}: nothing answers there ({err.strerror or err}); "
            "start it with `ray start --head --port PORT` or check --address"
        ) from None


def choose_auth_mode(address: str) -> None:
    """Set RAY_AUTH_MODE for joining `address` when the user has not.

    Ray 2.60's `ray start --head` turns token authentication on and keeps the token in
    ~/.ray/auth_token, but a driver joining by address sends it only with RAY_AUTH_MODE=token,
    and a driver in token mode cannot serve the actors of a cluster without authentication
    (ray.cluster_utils, RAY_AUTH_MODE=disabled). With a token at hand, a short probe decides.
    """
    if auth_token_source() and not os.environ.get("RAY_AUTH_MODE"):
        os.environ["RAY_AUTH_MODE"] = "token" if cluster_takes_token(address) else "disabled"


def join_cluster(address: str) -> None:
    """ray.init(address); UserError with what to set when the cluster refuses us."""
    import ray

    try:
        ray.init(address=address, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as err:
        causes = f"{err} {err.__cause__ or ''}".lower()
        if "token" in causes or "unauthenticated" in causes:
            token = auth_token_source()
            if not token:
                fix = (
                    "it asks for a token and this machine has none: copy the head node's "
                    "~/.ray/auth_token here, or set RAY_AUTH_TOKEN"
                )
            elif os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
                fix = "it asks for a token: set RAY_AUTH_MODE=token"
            else:
                fix = f"the token from {token} was refused: use the head node's ~/.ray/auth_token"
            raise UserError(f"cannot join the Ray cluster at {address}: {fix}") from None
        raise UserError(
            f"cannot join the Ray cluster at {address}: {str(err).splitlines()[0]}"
        ) from None


# Joins in token mode and starts one actor: exit status 3 when the actor dies at once, the
# sign of a cluster without authentication (its workers cannot call a token-mode driver).
_TOKEN_PROBE = """
import sys, ray
ray.init(address=sys.argv[1], log_to_driver=False)
@ray.remote(num_cpus=0, max_restarts=0)
class Probe:
    def ping(self):
        return 1
try:
    ray.get(Probe.remote().ping.remote(), timeout=60)
except ray.exceptions.ActorDiedError:
    sys.exit(3)
"""


def cluster_takes_token(address: str) -> bool:
    """Whether the cluster at `address` runs token authentication (a few seconds, in a child
    process: a Ray driver keeps its authentication mode for the life of its process)."""
    import subprocess

    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _TOKEN_PROBE, address], env=env, capture_output=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        return True  # undecided: the join below reports what is wrong
    return done.returncode != 3


def auth_token_source() -> str | None:
    """Where this machine has a Ray token: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or the default file."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return os.environ["RAY_AUTH_TOKEN_PATH"]
    return str(TOKEN_FILE) if TOKEN_FILE.expanduser().is_file() else None


def default_concurrency(
    resources: TrialResources, held: dict[str, dict[str, float]] | None = None
) -> int:
    """As many trials at a time as the cluster has CPUs (and GPUs, for GPU trials) for,
    besides what the measuring stations hold."""
    import ray

    total = ray.cluster_resources()
    taken: Counter[str] = Counter()
    for node_holds in (held or {}).values():
        taken.update(node_holds)
    return max(
        1,
        min(
            int((total.get(name, 0) - taken[name]) // amount + 1e-9)
            for name, amount in resources.bundle().items()
        ),
    )


def _budget_text(settings: SearchSettings) -> str:
    parts = []
    if settings.budget_flops:
        parts.append(f"{format_si(settings.budget_flops)} FLOPs")
    if settings.budget_params:
        parts.append(f"{format_si(settings.budget_params)} params")
    if settings.eval.latency_budget_ms:
        parts.append(f"{settings.eval.latency_budget_ms:g} ms")
    return ", ".join(parts) or "none"

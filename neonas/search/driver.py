"""The search itself: Ray Tune runs the trials, a StudySearcher proposes them, the study keeps them.

    start_run / resume_run
      -> checks (space, budgets, latency budget, data), before any file  checks.py
      -> the Ray cluster (joined, or a local Ray)                         here
      -> run folder (run.json, space.yaml, lock)                          run_folder.py
      -> resume: the recorded settings, the resume rule                   here, settings.py
      -> Optuna study on study.db, repaired on resume                     study.py
      -> Tuner(run_trial, StudySearcher, ASHA)                            tune_run.py
      -> trials.csv, appended per outcome                                 records.py
      -> pareto.json, pareto.png, best/*.yaml, summary                    summary.py

Every session is a fresh Tuner in `tune/session-<n>`: the study carries the state across
sessions, not Tune's own experiment checkpoint (see study.py for why).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console

from neonas.cluster import ray_cluster
from neonas.options import check_resumed, resumable
from neonas.search.checks import check_gpus, check_inputs, short_training_note
from neonas.search.records import CsvLog, TrialTable
from neonas.search.run_folder import RunFolder
from neonas.search.settings import SEARCH_OPTIONS, SearchSettings, put, validated
from neonas.search.summary import SearchOutcome, budget_text, finish_run
from neonas.search.trial import ScoreCandidate, score_candidate
from neonas.search.tune_run import measuring_stations, run_tune
from neonas.signals import ignored_data_note
from neonas.space import SearchSpace, load_space, space_from_yaml

if TYPE_CHECKING:
    from neonas.search.capacity import TrialResources

# The Ray resource a trial's GPU share is asked as; tests give a custom resource instead.
GPU_RESOURCE = "GPU"


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
    with ray_cluster(settings.address, console.print) as address:
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
    with ray_cluster(settings.address, console.print) as address, run.lock(force):
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


def _setting(settings: SearchSettings, path: str) -> Any:
    """A setting by dotted path, e.g. 'eval.hw'."""
    value: Any = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


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
        f"accuracy signal {settings.eval.accuracy_signal}, sampler {settings.sampler}, "
        f"budget {budget_text(settings)}"
    )
    notes = (
        ignored_data_note(settings.eval.signal, settings.eval.data is not None),
        short_training_note(settings),
    )
    for note in notes:
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
            concurrency = settings.concurrency or default_concurrency(resources, measuring.holds())
            stop_reason = run_tune(
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
                concurrency,
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


def make_console() -> Console:
    """Rich console; logs and pipes get long lines instead of rich's 80 columns."""
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=160)


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

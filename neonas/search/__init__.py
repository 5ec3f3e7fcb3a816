"""Latency-aware architecture search over NeoCell networks: spaces, the Ray Tune + Optuna
driver, the run folder, the Pareto front and export.

    space.py       search spaces as YAML data -> ArchConfigs (suggest, sample, from_params)
    settings.py    SearchSettings / EvalSettings: a run's options, stored in run.json
    trial.py       the driver-side screen (FLOPs, params) and the per-trial evaluation
    searcher.py    Ray's Searcher over the study: screens, tells, ends the run
    capacity.py    trials' Ray resources; whether the cluster can still run a trial
    watch.py       the capacity watch as a Tune callback and stopper
    study.py       the Optuna study on SQLite (the one record of trials), sampler, repair
    records.py     TrialRecord read from the study; trials.csv written from it
    run_folder.py  results/<name>/: run.json, lock, paths
    pareto.py      Pareto front, pareto.json, pareto.png
    export.py      best/*.yaml (`neonas export`)
    progress.py    progress lines and the final summary table
    driver.py      start_run / resume_run

Importing this package loads neither torch nor ray.
"""

from neonas.search.driver import SearchOutcome, resume_run, start_run
from neonas.search.export import export_run, select_best
from neonas.search.pareto import pareto_front
from neonas.search.records import TrialRecord, TrialTable
from neonas.search.settings import EvalSettings, SearchSettings
from neonas.search.space import SearchSpace, available_spaces, load_space

__all__ = [
    "EvalSettings",
    "SearchOutcome",
    "SearchSettings",
    "SearchSpace",
    "TrialRecord",
    "TrialTable",
    "available_spaces",
    "export_run",
    "load_space",
    "pareto_front",
    "resume_run",
    "select_best",
    "start_run",
]

"""Latency-aware architecture search over NeoCell networks: the Ray Tune + Optuna driver, the
run folder, the Pareto front and export. The search space and the accuracy signals' names are
one layer below (neonas/space.py, neonas/signals.py; README, "Architecture"), used by the
supernet too; their public names are offered here as well.

    settings.py    SearchSettings / EvalSettings: a run's options, stored in run.json, and
                   the options of `neonas search`, each declared once (SEARCH_OPTIONS)
    trial.py       the driver-side screen (FLOPs, params) and the per-trial evaluation
    searcher.py    Ray's Searcher over the study: screens, tells, ends the run
    capacity.py    trials' Ray resources; whether the cluster can still run a trial
    watch.py       the capacity watch as a Tune callback and stopper
    study.py       the Optuna study on SQLite (the one record of trials), sampler, repair,
                   load_trials (a run's TrialTable)
    records.py     TrialRecord read from the study; trials.csv written from it
    run_folder.py  results/<name>/: run.json, lock, paths
    pareto.py      Pareto front, pareto.json, pareto.png
    export.py      best/*.yaml (`neonas export`)
    progress.py    progress lines and the final summary table
    checks.py      input checks before any file (budgets, target, images, GPUs)
    tune_run.py    one session's Ray Tune run and the latency-measuring stations
    summary.py     how a session ends: Pareto front, best configs, the summary printed
    driver.py      start_run / resume_run: a session from the checks to the summary

The names below are imported on first use (PEP 562): importing this package, or any one module
of it, runs none of the others (the driver would load rich, Ray and Optuna).
"""

from __future__ import annotations

from neonas.lazy import lazy_getattr

# public name -> the module that defines it
_EXPORTS = {
    "SearchOutcome": "neonas.search.summary",
    "resume_run": "neonas.search.driver",
    "start_run": "neonas.search.driver",
    "export_run": "neonas.search.export",
    "select_best": "neonas.search.export",
    "pareto_front": "neonas.search.pareto",
    "TrialRecord": "neonas.search.records",
    "TrialTable": "neonas.search.records",
    "EvalSettings": "neonas.search.settings",
    "SearchSettings": "neonas.search.settings",
    "load_trials": "neonas.search.study",
    "SearchSpace": "neonas.space",
    "available_spaces": "neonas.space",
    "load_space": "neonas.space",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)

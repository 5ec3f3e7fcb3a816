"""`neonas search`: latency-aware architecture search, Ray Tune running trials that Optuna proposes.

    neonas search --hw ascend --budget 4.4G             the main command (1-2 minutes, 2 idle cores)
    neonas search --space tiny --data cifar10/ --supernet results/supernet/tiny/last.pt
    neonas search --resume NAME_OR_FOLDER [--trials N]  continue a killed or finished run

Defaults: the neonext space (ImageNet, 224), predicted Ascend latency, the cheapest accuracy
signal that ranked level with the best in benchmarks/accuracy_signals.py
(neonas.signals), TPE, as many trials at a time as Ray has CPUs; each default is in
`neonas search --help`, read from neonas/search/settings.py, where every option is declared.
See docs/search.md.
"""

from __future__ import annotations

import argparse
import re
import time

from neonas.errors import UserError
from neonas.options import add_options, given_settings
from neonas.search.settings import (
    RUN,
    SEARCH_OPTIONS,
    SearchSettings,
    search_defaults,
    setting_default,
    settings_from_options,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `neonas search`: those that set the run's settings are declared once, in
    neonas/search/settings.py; those here name the run folder."""
    groups = add_options(parser, SEARCH_OPTIONS, search_defaults())
    run = groups[RUN]
    run.add_argument("--name", help="run name (default <space>-<hw>-<budget>-<time>)")
    run.add_argument(
        "--results-dir",
        default="results",
        metavar="DIR",
        help="where run folders go (default results/)",
    )
    run.add_argument("--resume", metavar="RUN", help="continue the run with this name or folder")
    run.add_argument(
        "--force",
        action="store_true",
        default=None,
        help="with --resume: take over a run locked by a driver on another host that is dead",
    )


def run(args: argparse.Namespace) -> int:
    """Start or resume a search; returns 0 once the run folder is complete for this session."""
    import torch

    from neonas.search.driver import resume_run, start_run

    # The driver builds and counts every proposal while trials use the other cores.
    torch.set_num_threads(1)
    argv = given_options(args)
    if args.resume:
        if args.name:
            raise UserError("--resume names the run to continue; leave out --name")
        resume_run(
            args.resume,
            given_settings(args, SEARCH_OPTIONS),
            args.results_dir,
            argv,
            force=bool(args.force),
        )
    else:
        if args.force:
            raise UserError("--force takes over the lock of a run to --resume; a new run has none")
        start_run(settings_from_args(args), argv)
    return 0


def given_options(args: argparse.Namespace) -> list[str]:
    """The options as given (defaults left out), for run.json: how to repeat this command."""
    argv = []
    for key, value in vars(args).items():
        if key.startswith("_") or key == "command" or value is None:
            continue
        if key == "results_dir" and value == "results":
            continue
        option = f"--{key.replace('_', '-')}"
        argv += [option] if value is True else [option, str(value)]
    return argv


def settings_from_args(args: argparse.Namespace) -> SearchSettings:
    """SearchSettings for a new run from the command line (UserError for bad values)."""
    given = given_settings(args, SEARCH_OPTIONS)
    name = args.name or default_name(
        args.space or setting_default("space"), args.hw or setting_default("eval.hw"), args.budget
    )
    return settings_from_options(given, name, args.results_dir)


def default_name(space: str, hw: str, budget: str | None) -> str:
    """e.g. neonext-ascend-4.4G-20261122-140501: what, where, how much, when."""
    stem = re.sub(r"[^A-Za-z0-9.]+", "-", space.rsplit("/", 1)[-1].removesuffix(".yaml"))
    parts = [stem, re.sub(r"[^A-Za-z0-9.]+", "-", hw)] + ([budget] if budget else [])
    return "-".join(parts + [time.strftime("%Y%m%d-%H%M%S")])

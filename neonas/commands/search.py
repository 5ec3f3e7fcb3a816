"""`neonas search`: latency-aware architecture search, Ray Tune running trials that Optuna proposes.

    neonas search --hw ascend --budget 4.4G             the main command (1-2 minutes, 2 idle cores)
    neonas search --space tiny --data cifar10/ --supernet results/supernet/tiny/last.pt
    neonas search --resume NAME_OR_FOLDER [--trials N]  continue a killed or finished run

Defaults: the neonext space (ImageNet, 224), predicted Ascend latency, the cheapest accuracy
signal that ranked level with the best in benchmarks/accuracy_signals.py
(neonas.signals), 32 completed trials, TPE, as many trials at a time as Ray has CPUs.
See docs/search.md.
"""

from __future__ import annotations

import argparse
import re
import time
from typing import Any

from neonas.commands.arguments import non_negative_float, positive_int
from neonas.errors import UserError
from neonas.signals import (
    DEFAULT_WITH_DATA,
    DEFAULT_ZERO_COST,
    SHORT_TRAINING,
    TRIAL_SIGNALS,
    default_signal,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `neonas search`."""
    target = parser.add_argument_group("target and budgets")
    target.add_argument(
        "--hw", help="latency target: ascend (default, predicted Ascend 310), cpu, cuda, npu, ..."
    )
    target.add_argument(
        "--budget",
        metavar="FLOPS",
        help="hard FLOPs limit (multiply-adds, as `profile`), e.g. 4.4G",
    )
    target.add_argument("--params-budget", metavar="N", help="hard parameter limit, e.g. 30M")
    target.add_argument(
        "--latency-budget", metavar="TIME", help="hard latency limit on --hw, e.g. 2ms"
    )
    what = parser.add_argument_group("what to search and how")
    what.add_argument(
        "--space", metavar="NAME|FILE", help="search space: neonext (default), tiny, or a YAML file"
    )
    what.add_argument(
        "--trials", type=positive_int, metavar="N", help="completed trials to reach (default 32)"
    )
    what.add_argument(
        "--max-failures",
        type=positive_int,
        metavar="N",
        help="end the run after N trials in a row failed (default 10)",
    )
    what.add_argument(
        "--time-budget", metavar="DURATION", help="stop this invocation after e.g. 90s, 20m, 2h"
    )
    what.add_argument(
        "--objective",
        choices=("pareto", "scalar"),
        help="pareto (default): accuracy signal vs latency; scalar: MnasNet reward",
    )
    what.add_argument(
        "--latency-target",
        metavar="TIME",
        help="T of the scalar reward acc*(lat/T)^w (default: --latency-budget)",
    )
    what.add_argument(
        "--latency-weight",
        type=float,
        metavar="W",
        help="w of the scalar reward (default -0.07, MnasNet)",
    )
    what.add_argument("--sampler", choices=("tpe", "nsga2"), help="Optuna sampler (default tpe)")
    what.add_argument(
        "--signal",
        "--proxy",  # its name before short training became one of the choices
        dest="signal",
        choices=TRIAL_SIGNALS,
        metavar="NAME",
        help=f"accuracy signal of each trial: {', '.join(TRIAL_SIGNALS)} (default "
        + (
            f"{DEFAULT_ZERO_COST}, with or without --data"
            if DEFAULT_WITH_DATA == DEFAULT_ZERO_COST
            else f"{DEFAULT_ZERO_COST}; with --data {DEFAULT_WITH_DATA}"
        )
        + "; docs/search.md, 'Accuracy signals')",
    )
    what.add_argument(
        "--signal-draws",
        type=positive_int,
        metavar="K",
        help="score each network by the mean of a zero-cost signal over K seeded weight draws "
        "(default 1; K times the signal's cost)",
    )
    what.add_argument(
        "--data",
        metavar="DIR",
        help="ImageFolder or CIFAR-10 python folder: the images signals read and train on",
    )
    what.add_argument(
        "--supernet",
        metavar="CKPT",
        help="score each trial by its weights in this `supernet train` checkpoint (needs --data)",
    )
    what.add_argument(
        "--epochs",
        type=positive_int,
        metavar="N",
        help="epochs of --signal short-training (default 6; ASHA may stop weak trials from "
        "half-way)",
    )
    what.add_argument(
        "--train-images",
        type=positive_int,
        metavar="N",
        help="training images per trial of --signal short-training (default 2000)",
    )
    what.add_argument(
        "--image-size",
        type=positive_int,
        metavar="PX",
        help="resolution of --signal short-training (default min(input, 64))",
    )
    what.add_argument(
        "--seed", type=int, help="seed of the sampler and of every network's weights (default 0)"
    )
    run = parser.add_argument_group("run folder and cluster")
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
    run.add_argument(
        "--concurrency",
        type=positive_int,
        metavar="N",
        help="trials at a time (default: CPUs in the Ray cluster)",
    )
    run.add_argument(
        "--gpus-per-trial",
        type=non_negative_float,
        metavar="X",
        help="share of a GPU each trial asks Ray for, e.g. 0.25 or 1 (default 0: trials on "
        "CPUs); short training and --supernet scoring then run on it",
    )
    run.add_argument(
        "--address", help="an existing Ray cluster, e.g. 10.0.0.1:6379 (default: a local Ray)"
    )
    run.add_argument(
        "--storage",
        metavar="PATH",
        help="shared storage for the Ray Tune experiment on a multi-node cluster",
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
            args.resume, _resume_overrides(args), args.results_dir, argv, force=bool(args.force)
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


def settings_from_args(args: argparse.Namespace) -> Any:
    """SearchSettings for a new run from the command line (UserError for bad values)."""
    from pydantic import ValidationError

    from neonas.search.settings import EvalSettings, SearchSettings
    from neonas.si import parse_ms, parse_si

    refuse_inapplicable(args, has_data=args.data is not None, objective=args.objective)
    budget = parse_si(args.budget, "--budget") if args.budget else None
    latency_budget = (
        parse_ms(args.latency_budget, "--latency-budget") if args.latency_budget else None
    )
    target = (
        parse_ms(args.latency_target, "--latency-target") if args.latency_target else latency_budget
    )
    eval_fields = {
        "hw": args.hw,
        "objective": args.objective,
        "latency_budget_ms": latency_budget,
        "latency_target_ms": target,
        "latency_weight": args.latency_weight,
        "signal": args.signal,
        "signal_draws": args.signal_draws,
        "data": _absolute(args.data),
        "supernet": _absolute(args.supernet),
        "epochs": args.epochs,
        "max_train_images": args.train_images,
        "image_size": args.image_size,
        "seed": args.seed,
    }
    space = args.space or "neonext"
    fields = {
        "name": args.name or default_name(space, args.hw or "ascend", args.budget),
        "results_dir": args.results_dir,
        "space": space,
        "budget_flops": budget,
        "budget_params": parse_si(args.params_budget, "--params-budget")
        if args.params_budget
        else None,
        "trials": args.trials,
        "max_failures": args.max_failures,
        "time_budget_s": parse_duration(args.time_budget) if args.time_budget else None,
        "concurrency": args.concurrency,
        "gpus_per_trial": args.gpus_per_trial,
        "sampler": args.sampler,
        "address": args.address,
        "storage": _absolute(args.storage, uri_ok=True),
    }
    try:
        evaluation = EvalSettings(**{k: v for k, v in eval_fields.items() if v is not None})
        return SearchSettings(eval=evaluation, **{k: v for k, v in fields.items() if v is not None})
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UserError(
            f"{where + ': ' if where else ''}{first['msg'].removeprefix('Value error, ')}"
        ) from None


def refuse_inapplicable(args: argparse.Namespace, has_data: bool, objective: str | None) -> None:
    """UserError for an option that would silently do nothing in this run."""
    supernet = getattr(args, "supernet", None)
    if supernet and args.signal is not None:
        raise UserError("--supernet scores each trial by its inherited weights: leave out --signal")
    if args.signal == SHORT_TRAINING and not has_data:
        raise UserError(f"--signal {SHORT_TRAINING} trains each network: add --data DIR")
    signal = args.signal or default_signal(has_data)
    for option in ("epochs", "image_size", "train_images"):
        if getattr(args, option) is None:
            continue
        flag = f"--{option.replace('_', '-')}"
        if supernet:
            raise UserError(
                f"{flag} sets short training: with --supernet each trial is scored by its "
                "inherited weights; leave it out"
            )
        if signal != SHORT_TRAINING:
            raise UserError(
                f"{flag} sets short training, and this run's signal is {signal}: add "
                f"--signal {SHORT_TRAINING}{'' if has_data else ' --data DIR'} or leave it out"
            )
    if (objective or "pareto") == "pareto":
        for option in ("latency_target", "latency_weight"):
            if getattr(args, option) is not None:
                raise UserError(
                    f"--{option.replace('_', '-')} sets the scalar reward: add --objective scalar "
                    "or leave it out (the Pareto objective keeps latency as its own axis)"
                )


def _resume_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """What the command line says, keyed by settings field (dotted); None where not given.

    The driver lets --trials, --max-failures, --time-budget, --concurrency, --gpus-per-trial,
    --address and --storage change on resume and refuses any other option that differs from the run's settings.
    """
    from neonas.si import parse_ms, parse_si

    def parsed(value: str | None, parse: Any, what: str) -> Any:
        return parse(value, what) if value else None

    return {
        "trials": args.trials,
        "max_failures": args.max_failures,
        "time_budget_s": parse_duration(args.time_budget) if args.time_budget else None,
        "concurrency": args.concurrency,
        "gpus_per_trial": args.gpus_per_trial,
        "address": args.address,
        "storage": _absolute(args.storage, uri_ok=True),
        "space": args.space,
        "budget_flops": parsed(args.budget, parse_si, "--budget"),
        "budget_params": parsed(args.params_budget, parse_si, "--params-budget"),
        "sampler": args.sampler,
        "eval.hw": args.hw,
        "eval.latency_budget_ms": parsed(args.latency_budget, parse_ms, "--latency-budget"),
        "eval.objective": args.objective,
        "eval.latency_target_ms": parsed(args.latency_target, parse_ms, "--latency-target"),
        "eval.latency_weight": args.latency_weight,
        "eval.signal": args.signal,
        "eval.signal_draws": args.signal_draws,
        "eval.data": _absolute(args.data),
        "eval.supernet": _absolute(args.supernet),
        "eval.epochs": args.epochs,
        "eval.max_train_images": args.train_images,
        "eval.image_size": args.image_size,
        "eval.seed": args.seed,
    }


def default_name(space: str, hw: str, budget: str | None) -> str:
    """e.g. neonext-ascend-4.4G-20261122-140501: what, where, how much, when."""
    stem = re.sub(r"[^A-Za-z0-9.]+", "-", space.rsplit("/", 1)[-1].removesuffix(".yaml"))
    parts = [stem, re.sub(r"[^A-Za-z0-9.]+", "-", hw)] + ([budget] if budget else [])
    return "-".join(parts + [time.strftime("%Y%m%d-%H%M%S")])


def parse_duration(text: str) -> float:
    """'90s', '20m', '2h' or plain seconds -> seconds; UserError otherwise."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise UserError(
            f"bad --time-budget {text!r}: use a positive duration such as 90s, 20m or 2h"
        )
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def _absolute(path: str | None, uri_ok: bool = False) -> str | None:
    """Trials run in their own folders (and maybe on other nodes): paths must not be relative.

    With `uri_ok`, a URI such as s3://bucket/prefix (Ray Tune storage) is kept as it is.
    """
    from pathlib import Path

    if not path or (uri_ok and "://" in path):
        return path
    return str(Path(path).expanduser().resolve())

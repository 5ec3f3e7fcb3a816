"""`neonas profile`: parameters, FLOPs, latency and matrix efficiency of one model.

The report itself is `evaluators.profile.profile_model`; this module parses and prints.

Contract (docs/hardware.md): with --json, one JSON object on stdout with at least params, flops,
flops_patchwise, latency_ms, latency_source and hw. FLOPs and parameters are per image;
latency is for one forward of --batch images on --hw, measured or predicted as it says, on
the model's inference form (NeoNeXt: BatchNorm folded). `--space` instead reports the matrix
efficiency of a search space: mean and spread over networks drawn from it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from neonas.commands.arguments import positive_float, positive_int
from neonas.errors import UserError

DEFAULT_SAMPLES = 20
DEFAULT_TIME_CAP_S = 10.0
# Options about one model's measurement: with --space they would do nothing.
MODEL_OPTIONS = ("res", "batch", "hw", "dtype", "threads", "cuda_graphs", "time_cap")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `neonas profile`."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", metavar="NAME", help="neonext_tiny|small|base or any timm model")
    source.add_argument("--config", metavar="FILE", help="an ArchConfig YAML file")
    source.add_argument(
        "--space",
        metavar="SPACE",
        help="a search space (tiny, neonext or a YAML file): matrix efficiency over --samples networks",
    )
    parser.add_argument(
        "--samples",
        type=positive_int,
        metavar="N",
        help="networks drawn with --space (default 20)",
    )
    parser.add_argument(
        "--res",
        type=positive_int,
        metavar="N",
        help="input resolution N x N (default: the model's)",
    )
    parser.add_argument(
        "--batch",
        type=positive_int,
        metavar="B",
        help="batch size for latency (default 1)",
    )
    parser.add_argument(
        "--hw",
        help="target: cpu, cuda[:N], npu[:N], ascend, ascend310, ascend910, lut:PATH (default cpu)",
    )
    parser.add_argument(
        "--dtype", choices=("fp32", "fp16", "bf16"), help="default: fp32 measured, fp16 on Ascend"
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="CPU threads for --hw cpu (default: torch's)",
    )
    parser.add_argument(
        "--cuda-graphs", action="store_true", help="time a captured CUDA graph (--hw cuda)"
    )
    parser.add_argument(
        "--time-cap",
        type=positive_float,
        metavar="S",
        help="seconds of timing at most (default 10)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object and nothing else"
    )


def run(args: argparse.Namespace) -> int:
    """Profile the model and print the report (or one JSON object with --json)."""
    from rich.console import Console

    from evaluators import TargetOptions, get_hw
    from evaluators.latency.measure import MeasureSettings
    from evaluators.profile import load_model_to_profile, profile_model

    status = Console(stderr=True)
    if args.space:
        _refuse(args, MODEL_OPTIONS, "--space reports the matrix efficiency of a space")
        return _profile_space(args, status)
    _refuse(args, ("samples",), "--samples counts the networks drawn with --space")
    hw = args.hw or "cpu"
    if args.threads is not None and hw != "cpu":
        raise UserError(f"--threads sets torch's CPU threads: it applies to --hw cpu, not {hw}")
    # A bad --hw or an absent device fails before any model is built.
    options = TargetOptions(
        threads=args.threads,
        cuda_graphs=args.cuda_graphs,
        measure=MeasureSettings(max_time_s=args.time_cap or DEFAULT_TIME_CAP_S),
    )
    target = get_hw(hw, options)
    if target.source != "measured":
        _refuse(args, ("time_cap", "cuda_graphs"), f"{hw} latency is predicted, not timed")
    with status.status("building the model", spinner="dots") as spinner:
        model, label, chw = load_model_to_profile(args.model, args.config, args.res)
        spinner.update("counting FLOPs and matrix efficiency")
        report = profile_model(
            model, chw, target, batch=args.batch or 1, dtype=args.dtype, on_step=spinner.update
        )
    report = {"model": label, **report}
    if args.json:
        text = json.dumps(report)  # serialised first: a failure leaves stdout empty
        sys.stdout.write(text + "\n")
    else:
        _print_report(report)
    return 0


def _refuse(args: argparse.Namespace, names: tuple[str, ...], why: str) -> None:
    """UserError naming the first of `names` given on the command line: it would do nothing."""
    for name in names:
        if getattr(args, name) not in (None, False):
            raise UserError(f"{why}: leave out --{name.replace('_', '-')}")


def _profile_space(args: argparse.Namespace, status: Any) -> int:
    """Matrix efficiency of a search space: mean and spread over sampled networks."""
    import random

    from evaluators.matrix_efficiency import efficiency_spread
    from neonas.search import load_space

    space = load_space(args.space)
    samples = args.samples or DEFAULT_SAMPLES
    rng = random.Random(0)
    with status.status(f"matrix efficiency of {samples} networks of {space.name}"):
        result = efficiency_spread(space.sample(rng) for _ in range(samples))
    report = {
        "space": space.name,
        "samples": result.samples,
        "matrix_efficiency_mean": result.mean,
        "matrix_efficiency_std": result.std,
        "matrix_efficiency_min": result.min,
        "matrix_efficiency_max": result.max,
    }
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        print(
            f"{space.name}: matrix efficiency {result.mean * 100:.1f} % +- {result.std * 100:.1f} % "
            f"(min {result.min * 100:.1f} %, max {result.max * 100:.1f} %) over {result.samples} networks"
        )
    return 0


def _print_report(report: dict[str, Any]) -> None:
    """Human form: a summary and a per-stage table (rich)."""
    from rich.console import Console
    from rich.table import Table

    from neonas.si import format_si

    console = Console(highlight=False)
    c, h, w = report["input_size"]
    if report["latency_source"] == "measured":
        spread = (
            f"spread {report['latency_spread'] * 100:.1f} % (robust CV), IQR "
            f"{report['latency_iqr_ms']:.3f} ms, {report['latency_runs']} runs"
        )
        if not report["latency_stable"]:
            spread += ", did not settle under 5 %"
    else:
        spread = "prediction"
    # markup=False: names and devices may contain [brackets]
    console.print(
        f"{report['model']} at {c}x{h}x{w}, batch {report['batch']}, {report['dtype']}",
        markup=False,
    )
    console.print(
        f"params {format_si(report['params'])}  FLOPs {format_si(report['flops'])}  "
        f"patch-wise {format_si(report['flops_patchwise'])}  "
        f"tiled {format_si(report['flops_tiled'])}  "
        f"matrix efficiency {report['matrix_efficiency'] * 100:.1f} %"
    )
    console.print(
        f"latency {report['latency_ms']:.3f} ms ({report['latency_source']}) on {report['hw']} "
        f"({report['device']}; {spread})",
        markup=False,
    )
    table = Table(title="per stage")
    for column in ("stage", "params", "FLOPs", "matrix eff.", "latency ms"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for row in report["stages"]:
        table.add_row(
            row["name"],
            format_si(row["params"]),
            format_si(row["flops"]),
            "-" if row["matrix_efficiency"] is None else f"{row['matrix_efficiency'] * 100:.1f} %",
            "-" if row["latency_ms"] is None else f"{row['latency_ms']:.3f}",
        )
    console.print(table)

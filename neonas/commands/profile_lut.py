"""`neonas profile-lut`: measure a latency lookup table for a device over a search space.

Every distinct unit (stem, transition, block, head at its input shape) of `--samples`
networks drawn from the space is timed once on `--hw` and stored in `--out` (JSON, written
after every unit, so an interrupted run keeps what it measured and a second run extends the
table). `--validate K` then compares predicted and measured latency of K further networks.
Use the table in a search or in `profile` as `--hw lut:FILE`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from neonas.commands.arguments import non_negative_int, positive_float, positive_int
from neonas.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `neonas profile-lut`."""
    parser.add_argument(
        "--hw", default="cpu", help="device to measure: cpu, cuda[:N] or npu[:N] (default cpu)"
    )
    parser.add_argument(
        "--space", default="tiny", help="search space: tiny, neonext or a YAML file (default tiny)"
    )
    parser.add_argument(
        "--samples",
        type=positive_int,
        default=20,
        metavar="N",
        help="networks whose units are measured (default 20)",
    )
    parser.add_argument(
        "--validate",
        type=non_negative_int,
        default=0,
        metavar="K",
        help="further networks measured whole to report the prediction error (default 0)",
    )
    parser.add_argument(
        "--calibrate",
        type=non_negative_int,
        default=5,
        metavar="C",
        help="networks measured whole to fit the table's whole-network factor (default 5, 0: none)",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="table file (default results/lut/<hw>-<space>.json); an existing table is extended",
    )
    parser.add_argument(
        "--batch", type=positive_int, default=1, metavar="B", help="batch size (default 1)"
    )
    parser.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default="fp32")
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="CPU threads for --hw cpu (default: torch's)",
    )
    parser.add_argument(
        "--time-cap",
        type=positive_float,
        default=3.0,
        metavar="S",
        help="seconds of timing at most per measurement (default 3)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the network sample (default 0)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON summary and nothing else"
    )


def run(args: argparse.Namespace) -> int:
    """Build or extend the table, optionally validate it, print a summary."""
    from rich.console import Console
    from rich.progress import Progress

    from evaluators.latency.backends import open_backend
    from evaluators.latency.lut import (
        calibrate_table,
        space_networks,
        summarize_errors,
        validate_table,
    )
    from evaluators.latency.measure import MeasureSettings, measure_latency
    from neonas.search import load_space

    backend = open_backend(args.hw, threads=args.threads)  # UserError when the device is absent
    space = load_space(args.space)
    out = Path(args.out or f"results/lut/{_file_safe(args.hw)}-{space.name}.json")
    settings = MeasureSettings(max_time_s=args.time_cap)
    table = _open_table(out, args, backend)

    def measure(module: Any, shape: tuple[int, ...]) -> Any:
        return measure_latency(
            module, shape[1:], args.hw, args.dtype, args.batch, settings=settings, backend=backend
        )

    console = Console(stderr=True)
    before = len(table.entries)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("measuring units", total=args.samples)
        for network in space_networks(space, args.samples, args.seed):
            table.add_units(
                network.model,
                (args.batch, *network.chw),
                measure,
                on_entry=lambda *_: table.save(out),
            )
            progress.update(
                task, advance=1, description=f"measuring units ({len(table.entries)} in table)"
            )
        if args.calibrate:
            progress.update(task, description="calibrating on whole networks")
            # Their own seed: neither the table's networks nor the validation ones.
            calibrate_table(
                table, space_networks(space, args.calibrate, args.seed + 2_000_003), measure
            )
        errors = []
        if args.validate:
            task = progress.add_task("validating", total=args.validate)
            # Another seed: networks the table was not built from.
            networks = space_networks(space, args.validate, args.seed + 1_000_003)
            errors = validate_table(
                table, networks, measure, on_network=lambda *_: progress.update(task, advance=1)
            )
            table.validation = {
                "summary": summarize_errors(errors),
                "networks": [
                    {
                        "name": e.name,
                        "predicted_ms": e.predicted_ms,
                        "measured_ms": e.measured_ms,
                        "measured_spread": e.measured_spread,
                    }
                    for e in errors
                ],
            }
    table.save(out)
    summary = {
        "out": str(out),
        "hw": table.hw,
        "device": table.device,
        "space": space.name,
        "entries": len(table.entries),
        "added": len(table.entries) - before,  # validation networks add their new units too
        "calibration": table.calibration,
        "validation": table.validation["summary"] if errors else None,
    }
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        _print_summary(summary)
    return 0


def _open_table(out: Path, args: argparse.Namespace, backend: Any) -> Any:
    """The table at `out` if it was measured the same way, else a new one; UserError on a clash."""
    from evaluators.latency.lut import LatencyTable

    settings = backend.settings()
    if not out.exists():
        return LatencyTable(args.hw, backend.device_name(), args.dtype, args.batch, settings)
    table = LatencyTable.load(out)
    ours = (args.hw, args.dtype, args.batch, settings)
    theirs = (table.hw, table.dtype, table.batch, table.settings)
    if ours != theirs:
        raise UserError(
            f"{out} holds a table for hw={table.hw} dtype={table.dtype} batch={table.batch} "
            f"settings={table.settings}, not hw={args.hw} dtype={args.dtype} batch={args.batch} "
            f"settings={settings}; pass another --out"
        )
    return table


def _file_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "", text)


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    console.print(
        f"{summary['out']}: {summary['entries']} units ({summary['added']} new) on "
        f"{summary['hw']} ({summary['device']}), space {summary['space']}, "
        f"whole-network factor {summary['calibration']:.3f}",
        markup=False,
    )
    check = summary["validation"]
    if check:
        console.print(
            f"prediction vs measured over {check['networks']} networks: mean |error| "
            f"{check['mean_abs_error'] * 100:.1f} %, max {check['max_abs_error'] * 100:.1f} %, "
            f"bias {check['mean_error'] * 100:+.1f} %, within +-{check['tolerance'] * 100:.0f} %: "
            f"{check['within_tolerance'] * 100:.0f} %",
            markup=False,
        )

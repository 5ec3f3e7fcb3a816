"""`neonas profile-lut`: measure a latency lookup table for a device over a search space.

Every distinct unit (stem, transition, block, head at its input shape) of `--samples`
networks drawn from the space is timed once on `--hw` and stored in `--out` (JSON, written
after every unit, so an interrupted run keeps what it measured and a second run extends the
table). `--calibrate C` and `--validate K` then time C and K further networks whole; their
units are measured in the unit pass, before any whole network (evaluators.latency.lut.
build_table does the work; this command parses and prints).
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
    """Build or extend the table, optionally calibrate and validate it, print a summary."""
    import random

    from rich.console import Console

    from evaluators.latency.backends import open_backend
    from evaluators.latency.lut import build_table, config_networks, summarize_errors
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

    def sample(count: int, seed: int) -> list[Any]:
        rng = random.Random(seed)
        return [space.sample(rng) for _ in range(count)]

    # Three disjoint samples: the table's networks, calibration and validation ones.
    console = Console(stderr=True)
    before = len(table.entries)
    with console.status("measuring units") as status:
        report = build_table(
            table,
            config_networks(sample(args.samples, args.seed)),
            measure,
            list(config_networks(sample(args.calibrate, args.seed + 2_000_003), "-cal")),
            list(config_networks(sample(args.validate, args.seed + 1_000_003), "-val")),
            on_step=status.update,
            on_entry=lambda *_: table.save(out),
        )
    table.save(out)
    fill = report.fill
    summary = {
        "out": str(out),
        "hw": table.hw,
        "device": table.device,
        "space": space.name,
        "entries": len(table.entries),
        "added": len(table.entries) - before,
        "calibration": table.calibration,
        "fill": None if fill is None else vars(fill),
        "validation": summarize_errors(report.errors) if report.errors else None,
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
    fill = summary["fill"]
    if fill and fill["networks"]:
        console.print(
            f"units of the {fill['networks']} calibration/validation networks: {fill['missing']} of "
            f"{fill['units']} were not in the table; {fill['distinct_missing']} distinct units were "
            "measured for them before any whole network was timed",
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

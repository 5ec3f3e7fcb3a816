"""Latency lookup table on this CPU, checked honestly: build it over the `tiny` space, then
compare its predictions with whole networks timed after every unit was measured.

Protocol (evaluators.latency.lut.build_table): pass 1 measures the distinct units of
`--samples` networks, then fills in the units of the calibration and validation networks that
the table lacks (reported); pass 2 times the calibration networks whole and fits the factor;
pass 3 times the validation networks whole. No validation network is predicted from units
timed next to it. nn-Meter's figure (99 % within +-10 % on mobile CPUs, kernel-level
predictors, validated on held-out models with their own measurements) is comparable only to
the "calibrated table, medians" row, and only in kind: other devices, other networks.

    .venv/bin/python benchmarks/lut.py [--samples 30] [--validate 30] [--threads 1]

Prints a markdown summary for benchmarks/README.md ("Latency lookup table").
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import tempfile
import time
from pathlib import Path

from evaluators.latency.backends import open_backend
from evaluators.latency.lut import (
    LatencyTable,
    build_table,
    config_networks,
    fill_units,
    summarize_errors,
    validate_table,
)
from evaluators.latency.measure import MeasureSettings, measure_latency
from neonas.search import load_space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="tiny")
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--validate", type=int, default=30)
    parser.add_argument("--calibrate", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--time-cap", type=float, default=3.0)
    parser.add_argument(
        "--out", type=Path, default=Path(tempfile.gettempdir()) / "neonas-bench-lut.json"
    )
    args = parser.parse_args()

    backend = open_backend("cpu", threads=args.threads)
    settings = MeasureSettings(max_time_s=args.time_cap)
    space = load_space(args.space)
    table = LatencyTable("cpu", backend.device_name(), "fp32", 1, backend.settings())

    def measure(module, shape):
        return measure_latency(module, shape[1:], "cpu", settings=settings, backend=backend)

    def sample(count: int, seed: int):
        rng = random.Random(seed)
        return [space.sample(rng) for _ in range(count)]

    calibration = list(config_networks(sample(args.calibrate, 2_000_003), "-cal"))
    validation = list(config_networks(sample(args.validate, 1_000_003), "-val"))
    start = time.perf_counter()
    report = build_table(
        table, config_networks(sample(args.samples, 0)), measure, calibration, validation
    )
    build_s = time.perf_counter() - start
    table.save(args.out)
    errors, factor, fill = report.errors, report.calibration, report.fill
    uncalibrated = [
        dataclasses.replace(
            e, predicted_ms=e.predicted_ms / factor, predicted_min_ms=e.predicted_min_ms / factor
        )
        for e in errors
    ]
    # The noise floor: the same networks measured again, minutes later.
    repeats = [measure(net.model, (1, *net.chw)) for net in validation]
    repeat_median = [
        abs(r.median_ms / e.measured_ms - 1) for r, e in zip(repeats, errors, strict=True)
    ]
    repeat_min = [
        abs(r.min_ms / e.measured_min_ms - 1) for r, e in zip(repeats, errors, strict=True)
    ]
    # The old protocol, for comparison only: each network's units measured again right before
    # the network itself (a machine whose speed drifts then affects both alike).
    paired = []
    for net in validation:
        fresh = LatencyTable("cpu", table.device, "fp32", 1, table.settings)
        fill_units(fresh, [net], measure)
        paired += validate_table(fresh, [net], measure)

    unstable = sum(not entry["stable"] for entry in table.entries.values())
    print(f"device: {table.device}, torch threads {args.threads}, space {space.name}\n")
    print(
        f"- table: {len(table.entries)} units in {build_s:.0f} s (all passes), from "
        f"{args.samples} networks plus the fill; {unstable} did not settle under 5 % spread; "
        f"whole-network factor {factor:.3f} from {args.calibrate} calibration networks"
    )
    print(
        f"- fill: of the {fill.units} units of the {fill.networks} calibration + validation "
        f"networks, {fill.missing} were not in the table built from the {args.samples} networks; "
        f"{fill.distinct_missing} distinct units were measured for them in the unit pass, "
        "before any whole network was timed"
    )
    print(
        f"- validation: {len(errors)} networks timed whole after all units; medians "
        f"{statistics.median(e.measured_ms for e in errors):.3f} ms, median spread "
        f"{statistics.median(e.measured_spread for e in errors) * 100:.1f} %\n"
    )
    print(
        "| prediction | mean abs error | median | 90th pct | max | bias | within +-10 % "
        "| noise floor: same network measured twice, mean abs diff, within +-10 % |"
    )
    print("|---|---|---|---|---|---|---|---|")
    rows = (
        ("calibrated table, medians", errors, "median", repeat_median),
        ("calibrated table, fastest samples", errors, "min", repeat_min),
        ("table without calibration, medians", uncalibrated, "median", repeat_median),
        ("old protocol: units re-measured just before, medians", paired, "median", None),
    )
    for label, found, statistic, floor in rows:
        print(f"| {label} | {_error_cells(found, statistic)} | {_floor_cell(floor)} |")


def _error_cells(errors, statistic: str) -> str:
    summary = summarize_errors(errors, statistic=statistic)
    relative = sorted(abs(e.relative if statistic == "median" else e.relative_min) for e in errors)
    return (
        f"{summary['mean_abs_error'] * 100:.1f} % | {statistics.median(relative) * 100:.1f} % "
        f"| {relative[int(0.9 * (len(relative) - 1))] * 100:.1f} % | {summary['max_abs_error'] * 100:.1f} % "
        f"| {summary['mean_error'] * 100:+.1f} % | {summary['within_tolerance'] * 100:.0f} %"
    )


def _floor_cell(floor) -> str:
    if floor is None:
        return "-"
    within = sum(f <= 0.10 for f in floor) / len(floor)
    return f"{statistics.fmean(floor) * 100:.1f} %, {within * 100:.0f} %"


if __name__ == "__main__":
    main()

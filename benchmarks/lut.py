"""Latency lookup table on this CPU: build it over the `tiny` space, then compare its
predictions with measured whole-network latency (nn-Meter reports 99 % of networks within
+-10 % on mobile CPUs; this is the same check for our unit-sum predictor).

    .venv/bin/python benchmarks/lut.py [--samples 30] [--validate 30] [--threads 1]

Prints a markdown summary for benchmarks/README.md ("Latency lookup table").
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from evaluators.latency.backends import open_backend
from evaluators.latency.lut import (
    LatencyTable,
    calibrate_table,
    space_networks,
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

    start = time.perf_counter()
    for network in space_networks(space, args.samples, seed=0):
        table.add_units(network.model, (1, *network.chw), measure)
    build_s = time.perf_counter() - start
    built_entries = len(table.entries)
    # As `neonas profile-lut` does: fit the whole-network factor on networks of their own.
    factor = calibrate_table(table, space_networks(space, args.calibrate, seed=2_000_003), measure)

    coverage: list[float] = []
    start = time.perf_counter()
    errors = validate_table(
        table,
        space_networks(space, args.validate, seed=1_000_003),
        measure,
        on_network=lambda _error, share: coverage.append(share),
    )
    validate_s = time.perf_counter() - start
    table.save(args.out)
    uncalibrated = [
        dataclasses.replace(
            e, predicted_ms=e.predicted_ms / factor, predicted_min_ms=e.predicted_min_ms / factor
        )
        for e in errors
    ]

    # The noise floor: the same networks measured again, minutes later.
    networks = list(space_networks(space, args.validate, seed=1_000_003))
    repeats = [measure(net.model, (1, *net.chw)) for net in networks]
    repeat_median = [
        abs(r.median_ms / e.measured_ms - 1) for r, e in zip(repeats, errors, strict=True)
    ]
    repeat_min = [
        abs(r.min_ms / e.measured_min_ms - 1) for r, e in zip(repeats, errors, strict=True)
    ]
    # The additive model alone: each network's units measured right before the network itself,
    # so that a machine whose speed drifts (other processes) affects both alike.
    paired = []
    for net in networks:
        fresh = LatencyTable("cpu", table.device, "fp32", 1, table.settings)
        paired += validate_table(fresh, [net], measure)

    unstable = sum(not entry["stable"] for entry in table.entries.values())
    print(f"device: {table.device}, torch threads {args.threads}, space {space.name}\n")
    print(
        f"- table: {built_entries} units from {args.samples} networks in {build_s:.0f} s "
        f"({len(table.entries)} after validation; {unstable} did not settle under 5 % spread); "
        f"whole-network factor {factor:.3f} from {args.calibrate} calibration networks"
    )
    print(
        f"- validation: {len(errors)} other networks in {validate_s:.0f} s; the table already had "
        f"{statistics.fmean(coverage) * 100:.0f} % of their units; whole networks "
        f"{statistics.median(e.measured_ms for e in errors):.3f} ms median, median spread "
        f"{statistics.median(e.measured_spread for e in errors) * 100:.1f} %\n"
    )
    print(
        "| prediction | mean abs error | median | 90th pct | max | bias | within +-10 % "
        "| same network measured twice: mean abs diff, within +-10 % |"
    )
    print("|---|---|---|---|---|---|---|---|")
    rows = (
        ("calibrated table, medians", errors, "median", repeat_median),
        ("calibrated table, fastest samples", errors, "min", repeat_min),
        ("table without calibration, medians", uncalibrated, "median", repeat_median),
        ("units measured just before, medians, no calibration", paired, "median", None),
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

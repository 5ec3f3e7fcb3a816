"""Ascend 310/910 latency model against published measurements: fitted constants, held-out error.

    python benchmarks/ascend_calibration.py

Fits, per chip, the three constants no public document gives (cube efficiency, DRAM
efficiency, overhead per fused operator) on the "fit" rows of
evaluators/latency/data/ascend_measurements.yaml and prints, for every row, predicted and
measured time per image and the error; then per chip the fit and held-out summaries
(median / mean / max |error|, share within 25 %, Spearman and Kendall rank correlation of
time per image). Runs offline: networks are built without weights, recorded on the meta
device (no arithmetic), so the figures do not depend on this machine's load.
"""

from __future__ import annotations

import sys

from evaluators.latency.calibration import FITTED, calibrate


def main() -> None:
    reports = calibrate(on_row=lambda m: print(f"recording {m.chip} {m.label}", file=sys.stderr))
    for chip, report in reports.items():
        constants = ", ".join(f"{name}={getattr(report.profile, name):.4g}" for name in FITTED)
        print(f"\n## {chip}: fitted {constants}")
        print(
            f"{'split':8} {'network':28} {'batch':>5} {'meas ms/img':>12} {'pred ms/img':>12} {'error':>8}"
        )
        for split, checks in (("fit", report.fit), ("holdout", report.holdout)):
            for check in checks:
                m = check.measurement
                print(
                    f"{split:8} {m.network:28} {m.batch:5d} {m.measured_ms / m.batch:12.3f} "
                    f"{check.predicted_ms / m.batch:12.3f} {check.error * 100:+7.1f}%"
                )
        for split, checks in (("fit", report.fit), ("holdout", report.holdout)):
            s = report.summary(checks)
            print(
                f"{chip} {split}: {s['rows']} rows, median |error| {s['median_abs_error'] * 100:.0f} %, "
                f"mean {s['mean_abs_error'] * 100:.0f} %, max {s['max_abs_error'] * 100:.0f} %, "
                f"within 25 %: {s['within_25pct'] * 100:.0f} %, Spearman {s['spearman']:.2f}, "
                f"Kendall {s['kendall']:.2f}"
            )


if __name__ == "__main__":
    main()

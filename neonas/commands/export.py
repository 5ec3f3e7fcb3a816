"""`neonas export RUN [--top K] [--by pareto|accuracy|latency] [--out DIR]`: ArchConfigs of a run.

Writes one YAML per architecture (what `train --config` and `profile --config` read) and an
index.json with their order and metrics; default target RUN/best/.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `neonas export`."""
    parser.add_argument(
        "run", metavar="RUN", help="a run folder, or a run name under --results-dir"
    )
    parser.add_argument(
        "--by",
        choices=("pareto", "accuracy", "latency"),
        default="pareto",
        help="pareto (default): the Pareto front, fastest first; or the completed trials by accuracy or latency",
    )
    parser.add_argument(
        "--top",
        type=int,
        metavar="K",
        help="at most K configs (default: the whole front; 5 by accuracy or latency)",
    )
    parser.add_argument("--out", metavar="DIR", help="where to write (default RUN/best/)")
    parser.add_argument(
        "--results-dir",
        default="results",
        metavar="DIR",
        help="where run names are looked up (default results/)",
    )


def run(args: argparse.Namespace) -> int:
    """Export and print the files written (and, by accuracy, which signal ranked them)."""
    import json
    import sys

    from neonas.search.export import export_run
    from neonas.search.run_folder import RunFolder

    folder = RunFolder.find(args.run, args.results_dir)
    paths = export_run(folder.path, by=args.by, top=args.top, out=args.out)
    if args.by == "accuracy" and paths:
        signal = json.loads((paths[0].parent / "index.json").read_text())["accuracy_signal"]
        print(
            f"ranked by accuracy: {signal or 'the run did not record its signal'}", file=sys.stderr
        )
    for path in paths:
        print(path)
    return 0

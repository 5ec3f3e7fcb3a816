"""Does a network score the same in two identical searches? (issue 18, section 6)

    python benchmarks/search_reproducibility.py [--runs 2] [--trials 6] [--seed 3]
        [--signal synflow] [--code-dir DIR]

Runs `python cli.py search --space tiny --hw ascend --budget 1G --trials N --seed S` `--runs`
times, each a separate process with its own Ray workers (2 trials at a time), from this
checkout or from `--code-dir` (another checkout, e.g. the commit before trial weights were
seeded). Then, for every network that more than one run scored (the same canonical key), its
accuracy signal in each run. Prints one JSON object: per network its values and their spread
(largest minus smallest), and over all networks the largest spread and the median distance
between two networks' scores (the differences a search ranks by).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_search(code: Path, results: Path, name: str, args: argparse.Namespace) -> None:
    command = [
        sys.executable, "cli.py", "search", "--space", "tiny", "--hw", "ascend", "--budget", "1G",
        "--trials", str(args.trials), "--seed", str(args.seed), "--signal", args.signal,
        "--results-dir", str(results), "--name", name,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(code)}
    subprocess.run(command, cwd=code, env=env, check=True, stdout=subprocess.DEVNULL)


def scores(run_dir: Path) -> dict[str, float]:
    """Accuracy of every completed trial, by network key."""
    from neonas.arch import ArchConfig
    from neonas.canonical import network_key
    from neonas.search.study import load_trials

    return {
        network_key(ArchConfig.from_dict(row.config)): float(row.metrics["accuracy"])
        for row in load_trials(run_dir).with_status("completed")
    }


def describe(key: str) -> str:
    """d<depths> w<widths>: enough to tell the networks of the tiny space apart in print."""
    data = json.loads(key)
    depths = "-".join(str(s["depth"]) for s in data["stages"])
    widths = "-".join(str(s["width"]) for s in data["stages"])
    return f"d{depths} w{widths} #{hashlib.sha256(key.encode()).hexdigest()[:6]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--signal", default="synflow")
    parser.add_argument("--code-dir", type=Path, default=ROOT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for index in range(args.runs):
            run_search(args.code_dir.resolve(), Path(tmp), f"run-{index}", args)
            runs.append(scores(Path(tmp) / f"run-{index}"))
    keys = sorted({key for run in runs for key in run})
    networks = []
    for key in keys:
        values = [run[key] for run in runs if key in run]
        if len(values) > 1:
            networks.append(
                {"network": describe(key), "values": values, "spread": max(values) - min(values)}
            )
    first = runs[0]
    gaps = [abs(first[a] - first[b]) for a, b in combinations(sorted(first), 2)]
    print(
        json.dumps(
            {
                "code": str(args.code_dir.resolve()),
                "command": f"search --space tiny --hw ascend --budget 1G --trials {args.trials} "
                f"--seed {args.seed} --signal {args.signal}",
                "runs": args.runs,
                "networks_in_several_runs": len(networks),
                "largest_spread": max((n["spread"] for n in networks), default=None),
                "median_gap_between_networks": statistics.median(gaps) if gaps else None,
                "networks": networks,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

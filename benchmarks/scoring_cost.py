"""What a supernet trial costs at each count of validation images, side by side.

    python benchmarks/scoring_cost.py --cache /work/bench-cache [--dataset shapes-large] \
        [--networks 8] [--val-images 500,2000] [--supernet CKPT]

`search --supernet` scores a candidate by extracting it from the supernet, re-estimating its
BatchNorm statistics on 256 training images and taking its top-1 on the validation images.
The count of validation images decides how noisy the score is (benchmarks/README.md,
"NeoCell-Bench") and what a trial costs; this prints the second.

Protocol: NeoCell-Bench's supernet of the data set (`neocell_bench.py supernet` trains it into
the cache), one SubnetScorer per image count (checkpoint and images loaded once, as a search's
worker does), the table's first `--networks` networks scored by each scorer in turn, network
by network (interleaved, so both counts see the same machine load), one torch thread. Prints
the median and range of seconds per candidate for each count, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from accuracy_signals import SupernetRecipe, make_data
from exit_status import reports_user_errors
from neocell_bench import for_data

from neonas.bench import load_table
from neonas.errors import UserError


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="NeoCell-Bench's cache")
    parser.add_argument("--dataset", default="shapes-large", choices=["digits", "shapes-large"])
    parser.add_argument("--networks", type=int, default=8)
    parser.add_argument("--val-images", default="500,2000", help="counts, comma-separated")
    parser.add_argument("--supernet", type=Path, help="checkpoint (default: the table's)")
    args = parser.parse_args(argv)
    counts = [int(text) for text in args.val_images.split(",")]
    default = args.cache / SupernetRecipe().training / args.dataset / "last.pt"
    checkpoint = args.supernet or default
    if not checkpoint.is_file():
        raise UserError(f"no supernet at {checkpoint}: run neocell_bench.py supernet first")
    import torch

    from neonas.arch import ArchConfig
    from neonas.supernet.scoring import SubnetScorer

    torch.set_num_threads(1)
    data = make_data(args.cache, args.dataset)
    scorers = {n: SubnetScorer(checkpoint, data, max_val_images=n, seed=0) for n in counts}
    seconds: dict[int, list[float]] = {n: [] for n in counts}
    for row in load_table(args.dataset)[: args.networks]:
        config = ArchConfig.from_dict(for_data(row.config, data))
        for count, scorer in scorers.items():
            start = time.perf_counter()
            scorer.score(config)
            seconds[count].append(time.perf_counter() - start)
    result = {
        "dataset": args.dataset,
        "networks": args.networks,
        "load_average": os.getloadavg()[0],
        "seconds_per_candidate": {
            str(n): {"median": statistics.median(s), "min": min(s), "max": max(s)}
            for n, s in seconds.items()
        },
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

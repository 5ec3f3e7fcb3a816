"""Ground truth of NeoCell-Bench networks as trained by two code versions, and as committed.

Protocol: train the same networks with `benchmarks/neocell_bench.py train --cache DIR ...` once
per code version (e.g. a branch and main), then

    python benchmarks/truth_compare.py --cache /tmp/a --cache /tmp/b --dataset digits --limit 1

prints, per network and seed, top-1 and validation loss (full precision) of each cache and of
the committed table (neonas/bench/data/tiny-<dataset>.jsonl), and whether they are bit-equal.
Used to check that a change to the training code leaves training's results unchanged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def committed(dataset: str) -> dict[int, dict]:
    path = ROOT / "neonas" / "bench" / "data" / f"tiny-{dataset}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {row["index"]: {t["seed"]: t for t in row["truth"]} for row in rows}


def cached(cache: Path, dataset: str, index: int, seed: int) -> dict | None:
    path = cache / dataset / "truth" / f"net{index:03d}-seed{seed}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, action="append", required=True)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--limit", type=int, default=1, help="networks 0..limit-1")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    table = committed(args.dataset)
    for index in range(args.limit):
        for seed in args.seeds:
            sources = {str(cache): cached(cache, args.dataset, index, seed) for cache in args.cache}
            sources["committed table"] = table.get(index, {}).get(seed)
            found = {name: r for name, r in sources.items() if r is not None}
            for name, result in found.items():
                print(
                    f"net{index:03d} seed {seed}  {name:>24}: top-1 {result['top1']!r}  "
                    f"loss {result['loss']!r}"
                )
            values = {(r["top1"], r["loss"]) for r in found.values()}
            caches = {(r["top1"], r["loss"]) for n, r in found.items() if n != "committed table"}
            print(
                f"net{index:03d} seed {seed}  caches bit-equal: {len(caches) == 1}, "
                f"all (with the table) bit-equal: {len(values) == 1}"
            )


if __name__ == "__main__":
    main()

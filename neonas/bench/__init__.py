"""NeoCell-Bench: reference tables of networks trained from scratch, with their accuracy signals.

    from neonas.bench import datasets, load_table
    rows = load_table("digits")  # BenchRow per network: config, costs, top-1 per seed, signals

    from neonas.bench.report import report
    figures = report()  # every signal's tau, SE, band tau, ...; samplers; end to end (JSON data)

Built by `benchmarks/neocell_bench.py` (see benchmarks/README.md and docs/bench.md).
"""

from neonas.bench.table import (
    BenchRow,
    SeedResult,
    datasets,
    load_table,
    provenance,
    table_path,
)

__all__ = ["BenchRow", "SeedResult", "datasets", "load_table", "provenance", "table_path"]

"""The names of the accuracy signals a search can rank networks by, and which one it uses.

Plain strings, no torch: the command line offers them before anything heavy is imported.
A layer below the supernet and the search, which both name signals (README, "Architecture").

A run records its signal's name next to every "accuracy" (the `accuracy_signal` label of the
progress lines, the summary, the Pareto plot and `export --by accuracy`). The defaults are set
from NeoCell-Bench (benchmarks/README.md, "NeoCell-Bench"): with or
without data, the cheapest of the signals that ranked level with the best.
"""

from __future__ import annotations

SUPERNET = "supernet top-1"  # inherited weights of a trained supernet, BatchNorm re-estimated
# Validation images a candidate's supernet score is the top-1 on (or the whole split if
# smaller). On NeoCell-Bench's shapes-large table (54 networks) 500 images ranked at Kendall
# tau +0.32 with the few-shot parts and 2,000 at +0.51 (paired SE 0.07; complete, 64 networks:
# +0.31 and +0.48), level with all 4,000;
# on digits (1,297 images) more images neither helped nor hurt (-0.01, SE 0.02).
# benchmarks/README.md, "NeoCell-Bench".
SUPERNET_VAL_IMAGES = 2000
SHORT_TRAINING = "short-training"  # a few epochs from scratch per candidate, on --data
NASWOT = "naswot"
SYNFLOW = "synflow"
ZICO = "zico"
MECO = "meco"
PARAMS = "params"  # log10 parameter count: a size baseline
FLOPS = "flops"  # log10 FLOPs: a size baseline

ZERO_COST = (NASWOT, SYNFLOW, ZICO, MECO, PARAMS, FLOPS)  # no training; evaluators/proxies.py
# What `search --signal` offers (a supernet is chosen with --supernet CKPT instead).
TRIAL_SIGNALS = (*ZERO_COST, SHORT_TRAINING)
# The zero-cost signals that read images: on --data's training images when there are some,
# on noise otherwise. SynFlow and the size baselines never read images.
READS_IMAGES = (NASWOT, ZICO, MECO)
# Zero-cost signals that run the network (forward or backward): on the trial's GPU when it has
# one; the size baselines count on the CPU.
RUNS_NETWORK = (NASWOT, SYNFLOW, ZICO, MECO)
# NeoCell-Bench (benchmarks/README.md, "NeoCell-Bench"; `neocell_bench.py report`): Kendall tau
# against training from scratch, SE 0.05-0.10. Of what a trial computes without a supernet,
# SynFlow ranks best on both tables: digits (100 networks) +0.49, ZiCo +0.20, the parameter
# count +0.17, MeCo +0.07, NASWOT -0.22; shapes-large (64) +0.39, params +0.16, ZiCo +0.11,
# MeCo -0.21, NASWOT -0.32. It is also the cheapest that runs the network (one forward and
# backward, no data), so reading --data's images buys nothing and --data alone does not change
# the signal (the run says that it is unread). The first benchmark (2026-11-30, 12 networks per
# data set, SE about 0.2) had ZiCo level with it; the larger tables separate them.
DEFAULT_ZERO_COST = SYNFLOW
DEFAULT_WITH_DATA = SYNFLOW


def default_signal(has_data: bool) -> str:
    """The signal of a search that names none: with --data (and no --supernet), or without."""
    return DEFAULT_WITH_DATA if has_data else DEFAULT_ZERO_COST


def ignored_data_note(signal: str, has_data: bool) -> str | None:
    """What a run with --data says when its signal never reads the images, else None."""
    if not has_data or signal in (*READS_IMAGES, SHORT_TRAINING, SUPERNET):
        return None
    return (
        f"note: the accuracy signal {signal} does not read the images of --data (only their "
        "classes); to rank by them, train a supernet (`neonas supernet train`) and pass "
        f"--supernet, or choose --signal {ZICO} (docs/search.md, 'Accuracy signals')"
    )

"""The names of the accuracy signals a search can rank networks by, and which one it uses.

Plain strings, no torch: the command line offers them before anything heavy is imported.
A layer below the supernet and the search, which both name signals (README, "Architecture").

A run records its signal's name next to every "accuracy" (the `accuracy_signal` label of the
progress lines, the summary, the Pareto plot and `export --by accuracy`). The defaults are set
from benchmarks/accuracy_signals.py (benchmarks/README.md, "Accuracy signals"): with or
without data, the cheapest of the signals that ranked level with the best.
"""

from __future__ import annotations

SUPERNET = "supernet top-1"  # inherited weights of a trained supernet, BatchNorm re-estimated
# Validation images a candidate's supernet score is the top-1 on (or the whole split if
# smaller). On NeoCell-Bench's shapes-large table (54 networks) 500 images ranked at Kendall
# tau +0.32 with the few-shot parts and 2,000 at +0.51 (paired SE 0.07), level with all 4,000;
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
# benchmarks/README.md, "Accuracy signals" (2026-11-30, tiny space, 12 networks on each of
# digits, shapes and shapes-large; Kendall tau against training from scratch pooled over the
# three, standard errors about 0.2): of what a trial computes without a supernet, SynFlow
# ranked level with the best (+0.49; ZiCo on noise +0.52, ZiCo on real images +0.47, the
# parameter count +0.39, NASWOT +0.09 to +0.11; on shapes-large ZiCo ranked above it, +0.52
# against +0.48, within the error bars) and costs a tenth of ZiCo (one forward and backward,
# no data). With data too: reading the images did not rank better, and short training at its
# default fidelity ranked at chance on the two small sets and level on the larger (pooled
# +0.10) at a thousand times the cost, so --data alone does not change the signal (the run
# says that it is unread).
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

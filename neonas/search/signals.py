"""The names of the accuracy signals a search can rank networks by, and which one it uses.

Plain strings, no torch: the command line offers them before anything heavy is imported.

A run records its signal's name next to every "accuracy" (the `accuracy_signal` label of the
progress lines, the summary, the Pareto plot and `export --by accuracy`). The defaults are set
from benchmarks/accuracy_signals.py (benchmarks/README.md, "Accuracy signals"): with data,
the signal that ranked best for its cost; without data, the zero-cost signal that ranked best.
"""

from __future__ import annotations

SUPERNET = "supernet top-1"  # inherited weights of a trained supernet, BatchNorm re-estimated
SHORT_TRAINING = "short training"  # a few epochs from scratch per candidate (`search --data`)
NASWOT = "naswot"
SYNFLOW = "synflow"
ZICO = "zico"
MECO = "meco"
PARAMS = "params"  # log10 parameter count: a size baseline
FLOPS = "flops"  # log10 FLOPs: a size baseline

ZERO_COST = (NASWOT, SYNFLOW, ZICO, MECO, PARAMS, FLOPS)  # no training; evaluators/proxies.py
# benchmarks/README.md, "Accuracy signals" (2026-11-30, tiny space, digits and shapes, 12
# networks each): SynFlow ranked best of what a search without data can compute (pooled tau
# +0.47; ZiCo on noise +0.44, parameter count +0.35, NASWOT on noise +0.17, standard errors
# about 0.2) and costs a tenth of ZiCo (one forward and backward, no data).
DEFAULT_ZERO_COST = SYNFLOW
# Short training is the only data-driven signal the search runs without --supernet; at its
# default fidelity it ranked no better than chance on both data sets (see the README).
DEFAULT_WITH_DATA = SHORT_TRAINING

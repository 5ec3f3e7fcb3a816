"""Rank agreement of a signal with a ground truth: the figures NeoCell-Bench reports.

Kendall tau-b with a bootstrap standard error, Spearman's rho, top-10 % recall and Kendall tau
restricted to pairs of networks of similar latency (a Pareto search compares networks of equal
cost, so a signal that only tracks size ranks nothing there). Vectorised over pairs with numpy:
a report over 100 networks and a dozen signals with 1000 bootstrap draws each takes seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

BAND = 0.10  # two networks are in one latency band when the slower is at most 10 % slower


def _pair_signs(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    picked = values[index]
    return np.sign(picked[:, None] - picked[None, :])


def _tau_from_signs(sx: np.ndarray, sy: np.ndarray, pairs: np.ndarray) -> float:
    """Kendall tau-b over the pairs marked True in `pairs` (upper triangle only)."""
    sx, sy = sx[pairs], sy[pairs]
    both = sx * sy
    concordant = int(np.count_nonzero(both > 0))
    discordant = int(np.count_nonzero(both < 0))
    ties_x = int(np.count_nonzero((sx == 0) & (sy != 0)))
    ties_y = int(np.count_nonzero((sy == 0) & (sx != 0)))
    denominator = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denominator if denominator else float("nan")


def _pairs(n: int, band_of: np.ndarray | None, index: np.ndarray) -> np.ndarray:
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    if band_of is None:
        return upper
    return upper & band_of[np.ix_(index, index)]


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either ranking handled); nan when no pair is ordered."""
    return _tau(np.asarray(x, float), np.asarray(y, float), None, np.arange(len(x)))


def _tau(x: np.ndarray, y: np.ndarray, band_of: np.ndarray | None, index: np.ndarray) -> float:
    pairs = _pairs(len(index), band_of, index)
    return _tau_from_signs(_pair_signs(x, index), _pair_signs(y, index), pairs)


def _bootstrap(
    x: np.ndarray, y: np.ndarray, band_of: np.ndarray | None, draws: int, seed: int
) -> float:
    """The standard deviation of tau over `draws` resamples of the networks, computed in chunks
    of resamples at once; the resamples are drawn one by one from `seed`, as a loop would."""
    rng = np.random.default_rng(seed)
    n = len(x)
    picks = np.stack([rng.integers(0, n, n) for _ in range(draws)]) if draws else np.empty((0, n))
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    values: list[float] = []
    for start in range(0, draws, 64):
        pick = picks[start : start + 64]
        px, py = x[pick], y[pick]
        sx = np.sign(px[:, :, None] - px[:, None, :])
        sy = np.sign(py[:, :, None] - py[:, None, :])
        pairs = np.broadcast_to(upper, sx.shape)
        if band_of is not None:
            pairs = pairs & band_of[pick[:, :, None], pick[:, None, :]]
        both = sx * sy * pairs
        concordant = np.count_nonzero(both > 0, axis=(1, 2))
        discordant = np.count_nonzero(both < 0, axis=(1, 2))
        ties_x = np.count_nonzero((sx == 0) & (sy != 0) & pairs, axis=(1, 2))
        ties_y = np.count_nonzero((sy == 0) & (sx != 0) & pairs, axis=(1, 2))
        ordered = concordant + discordant
        denominator = np.sqrt((ordered + ties_x).astype(float) * (ordered + ties_y))
        with np.errstate(invalid="ignore", divide="ignore"):
            tau = (concordant - discordant) / denominator
        values.extend(float(t) for t in tau[denominator > 0])
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def bootstrap_se(x: Sequence[float], y: Sequence[float], draws: int = 1000, seed: int = 0) -> float:
    """Standard error of Kendall tau over resamples of the networks (with replacement)."""
    return _bootstrap(np.asarray(x, float), np.asarray(y, float), None, draws, seed)


def latency_bands(latency: Sequence[float], band: float = BAND) -> np.ndarray:
    """(n, n) booleans: networks i and j are within `band` of each other's latency."""
    values = np.asarray(latency, float)
    high = np.maximum(values[:, None], values[None, :])
    low = np.minimum(values[:, None], values[None, :])
    return high <= (1.0 + band) * low


def band_tau(x: Sequence[float], y: Sequence[float], latency: Sequence[float]) -> float:
    """Kendall tau-b over the pairs of networks within +-10 % of each other's latency only."""
    bands = latency_bands(latency)
    return _tau(np.asarray(x, float), np.asarray(y, float), bands, np.arange(len(x)))


def band_bootstrap_se(
    x: Sequence[float],
    y: Sequence[float],
    latency: Sequence[float],
    draws: int = 1000,
    seed: int = 0,
) -> float:
    """Standard error of `band_tau` over resamples of the networks (with replacement)."""
    bands = latency_bands(latency)
    return _bootstrap(np.asarray(x, float), np.asarray(y, float), bands, draws, seed)


def paired_tau_difference(
    a: Sequence[float],
    b: Sequence[float],
    truth: Sequence[float],
    latency: Sequence[float] | None = None,
    draws: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """tau(a) - tau(b) against the same `truth` (band tau with `latency`), and its standard
    error over resamples of the networks in which both signals are ranked on the same networks
    (a paired bootstrap): whether one signal ranks better than another by more than the noise
    of the table's network sample, which the two SEs apart overstate."""
    x, y, t = (np.asarray(v, float) for v in (a, b, truth))
    bands = None if latency is None else latency_bands(latency)
    everything = np.arange(len(t))
    difference = _tau(x, t, bands, everything) - _tau(y, t, bands, everything)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        pick = rng.integers(0, len(t), len(t))
        value = _tau(x, t, bands, pick) - _tau(y, t, bands, pick)
        if not math.isnan(value):
            values.append(value)
    return difference, float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def band_pairs(latency: Sequence[float]) -> int:
    """How many pairs of distinct networks share a latency band."""
    bands = latency_bands(latency)
    return int(np.count_nonzero(np.triu(bands, k=1)))


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their mean rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        if np.count_nonzero(tied) > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson correlation of the ranks (ties get their mean rank)."""
    rx, ry = _ranks(np.asarray(x, float)), _ranks(np.asarray(y, float))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((rx**2).sum() * (ry**2).sum()))
    return float((rx * ry).sum() / denominator) if denominator else float("nan")


def top_recall(signal: Sequence[float], truth: Sequence[float], fraction: float = 0.10) -> float:
    """Of the truth's best `fraction` of networks, the share also in the signal's best `fraction`.

    k = ceil(fraction * n), at least 1; ties at the cut are broken by table order (stable sort).
    """
    k = max(1, math.ceil(fraction * len(truth) - 1e-9))
    best_truth = set(np.argsort(-np.asarray(truth, float), kind="stable")[:k].tolist())
    best_signal = set(np.argsort(-np.asarray(signal, float), kind="stable")[:k].tolist())
    return len(best_truth & best_signal) / k


def hypervolume_2d(points: Sequence[tuple[float, float]], reference: tuple[float, float]) -> float:
    """Area dominated by (cost, value) points, cost down and value up, bounded by `reference`
    (cost, value): the hypervolume of a latency-accuracy front. Points at or beyond the
    reference on either axis add nothing."""
    ref_cost, ref_value = reference
    area, best = 0.0, ref_value
    for cost, value in sorted((c, v) for c, v in points if c < ref_cost and v > ref_value):
        if value > best:
            area += (ref_cost - cost) * (value - best)
            best = value
    return area

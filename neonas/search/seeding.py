"""Per-network random draws: a network scores the same in every run, process and Ray worker.

A zero-cost signal scores one draw of a network's initial weights, and the draw moves the
score as much as the differences between networks do (issue 18: one network scored 0.055 and
0.231 with SynFlow in two identical runs). So every random thing a trial scores by is drawn
from a seed derived from what it is, never from the process's RNG state:

- the network's initial weights (and, during scoring, drop path or dropout) from
  (run seed, the network's canonical key `neonas.canonical.network_key`, draw number);
- the noise images and labels of a signal without data from (run seed, draw number) only:
  every network of a run sees the same inputs, as they see the same --data images.

The seed is a SHA-256 of those values, not Python's `hash()` (salted per process). Draws use
the global torch RNG inside `seeded`, which forks it: the state outside is as it was before,
so other code (Ray, Optuna, the caller's own torch draws) is not disturbed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

# What a seed is drawn for: the initial weights, the scoring's own randomness, noise inputs.
WEIGHTS = "weights"
SCORING = "scoring"
NOISE = "noise"


def draw_seed(purpose: str, seed: int, key: str, draw: int = 0) -> int:
    """A 63-bit seed, the same in every process, from what is drawn and for which network."""
    text = json.dumps([purpose, int(seed), int(draw), key])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def noise_seed(seed: int, draw: int = 0) -> int:
    """The seed of a run's noise inputs: one set per draw, shared by every network."""
    return draw_seed(NOISE, seed, "", draw)


@contextmanager
def seeded(purpose: str, seed: int, key: str, draw: int = 0) -> Iterator[None]:
    """Inside: torch's global RNG seeded by `draw_seed`. Outside: its state as it was before.

    CUDA's generators are saved and put back too when CUDA is already initialised in this
    process (so a CPU-only worker does not create a CUDA context just to save them).
    """
    import torch

    devices = (
        list(range(torch.cuda.device_count()))
        if torch.cuda.is_available() and torch.cuda.is_initialized()
        else []
    )
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(draw_seed(purpose, seed, key, draw))
        yield


def seeded_build(build: Callable[[], T], seed: int, key: str, draw: int = 0) -> T:
    """`build()` with its initial weights drawn for (run seed, network key, draw)."""
    with seeded(WEIGHTS, seed, key, draw):
        return build()


def draw_scores(
    build: Callable[[], Any],
    score: Callable[[Any, int], float],
    seed: int,
    key: str,
    draws: int = 1,
    first: Any = None,
) -> list[float]:
    """`score(model, draw)` of each of `draws` weight draws of a network, each drawn as above.

    `first`: draw 0's model when the caller built it already (with `seeded_build`), so a large
    network is not built twice; it must not have been trained or changed since.
    """
    scores = []
    for draw in range(draws):
        model = first if draw == 0 and first is not None else seeded_build(build, seed, key, draw)
        with seeded(SCORING, seed, key, draw):
            scores.append(score(model, draw))
    return scores

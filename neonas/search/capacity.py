"""Whether the Ray cluster can still run a trial, and what a sweep does when it cannot.

A trial asks for one bundle of Ray resources (`TrialResources`: CPUs and, with
`--gpus-per-trial`, a share of a GPU). The measuring stations of a measured target hold
resources of their own (a CPU slot for `--hw cpu`, a whole GPU for `--hw cuda`). Nodes come
and go: when a node leaves, the trials' placement groups wait for a node that has the bundle,
and Ray waits forever. `verdict` decides from the alive nodes' total resources:

- FITS: some node can host a trial beside the stations' holds (trials may wait for a running
  one to end, never forever);
- RELEASE: a node could host a trial if the stations on it gave up their holds: the stations
  then measure without a reservation (on a node that runs trials), and the sweep goes on;
- NONE: no node could host a trial at all: the session ends with one line saying what is
  missing, and `--resume` continues the run once capacity is back.

`CapacityWatch` applies it while Tune runs (called by the Tune callback in watch.py, whose
stopper ends the experiment on NONE). Imports no Ray: `neonas.search` loads without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

FITS, RELEASE, NONE = "fits", "release", "none"
# A verdict of NONE must hold this long before the session ends: a node that is joining, or
# Ray's view of the nodes catching up, must not end a sweep.
NONE_GRACE_S = 10.0
CHECK_EVERY_S = 2.0  # ray.nodes() is a call to Ray's control store: not on every Tune step
EPS = 1e-9  # fractional GPUs add up in floating point

Resources = Mapping[str, float]


@dataclass(frozen=True)
class TrialResources:
    """What one trial asks Ray for; `gpu_resource` is the resource that stands for a GPU
    ("GPU"; tests use a custom resource on a node without a GPU)."""

    cpus: float = 1
    gpus: float = 0
    gpu_resource: str = "GPU"

    def bundle(self) -> dict[str, float]:
        """The trial's placement-group bundle, e.g. {"CPU": 1, "GPU": 0.5}."""
        bundle = {"CPU": float(self.cpus)}
        if self.gpus > 0:
            bundle[self.gpu_resource] = float(self.gpus)
        return bundle

    def placement(self) -> Any:
        """The bundle as Tune's PlacementGroupFactory (for tune.with_resources)."""
        from ray import tune

        return tune.PlacementGroupFactory([self.bundle()])

    def text(self) -> str:
        """'1 CPU and 0.5 GPU' (the GPU named by its resource when it is a stand-in)."""
        gpu = "GPU" if self.gpu_resource == "GPU" else self.gpu_resource
        parts = [f"{self.cpus:g} CPU"] + ([f"{self.gpus:g} {gpu}"] if self.gpus > 0 else [])
        return " and ".join(parts)


@dataclass(frozen=True)
class Verdict:
    """FITS, RELEASE (with the nodes that fit once the stations let go) or NONE (with why)."""

    kind: str
    nodes: tuple[str, ...] = ()
    missing: str = ""


def fits(need: Resources, total: Resources, held: Resources | None = None) -> bool:
    """Whether a node with `total` resources, of which `held` are taken, can host `need`."""
    held = held or {}
    return all(
        total.get(name, 0.0) - held.get(name, 0.0) >= amount - EPS
        for name, amount in need.items()
        if amount > 0
    )


def verdict(
    nodes: Mapping[str, Resources],
    need: Resources,
    held: Mapping[str, Resources] | None = None,
) -> Verdict:
    """Can a trial needing `need` run on the alive `nodes` (id -> total resources), with the
    stations holding `held` (node id -> resources)?"""
    held = held or {}
    if any(fits(need, total, held.get(node)) for node, total in nodes.items()):
        return Verdict(FITS)
    free = free_nodes(nodes, need)
    if free:
        return Verdict(RELEASE, free)
    return Verdict(NONE, missing=missing_text(nodes, need))


def free_nodes(nodes: Mapping[str, Resources], need: Resources) -> tuple[str, ...]:
    """The nodes that could host a trial if nothing else held anything there."""
    return tuple(node for node, total in nodes.items() if fits(need, total))


def missing_text(nodes: Mapping[str, Resources], need: Resources) -> str:
    """'a trial needs 1 CPU and 0.5 GPU; the 1 alive node has at most 0 CPU and 0 GPU'."""

    def amounts(values: Resources) -> str:
        return " and ".join(f"{values.get(name, 0.0):g} {name}" for name in need)

    most = {
        name: max((total.get(name, 0.0) for total in nodes.values()), default=0.0) for name in need
    }
    count = len(nodes)
    where = (
        "the Ray cluster has no alive node"
        if not count
        else f"the {count} alive node{'s' if count > 1 else ''} "
        + ("has" if count == 1 else "have at most")
        + f" {amounts(most)}"
    )
    return f"a trial needs {amounts(need)}; {where}"


def alive_nodes() -> dict[str, dict[str, float]]:
    """Node id -> total resources of every alive node of the connected Ray cluster."""
    import ray

    return {
        node["NodeID"]: dict(node.get("Resources", {})) for node in ray.nodes() if node["Alive"]
    }


def trial_device() -> str:
    """'cuda' when Ray gave the calling trial a GPU (`--gpus-per-trial`) and torch sees one,
    else 'cpu': a trial without a GPU share never computes on a GPU it shares with others."""
    import ray
    import torch

    if not torch.cuda.is_available() or not ray.is_initialized():
        return "cpu"
    return "cuda" if ray.get_gpu_ids() else "cpu"


class CapacityWatch:
    """Checks, while Tune runs, that a waiting trial can ever start (see the module docstring).

    Acts only when trials wait and none runs: `release()` lets the stations give up their holds
    (it gets the nodes that could host a trial then), or the session ends (`stop_reason`).
    `holds()` returns what the stations hold now, by node.
    """

    def __init__(
        self,
        need: Resources,
        holds: Callable[[], Mapping[str, Resources]],
        release: Callable[[tuple[str, ...]], None],
        resume_hint: str,
        lost: Callable[[Collection[str]], bool] = lambda alive: False,
        nodes: Callable[[], Mapping[str, Resources]] = alive_nodes,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.need = dict(need)
        self.holds = holds
        self.release = release
        self.lost = lost
        self.resume_hint = resume_hint
        self.nodes = nodes
        self.clock = clock
        self.stop_reason: str | None = None
        self.releases = 0
        self._last_check = -float("inf")
        self._none_since: float | None = None

    def check(self, waiting: bool, running: bool) -> None:
        """One look at the cluster (at most every CHECK_EVERY_S)."""
        now = self.clock()
        if self.stop_reason or now - self._last_check < CHECK_EVERY_S:
            return
        self._last_check = now
        nodes = self.nodes()
        if self.lost(nodes.keys()):  # a station's node left: the station went with it
            free = free_nodes(nodes, self.need) or tuple(nodes)
            if free:
                self._release(free)
        if not waiting or running:
            self._none_since = None
            return
        found = verdict(nodes, self.need, self.holds())
        if found.kind != NONE:
            self._none_since = None
        if found.kind == RELEASE:
            self._release(found.nodes)
        elif found.kind == NONE:
            self._none_since = now if self._none_since is None else self._none_since
            if now - self._none_since >= NONE_GRACE_S:
                self.stop_reason = (
                    f"no node of the Ray cluster can run a trial: {found.missing}; "
                    f"{self.resume_hint}"
                )

    def _release(self, nodes: tuple[str, ...]) -> None:
        self.release(nodes)
        self.releases += 1

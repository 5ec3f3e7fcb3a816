"""Joining a Ray cluster, the one way `search`, `train` and `supernet train` all use.

    ray_cluster(address, say)   the cluster at --address (else RAY_ADDRESS), else a local Ray
      -> cluster_address          which cluster, and what named it
      -> check_reachable          one line at once when nothing answers (ray.init would retry)
      -> choose_auth_mode         RAY_AUTH_MODE for a cluster with token authentication
      -> join_cluster             ray.init; one line saying what to set when refused

Ray is imported only inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from neonas.errors import UserError

# Where Ray 2.60 looks for the cluster's token, in its order (docs: ray-security/token-auth).
TOKEN_FILE = Path("~/.ray/auth_token")
# The address that means "a Ray of our own on this machine", as Ray's own ray.init spells it.
LOCAL = "local"


def cluster_address(address: str | None) -> tuple[str | None, str]:
    """The cluster to join and what named it: --address, else RAY_ADDRESS, else none (local).

    `--address local` is a local Ray too: (None, "--address")."""
    if address:
        return (None if address == LOCAL else address), "--address"
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"], "RAY_ADDRESS"
    return None, ""


def on_ray(address: str | None) -> bool:
    """Whether a command that runs without Ray unless told (`train`, `supernet train`) runs on
    Ray: --address given (`local` too), or RAY_ADDRESS set.

    Refused under torchrun (which sets TORCHELASTIC_RUN_ID in every rank): each rank would
    start its own Ray Train job, a RAY_ADDRESS left in the shell being the easy way there."""
    wanted = bool(address or os.environ.get("RAY_ADDRESS"))
    if wanted and "TORCHELASTIC_RUN_ID" in os.environ:
        source = "--address" if address else "RAY_ADDRESS"
        raise UserError(
            f"started by torchrun and asked to train on Ray ({source}): every rank would start "
            "Ray Train; use one of them (unset RAY_ADDRESS under torchrun)"
        )
    return wanted


@contextmanager
def ray_cluster(
    address: str | None, say: Callable[[str], object] = print, *, log_to_driver: bool = False
) -> Iterator[str | None]:
    """Ray for one command: the cluster at `address` (or RAY_ADDRESS), else a local Ray of its
    own; yields the address joined (None when local) and shuts Ray down after.

    `say` prints the line naming the cluster joined, its nodes and CPUs, so that a node that did
    not join shows at once. `log_to_driver`: whether the workers' output is printed here too.
    """
    imported = sys.modules.get("ray")
    if imported is not None and imported.is_initialized():  # a caller's Ray (tests, notebooks)
        yield address
        return
    address, named_by = cluster_address(address)
    if address:
        check_reachable(address, named_by)
        choose_auth_mode(address)  # before `import ray`: Ray reads RAY_AUTH_MODE once per process
    import ray

    logging.getLogger("ray").setLevel(logging.WARNING)
    if address:
        join_cluster(address, log_to_driver)
        resources = ray.cluster_resources()
        say(
            f"joined the Ray cluster at {address} (from {named_by}): {len(ray.nodes())} node(s), "
            f"{int(resources.get('CPU', 0))} CPUs"
        )
    else:
        # address="local": always a Ray of our own, never a cluster that an address file left
        # by `ray start` points to (alive, or dead: then ray.init would fail). No dashboard.
        # Ray 2.60 has no bind-to-localhost option for its other ports (they listen on every
        # interface); its token authentication, on by default for a local Ray, guards them.
        ray.init(
            address=LOCAL,
            num_cpus=os.cpu_count(),
            include_dashboard=False,
            log_to_driver=log_to_driver,
        )
    try:
        yield address
    finally:
        ray.shutdown()


def check_reachable(address: str, named_by: str = "--address") -> None:
    """UserError when nothing answers at HOST:PORT (ray.init would retry for minutes)."""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", "ray://...": Ray's own forms, Ray checks them
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as err:
        raise UserError(
            f"cannot join the Ray cluster at {address}: nothing answers there ({err.strerror or err}); "
            f"start it with `ray start --head --port PORT` or check {named_by}"
        ) from None


def choose_auth_mode(address: str) -> None:
    """Set RAY_AUTH_MODE for joining `address` when the user has not.

    Ray 2.60's `ray start --head` turns token authentication on and keeps the token in
    ~/.ray/auth_token, but a driver joining by address sends it only with RAY_AUTH_MODE=token,
    and a driver in token mode cannot serve the actors of a cluster without authentication
    (ray.cluster_utils, RAY_AUTH_MODE=disabled). With a token at hand, a short probe decides.
    """
    if auth_token_source() and not os.environ.get("RAY_AUTH_MODE"):
        os.environ["RAY_AUTH_MODE"] = "token" if cluster_takes_token(address) else "disabled"


def join_cluster(address: str, log_to_driver: bool = False) -> None:
    """ray.init(address); UserError with what to set when the cluster refuses us."""
    import ray

    try:
        ray.init(address=address, log_to_driver=log_to_driver)
    except (ConnectionError, ValueError, RuntimeError) as err:
        causes = f"{err} {err.__cause__ or ''}".lower()
        if "token" in causes or "unauthenticated" in causes:
            token = auth_token_source()
            if not token:
                fix = (
                    "it asks for a token and this machine has none: copy the head node's "
                    "~/.ray/auth_token here, or set RAY_AUTH_TOKEN"
                )
            elif os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
                fix = "it asks for a token: set RAY_AUTH_MODE=token"
            else:
                fix = f"the token from {token} was refused: use the head node's ~/.ray/auth_token"
            raise UserError(f"cannot join the Ray cluster at {address}: {fix}") from None
        raise UserError(
            f"cannot join the Ray cluster at {address}: {str(err).splitlines()[0]}"
        ) from None


# Joins in token mode and starts one actor: exit status 3 when the actor dies at once, the
# sign of a cluster without authentication (its workers cannot call a token-mode driver).
_TOKEN_PROBE = """
import sys, ray
ray.init(address=sys.argv[1], log_to_driver=False)
@ray.remote(num_cpus=0, max_restarts=0)
class Probe:
    def ping(self):
        return 1
try:
    ray.get(Probe.remote().ping.remote(), timeout=60)
except ray.exceptions.ActorDiedError:
    sys.exit(3)
"""


def cluster_takes_token(address: str) -> bool:
    """Whether the cluster at `address` runs token authentication (a few seconds, in a child
    process: a Ray driver keeps its authentication mode for the life of its process)."""
    import subprocess

    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _TOKEN_PROBE, address], env=env, capture_output=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        return True  # undecided: the join below reports what is wrong
    return done.returncode != 3


def auth_token_source() -> str | None:
    """Where this machine has a Ray token: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or the default file."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return os.environ["RAY_AUTH_TOKEN_PATH"]
    return str(TOKEN_FILE) if TOKEN_FILE.expanduser().is_file() else None

"""Joining a Ray cluster (neonas/cluster.py), the one way `search`, `train` and `supernet train`
share: which address, and one line with exit status 2 when the cluster cannot be joined."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_search_cli import ray_command_cluster  # noqa: F401 (a fixture: `ray start` nodes)
from test_train_fixtures import make_image_folder, write_tiny_config

from neonas.cli import main
from neonas.cluster import cluster_address, join_cluster, on_ray
from neonas.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_address_comes_from_the_option_else_ray_address_else_a_local_ray(monkeypatch):
    assert cluster_address(None) == (None, "")
    assert not on_ray(None)
    assert cluster_address("local") == (None, "--address")  # a Ray of our own
    assert on_ray("local")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.2:6379")
    assert cluster_address(None) == ("10.0.0.2:6379", "RAY_ADDRESS")
    assert on_ray(None)
    assert cluster_address("10.0.0.1:6379") == ("10.0.0.1:6379", "--address")


@pytest.mark.parametrize("source", ["--address", "RAY_ADDRESS"])
def test_training_on_ray_from_a_torchrun_rank_is_refused_in_one_line(
    monkeypatch, inputs, tmp_path, capsys, source
) -> None:
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")  # what torchrun sets in every rank
    args = command("train", inputs, tmp_path / "out")
    if source == "--address":
        args += ["--address", "local"]
    else:
        monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"started by torchrun and asked to train on Ray ({source})" in err
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert not on_ray(None)  # torchrun alone, no Ray asked for: plain training


@pytest.mark.parametrize(
    ("token", "mode", "message"),
    [
        (None, None, "this machine has none: copy the head node's ~/.ray/auth_token here"),
        ("secret", "disabled", "it asks for a token: set RAY_AUTH_MODE=token"),
        ("secret", "token", "the token from RAY_AUTH_TOKEN was refused"),
    ],
)
def test_a_cluster_that_refuses_us_is_one_line_saying_what_to_set(
    monkeypatch, tmp_path, token, mode, message
) -> None:
    import ray

    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token
    for name, value in (("RAY_AUTH_TOKEN", token), ("RAY_AUTH_MODE", mode)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)

    def refused(**kwargs):  # what ray.init raises when the cluster's GCS refuses the driver
        try:
            raise RuntimeError("Unauthenticated: Authentication token is missing or incorrect")
        except RuntimeError as cause:
            raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379") from cause

    monkeypatch.setattr(ray, "init", refused)
    with pytest.raises(UserError) as refusal:
        join_cluster("10.0.0.1:6379")
    assert str(refusal.value).startswith("cannot join the Ray cluster at 10.0.0.1:6379: ")
    assert message in str(refusal.value) and "\n" not in str(refusal.value)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cluster")
    return {
        "images": make_image_folder(root / "images"),  # 16 px, as the tiny config
        "space images": make_image_folder(root / "space", classes=4, size=32),  # the tiny space
        "config": write_tiny_config(root / "tiny.yaml"),
    }


def command(name: str, inputs: dict[str, Path], output: Path) -> list[str]:
    where = ["--output", str(output), "--device", "cpu"]
    if name == "train":
        data = ["--data", str(inputs["images"])]
        return ["train", "--config", str(inputs["config"]), *data, *where, "--recipe", "short"]
    data = ["--data", str(inputs["space images"])]
    return ["supernet", "train", "--space", "tiny", *data, *where, "--epochs", "1"]


@pytest.mark.parametrize("source", ["--address", "RAY_ADDRESS"])
@pytest.mark.parametrize("name", ["train", "supernet train"])
def test_training_on_an_unreachable_cluster_is_one_line_and_writes_nothing(
    monkeypatch, inputs, tmp_path, capsys, name, source
) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    if "ray" in sys.modules:  # another test's Ray in this process would be used as the caller's
        monkeypatch.setattr(sys.modules["ray"], "is_initialized", lambda: False)
    args = command(name, inputs, tmp_path / "out")
    if source == "--address":
        args += ["--address", address]
    else:
        monkeypatch.setenv("RAY_ADDRESS", address)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"cannot join the Ray cluster at {address}: nothing answers there" in err, err
    assert f"or check {source}" in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a 1-node Ray cluster and two 1-epoch Ray Train runs: a minute or two here
def test_train_and_supernet_train_join_a_cluster_named_by_option_or_environment(
    inputs, tmp_path
) -> None:
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False}
    )
    try:
        env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
        fast = ["--batch-size", "8", "--workers", "0", "--no-progress", "--ray-workers", "1"]
        runs = {
            "train": ({**env, "RAY_ADDRESS": cluster.address}, [], "RAY_ADDRESS"),
            "supernet train": (env, ["--address", cluster.address], "--address"),
        }
        for name, (environment, address, named_by) in runs.items():
            args = [*command(name, inputs, tmp_path / name), *fast, *address]
            if name == "train":
                args += ["--epochs", "1", "--lr", "3e-3"]
            done = subprocess.run(
                [sys.executable, str(REPO / "cli.py"), *args],
                cwd=tmp_path,
                env={**environment, "OMP_NUM_THREADS": "1"},
                capture_output=True,
                text=True,
                timeout=400,
            )
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            joined = f"joined the Ray cluster at {cluster.address} (from {named_by}): 1 node(s)"
            assert joined in done.stdout, done.stdout[-3000:]
            assert (tmp_path / name / "last.pt").is_file()
    finally:
        cluster.shutdown()


@pytest.mark.slow  # two `ray start` nodes, a token probe and a 1-epoch Ray Train run: minutes
def test_train_joins_a_cluster_with_token_authentication_as_search_does(
    ray_command_cluster,  # noqa: F811
    inputs,
    tmp_path,
) -> None:
    address, env = ray_command_cluster  # Ray 2.60's `ray start`: token authentication on
    args = [*command("train", inputs, tmp_path / "run"), "--address", address, "--epochs", "1"]
    args += ["--batch-size", "8", "--lr", "3e-3", "--workers", "0", "--no-progress"]
    done = subprocess.run(
        [sys.executable, str(REPO / "cli.py"), *args],
        cwd=tmp_path,
        env={**env, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"joined the Ray cluster at {address} (from --address): 2 node(s), 2 CPUs" in done.stdout
    assert (tmp_path / "run" / "last.pt").is_file()

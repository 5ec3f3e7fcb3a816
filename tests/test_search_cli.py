"""`neonas search` as users run it: bad options, a real SIGKILL and resume, a 2-node Ray cluster."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from neonas.cli import main
from neonas.errors import UserError
from neonas.search import SearchSettings
from neonas.search.run_folder import RunFolder
from neonas.search.study import STUDY_NAME, load_trials, storage_url

REPO = Path(__file__).resolve().parents[1]
TINY = ["--space", "tiny", "--hw", "ascend", "--budget", "7M"]


def cli(*args: str) -> list[str]:
    return [sys.executable, str(REPO / "cli.py"), "search", *args]


@pytest.fixture
def existing_run(tmp_path) -> Path:
    settings = SearchSettings(name="old", results_dir=str(tmp_path), space="tiny")
    return RunFolder.create(settings, "name: tiny\n", {}, []).path


@pytest.fixture
def bad_images(tmp_path) -> Path:
    """An ImageFolder whose files have image names but are not images."""
    for split in ("train", "val"):
        for label in ("a", "b"):
            folder = tmp_path / "bad" / split / label
            folder.mkdir(parents=True)
            for index in range(3):
                (folder / f"{index}.png").write_bytes(b"not a png")
    return tmp_path / "bad"


def test_a_lock_held_on_another_host_is_refused_unless_forced(existing_run) -> None:
    run = RunFolder(existing_run)
    run.lock_file.write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": "noon"}))
    with pytest.raises(UserError, match="locked by process 1 on host elsewhere since noon"):
        with run.lock():
            pass
    with run.lock(force=True):
        assert json.loads(run.lock_file.read_text())["host"] != "elsewhere"
    assert not run.lock_file.exists()


def test_a_lock_of_a_dead_process_on_this_host_is_taken_over(existing_run) -> None:
    run = RunFolder(existing_run)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    run.lock_file.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    with run.lock():
        assert json.loads(run.lock_file.read_text())["pid"] == os.getpid()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "lots"], "bad --budget 'lots'"),
        (["--space", "tiny", "--budget", "1K"], "the smallest network of space 'tiny'"),
        (["--space", "imagenet21k"], "unknown search space 'imagenet21k'"),
        (["--space", "tiny", "--hw", "quantum"], "unknown hardware 'quantum'"),
        (["--time-budget", "soon"], "bad --time-budget 'soon'"),
        (["--latency-budget", "fast"], "bad --latency-budget 'fast'"),
        (["--objective", "scalar"], "needs a latency target"),
        (["--space", "tiny", "--data", "/no/such/folder"], "does not exist"),
        (["--resume", "ghost"], "no search run 'ghost'"),
        (["--name", "old"], "run 'old' already exists"),
        (["--resume", "old", "--budget", "5M"], "--budget 5000000 differs from run old, which"),
        (["--resume", "old", "--name", "new"], "leave out --name"),
        (
            ["--space", "tiny", "--latency-budget", "0.0001ms"],
            "over the latency budget of 0.0001 ms",
        ),
        (["--space", "tiny", "--data", "{bad_images}"], "cannot read the images of"),
        (["--epochs", "5"], "--epochs sets short training, and this run's signal is"),
        (["--image-size", "32"], "--image-size sets short training"),
        (["--train-images", "500"], "add --signal short-training --data DIR or leave it out"),
        (["--data", "{bad_images}", "--epochs", "5", "--signal", "zico"], "signal is zico"),
        (["--signal", "short-training"], "trains each network: add --data DIR"),
        (
            ["--data", "{bad_images}", "--supernet", "x.pt", "--signal", "zico"],
            "leave out --signal",
        ),
        (["--latency-target", "2ms"], "--latency-target sets the scalar reward"),
        (["--latency-weight", "-0.1"], "--latency-weight sets the scalar reward"),
        (["--name", "new", "--force"], "a new run has none"),
    ],
)
def test_bad_input_is_one_line_and_status_2(
    existing_run, bad_images, capsys, args, message
) -> None:
    args = [arg.format(bad_images=bad_images) for arg in args]
    status = main(["search", *args, "--results-dir", str(existing_run.parent)])
    err = capsys.readouterr().err
    assert status == 2
    assert message in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    "args", [["--trials", "0"], ["--sampler", "random"], ["--concurrency", "x"]]
)
def test_malformed_option_is_an_argparse_error_with_status_2(capsys, args) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["search", *args])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_the_real_command_reports_bad_input_in_one_line() -> None:
    done = subprocess.run(
        cli("--budget", "4.4Q"), cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "neonas search: error: bad --budget '4.4Q': use a number with an optional K, M, G or T suffix, e.g. 4.4G"
    ]


def completed_rows(run_dir: Path) -> dict[int, dict]:
    if not (run_dir / "study.db").is_file():
        return {}
    try:
        rows = load_trials(run_dir).with_status("completed")
    except Exception:  # the driver is still creating the study's tables
        return {}
    return {row.number: row.outcome() for row in rows}


def wait_for(predicate, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, "the search ended before the test could kill it"
        assert time.monotonic() < deadline, "timed out waiting for the search"
        time.sleep(0.2)


def end_group(proc: subprocess.Popen) -> None:
    """Stop whatever is left of the process group this test started (Ray's helpers)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_resume_after_sigkill_loses_and_repeats_no_completed_trial(tmp_path) -> None:
    run_dir = tmp_path / "killed"
    log = open(tmp_path / "first.log", "w")  # noqa: SIM115
    first = subprocess.Popen(
        cli(
            *TINY,
            "--trials",
            "6",
            "--concurrency",
            "2",
            "--name",
            "killed",
            "--results-dir",
            str(tmp_path),
        ),
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the test can clean up what Ray leaves
    )
    try:
        wait_for(lambda: len(completed_rows(run_dir)) >= 2, 240, first)
        first.send_signal(signal.SIGKILL)  # the driver, at an arbitrary moment of the sweep
        first.wait(timeout=30)
    finally:
        end_group(first)
        log.close()
    before = completed_rows(run_dir)
    for _ in range(50):  # the killed group's processes may still be exiting
        if len(before) >= 2:
            break
        time.sleep(0.2)
        before = completed_rows(run_dir)
    assert 2 <= len(before) < 6

    resumed = subprocess.run(
        cli("--resume", "killed", "--results-dir", str(tmp_path)),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
        start_new_session=True,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    after = completed_rows(run_dir)
    assert len(after) == 6
    assert all(after[number] == row for number, row in before.items())  # nothing lost or redone
    rerun = {p.name for p in (run_dir / "tune" / "session-2").glob("trial-*")}
    assert not rerun & {f"trial-{number:05d}" for number in before}
    trials = optuna.load_study(
        study_name=STUDY_NAME, storage=storage_url(run_dir / "study.db")
    ).trials
    assert {t.number for t in trials if t.state == TrialState.COMPLETE} == set(after)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    table = load_trials(run_dir)
    for lost in table.with_status("lost"):  # in flight at the kill: its point is proposed again
        later = [row.params for row in table.rows.values() if row.number > lost.number]
        assert any(lost.params.items() <= params.items() for params in later)
    sessions = json.loads((run_dir / "run.json").read_text())["sessions"]
    assert len(sessions) == 2 and sessions[1]["completed"] == 6


def test_address_runs_the_sweep_on_both_nodes_of_a_cluster(tmp_path) -> None:
    from ray.cluster_utils import Cluster

    # Ray's own multi-node test utility: two raylets on this machine, one CPU each.
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        node_ids = {node.node_id for node in cluster.list_all_nodes()}
        assert len(node_ids) == 2
        done = subprocess.run(
            cli(
                *TINY,
                "--trials",
                "4",
                "--concurrency",
                "2",
                "--name",
                "cluster",
                "--results-dir",
                str(tmp_path),
                "--address",
                cluster.address,
            ),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        rows = load_trials(tmp_path / "cluster").with_status("completed")
        assert len(rows) == 4
        assert {row.node for row in rows} == node_ids  # trials ran on both nodes
    finally:
        cluster.shutdown()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_line(log: Path, text: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while text not in (log.read_text() if log.is_file() else ""):
        assert proc.poll() is None, log.read_text()[-2000:]
        assert time.monotonic() < deadline, f"no {text!r} in {log}"
        time.sleep(0.3)


@pytest.fixture
def ray_command_cluster(tmp_path):
    """A head and a worker node started the way users start them: `ray start` (Ray 2.60 turns
    token authentication on). Each node runs with --block in a process group of its own, so
    the test ends exactly its own Ray processes (never `ray stop`, which stops every Ray of
    the user). The worker needs RAY_AUTH_MODE=token, as docs/clusters.md says."""
    port = free_port()
    temp = Path(f"/tmp/nr{port}")  # short: Ray's socket paths have a length limit
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    common = ["--num-cpus", "1", "--block", "--disable-usage-stats"]
    nodes = []
    try:
        head_log = tmp_path / "head.log"
        nodes.append(
            subprocess.Popen(
                ["ray", "start", "--head", "--port", str(port), "--include-dashboard=false"]
                + ["--temp-dir", str(temp), *common],
                env=env,
                stdout=head_log.open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        wait_for_line(head_log, "Ray runtime started", nodes[0])
        worker_log = tmp_path / "worker.log"
        nodes.append(
            subprocess.Popen(
                ["ray", "start", "--address", f"127.0.0.1:{port}", *common],
                env={**env, "RAY_AUTH_MODE": "token"},
                stdout=worker_log.open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        wait_for_line(worker_log, "Ray runtime started", nodes[1])
        yield f"127.0.0.1:{port}", env
    finally:
        for node in reversed(nodes):
            end_group(node)
            node.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow  # about 60 s: two Ray nodes, a probe and a 2-trial sweep
def test_a_cluster_started_with_ray_start_is_joined_as_typed(ray_command_cluster, tmp_path) -> None:
    address, env = ray_command_cluster
    args = [*TINY, "--trials", "2", "--concurrency", "2", "--results-dir", str(tmp_path)]
    done = subprocess.run(
        cli(*args, "--name", "typed", "--address", address),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"joined the Ray cluster at {address} (from --address): 2 node(s), 2 CPUs" in done.stdout
    assert len(load_trials(tmp_path / "typed").with_status("completed")) == 2
    # RAY_ADDRESS is honoured as if given with --address, and the run says so.
    done = subprocess.run(
        cli(*args, "--name", "from-env"),
        cwd=REPO,
        env={**env, "RAY_ADDRESS": address},
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"joined the Ray cluster at {address} (from RAY_ADDRESS)" in done.stdout


def test_a_failed_join_leaves_no_run_folder_behind(tmp_path) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    args = [*TINY, "--name", "nowhere", "--results-dir", str(tmp_path), "--address", address]
    # A fresh process: this one may already hold the session's local Ray.
    done = subprocess.run(cli(*args), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"cannot join the Ray cluster at {address}" in done.stderr
    assert not (tmp_path / "nowhere").exists()  # the same command typed again is not refused


def test_an_unreadable_image_is_named_once_in_the_one_line(existing_run, bad_images, capsys):
    status = main(
        ["search", "--space", "tiny", "--data", str(bad_images)]
        + ["--results-dir", str(existing_run.parent)]
    )
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    broken = re.search(r"cannot read image (\S+\.png)", err)
    assert broken and err.count(broken.group(1)) == 1, err

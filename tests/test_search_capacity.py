"""GPU trials and sweeps whose cluster loses capacity: the resource requests, the decision
when a waiting trial can never start, and whole sweeps on `ray.cluster_utils.Cluster`
(tests/cluster_sweep.py, in a child process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from neonas.cli import main
from neonas.errors import UserError
from neonas.search.capacity import (
    NONE,
    NONE_GRACE_S,
    RELEASE,
    CapacityWatch,
    TrialResources,
    trial_device,
    verdict,
)
from neonas.search.settings import SearchSettings

REPO = Path(__file__).resolve().parents[1]
CPU1 = {"CPU": 1.0}


# --- what a trial asks for --------------------------------------------------------------------


def test_a_gpu_share_joins_the_trials_bundle_under_the_gpu_resource() -> None:
    assert TrialResources(1, 0).bundle() == {"CPU": 1.0}
    assert TrialResources(2, 0.25).bundle() == {"CPU": 2.0, "GPU": 0.25}
    stand_in = TrialResources(1, 0.5, gpu_resource="FAKE_GPU")
    assert stand_in.bundle() == {"CPU": 1.0, "FAKE_GPU": 0.5}
    assert stand_in.text() == "1 CPU and 0.5 FAKE_GPU"
    assert stand_in.placement().required_resources == {"CPU": 1.0, "FAKE_GPU": 0.5}


def test_gpus_per_trial_refuses_negative_and_mixed_values() -> None:
    assert SearchSettings(name="x", gpus_per_trial=0.25).gpus_per_trial == 0.25
    assert SearchSettings(name="x", gpus_per_trial=2).gpus_per_trial == 2
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        SearchSettings(name="x", gpus_per_trial=-1)
    with pytest.raises(ValueError, match="share of one GPU"):
        SearchSettings(name="x", gpus_per_trial=1.5)


@pytest.mark.parametrize("value", ["-0.5", "abc", "nan"])
def test_the_command_refuses_a_bad_gpus_per_trial_in_one_line(value: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "--space", "tiny", "--gpus-per-trial", value])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--gpus-per-trial" in error and "Traceback" not in error


def test_gpu_trials_on_a_cluster_without_gpus_are_refused_before_any_file(
    ray_session, tmp_path
) -> None:
    from neonas.search import start_run

    settings = SearchSettings(
        name="nogpu", results_dir=str(tmp_path), space="tiny", trials=1, gpus_per_trial=0.5
    )
    with pytest.raises(UserError, match=r"--gpus-per-trial 0.5: the Ray cluster has no GPU"):
        start_run(settings)
    assert not (tmp_path / "nogpu").exists()


def test_a_trial_without_a_gpu_computes_on_the_cpu(ray_session) -> None:
    assert trial_device() == "cpu"  # no GPU given by Ray (and none here)


def test_the_gpu_share_can_change_on_resume() -> None:
    from neonas.options import resumable
    from neonas.search.settings import OPTION_FLAGS, SEARCH_OPTIONS

    assert "gpus_per_trial" in resumable(SEARCH_OPTIONS)
    assert OPTION_FLAGS["gpus_per_trial"] == "--gpus-per-trial"


# --- can a waiting trial ever start? ----------------------------------------------------------


def test_a_trial_fits_beside_the_station_on_another_node() -> None:
    nodes = {"head": CPU1, "worker": CPU1}
    assert verdict(nodes, CPU1, {"head": CPU1}).kind == "fits"


def test_a_station_holding_the_last_cpu_must_give_it_up() -> None:
    found = verdict({"head": CPU1}, CPU1, {"head": CPU1})
    assert found.kind == RELEASE and found.nodes == ("head",)


def test_with_no_node_that_has_the_resources_nothing_can_run() -> None:
    found = verdict({"head": {"CPU": 0.0}}, CPU1, {})
    assert found.kind == NONE
    assert found.missing == "a trial needs 1 CPU; the 1 alive node has 0 CPU"
    gpu = verdict({"a": {"CPU": 4.0}, "b": {"CPU": 8.0}}, {"CPU": 1.0, "GPU": 0.5})
    assert (
        gpu.missing
        == "a trial needs 1 CPU and 0.5 GPU; the 2 alive nodes have at most 8 CPU and 0 GPU"
    )
    assert "no alive node" in verdict({}, CPU1).missing


def test_fractional_gpus_that_add_up_to_a_whole_one_fit() -> None:
    node = {"CPU": 4.0, "GPU": 1.0}
    assert verdict({"n": node}, {"CPU": 1.0, "GPU": 0.1}, {"n": {"GPU": 0.9}}).kind == "fits"
    assert verdict({"n": node}, {"CPU": 1.0, "GPU": 0.2}, {"n": {"GPU": 0.9}}).kind == RELEASE


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def watch_of(nodes: dict, holds: dict, clock: Clock, released: list) -> CapacityWatch:
    return CapacityWatch(
        CPU1,
        lambda: holds,
        released.append,
        "continue with --resume run",
        nodes=lambda: nodes,
        clock=clock,
    )


def test_the_watch_releases_the_station_when_a_waiting_trial_could_only_run_without_it() -> None:
    clock, released = Clock(), []
    watch = watch_of({"head": CPU1}, {"head": CPU1}, clock, released)
    watch.check(waiting=True, running=True)  # a trial runs: the others just wait their turn
    assert released == []
    clock.now += 5
    watch.check(waiting=True, running=False)
    assert released == [("head",)] and watch.stop_reason is None


def test_the_watch_ends_the_session_only_after_the_grace_period() -> None:
    clock, released = Clock(), []
    watch = watch_of({"head": {"CPU": 0.0}}, {}, clock, released)
    watch.check(waiting=True, running=False)
    clock.now += NONE_GRACE_S / 2
    watch.check(waiting=True, running=False)
    assert watch.stop_reason is None
    clock.now += NONE_GRACE_S
    watch.check(waiting=True, running=False)
    assert watch.stop_reason == (
        "no node of the Ray cluster can run a trial: a trial needs 1 CPU; the 1 alive node "
        "has 0 CPU; continue with --resume run"
    )


def test_capacity_that_returns_within_the_grace_period_keeps_the_session() -> None:
    clock, released = Clock(), []
    nodes: dict = {"head": {"CPU": 0.0}}
    watch = watch_of(nodes, {}, clock, released)
    watch.check(waiting=True, running=False)
    nodes["worker"] = CPU1
    clock.now += NONE_GRACE_S - 1
    watch.check(waiting=True, running=False)
    nodes.pop("worker")
    clock.now += NONE_GRACE_S - 1
    watch.check(waiting=True, running=False)
    assert watch.stop_reason is None


def test_a_station_whose_node_left_is_reopened_where_trials_run() -> None:
    clock, released = Clock(), []
    watch = CapacityWatch(
        CPU1,
        dict,
        released.append,
        "",
        lost=lambda alive: "worker" not in alive,
        nodes=lambda: {"head": CPU1},
        clock=clock,
    )
    watch.check(waiting=False, running=True)
    assert released == [("head",)]


# --- whole sweeps on a two-node cluster -------------------------------------------------------


def cluster_sweep(tmp_path: Path, mode: str, timeout: int = 500) -> dict:
    done = subprocess.run(
        [sys.executable, str(REPO / "tests" / "cluster_sweep.py"), str(tmp_path), mode],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # two raylets, a fresh Ray actor per trial: about 2 minutes on 2 busy cores
def test_gpu_trials_run_on_the_node_that_has_the_gpu(tmp_path) -> None:
    found = cluster_sweep(tmp_path, "gpu")
    assert found["completed"] == 4 and found["stop_reason"] is None
    assert found["nodes"] == [found["worker"]]  # the head has CPUs but no (stand-in) GPU
    assert found["settings"]["gpus_per_trial"] == 0.5  # in run.json: --resume keeps it
    assert "each on 1 CPU and 0.5 FAKE_GPU" in found["console"]


@pytest.mark.slow  # about 4 minutes on 2 busy cores: 5 trials, one at a time
def test_a_cpu_sweep_that_loses_its_worker_node_still_completes(tmp_path) -> None:
    found = cluster_sweep(tmp_path, "shrink")
    assert found["removed_after"] == [3]
    assert found["completed"] == 5 and found["stop_reason"] is None
    # The station held the head's only CPU; it gave up its reservation and the trials after
    # the worker left ran on the head.
    assert "now measuring latency on cpu: shared slot" in found["console"]
    assert len(found["nodes"]) == 2


@pytest.mark.slow  # about 3 minutes on 2 busy cores: two sessions
def test_a_sweep_with_no_node_left_ends_itself_and_resume_completes_it(tmp_path) -> None:
    found = cluster_sweep(tmp_path, "vanish")
    assert found["removed_after"] == [2] and 2 <= found["completed"] < 4
    assert found["stop_reason"] == (
        "no node of the Ray cluster can run a trial: a trial needs 1 CPU; the 1 alive node has "
        "0 CPU; add a node that has them, then continue with --resume vanish"
    )
    assert found["resumed"] == 4 and found["resumed_stop"] is None


def test_a_cpu_sweep_on_one_cpu_measures_without_a_reservation_and_completes(tmp_path) -> None:
    # Before: the station reserved the only CPU and the trials waited for it forever.
    found = cluster_sweep(tmp_path, "single", timeout=300)
    assert found["completed"] == 2 and found["stop_reason"] is None
    assert "measuring latency on cpu: shared slot: nothing reserved" in found["console"]


def test_a_resume_refuses_a_gpu_share_ray_cannot_give(tmp_path) -> None:
    from neonas.search import resume_run
    from neonas.search.run_folder import RunFolder

    RunFolder.create(SearchSettings(name="r", results_dir=str(tmp_path)), "name: x\n", {}, [])
    with pytest.raises(UserError, match="--gpus-per-trial 1.5: Ray gives a trial a share"):
        resume_run("r", {"gpus_per_trial": 1.5}, str(tmp_path))


# --- where the measuring station goes ----------------------------------------------------------


def test_a_station_holds_its_device_resource() -> None:
    from evaluators.latency.station import plan_holds, station_plan

    assert plan_holds(station_plan("cpu", threads=1)) == {"CPU": 1.0}
    assert plan_holds(station_plan("cuda")) == {"GPU": 1.0}
    assert plan_holds(station_plan("npu")) == {"NPU": 1.0}
    assert plan_holds(station_plan("cpu", resource="FAKE_NPU")) == {"FAKE_NPU": 1.0}


def test_gpu_trials_leave_the_cuda_station_one_gpu_not_all() -> None:
    from evaluators.latency.station import station_plan

    assert station_plan("cuda", cluster={"GPU": 4.0}).stations == 4
    assert station_plan("cuda", cluster={"GPU": 4.0}, max_stations=1).stations == 1


def test_a_reserved_station_is_kept_only_where_a_trial_still_fits() -> None:
    from evaluators.latency.station import station_plan
    from evaluators.sweep import shared_station_nodes

    cpu = station_plan("cpu", threads=1)
    two = {"head": {"CPU": 1.0}, "worker": {"CPU": 1.0}}
    assert (
        shared_station_nodes(cpu, {"CPU": 1.0}, two) is None
    )  # station on one, trials on the other
    assert shared_station_nodes(cpu, {"CPU": 1.0}, {"head": {"CPU": 1.0}}) == ["head"]
    assert shared_station_nodes(cpu, {"CPU": 1.0}, {"head": {"CPU": 2.0}}) is None
    cuda = station_plan("cuda", max_stations=1)
    gpu_trial = {"CPU": 1.0, "GPU": 0.25}
    one_gpu = {"box": {"CPU": 16.0, "GPU": 1.0}}
    assert shared_station_nodes(cuda, gpu_trial, one_gpu) == ["box"]  # the only GPU is shared
    assert shared_station_nodes(cuda, gpu_trial, {"box": {"CPU": 16.0, "GPU": 2.0}}) is None
    assert shared_station_nodes(cuda, {"CPU": 1.0}, one_gpu) is None  # CPU trials: GPU kept


def test_a_resume_keeps_the_stored_gpu_share_and_says_how_to_go_on_without_gpus(
    ray_session, tmp_path
) -> None:
    from neonas.search import resume_run
    from neonas.search.run_folder import RunFolder
    from neonas.space import load_space

    stored = SearchSettings(name="g", results_dir=str(tmp_path), space="tiny", gpus_per_trial=0.5)
    RunFolder.create(stored, load_space("tiny").text, {}, [])
    with pytest.raises(UserError, match="give --gpus-per-trial 0 to continue on CPUs"):
        resume_run("g", {}, str(tmp_path))

"""Measuring in a sweep: one station per device, one measurement at a time, on the device's node."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import ray
from torch import nn

from evaluators.latency.measure import MeasureSettings
from evaluators.latency.station import (
    MeasuringStation,
    close_stations,
    measure_latency_remote,
    station_plan,
)
from neonas.errors import UserError

REPO = Path(__file__).resolve().parents[1]
QUICK = MeasureSettings(warmup_runs=1, warmup_s=0.0, window=5, max_time_s=0.3)


def test_a_cpu_station_is_a_dedicated_slot_of_reserved_cpus() -> None:
    plan = station_plan("cpu", threads=2)
    assert plan.options == {"num_cpus": 2} and plan.stations == 1
    assert "dedicated slot" in plan.isolation and "not paused" in plan.isolation


def test_device_stations_hold_the_device_one_per_device_of_the_cluster() -> None:
    cuda = station_plan("cuda", cluster={"GPU": 2.0, "CPU": 8.0})
    assert cuda.options == {"num_cpus": 0, "num_gpus": 1} and cuda.stations == 2
    npu = station_plan("npu", cluster={"NPU": 8.0})
    assert npu.options == {"num_cpus": 0, "resources": {"NPU": 1}} and npu.stations == 8
    assert "exclusive device" in npu.isolation


@pytest.mark.parametrize("hw", ["cpu", "cuda", "npu"])
def test_the_options_are_valid_ray_actor_options(hw: str) -> None:
    ray.remote(MeasuringStation).options(max_concurrency=1, **station_plan(hw).options)


def test_a_device_index_is_refused_because_ray_picks_the_device() -> None:
    with pytest.raises(UserError, match="use --hw cuda, not 'cuda:1'"):
        station_plan("cuda:1")


def test_predicted_targets_are_not_measured() -> None:
    with pytest.raises(UserError, match="cannot measure 'ascend310'"):
        station_plan("ascend310")


def test_cpu_measurement_runs_on_a_station(ray_session) -> None:
    try:
        result = measure_latency_remote(nn.Conv2d(3, 4, 3), (3, 8, 8), "cpu", settings=QUICK)
    finally:
        close_stations(station_plan("cpu"))
    assert result.source == "measured" and result.hw == "cpu"
    assert result.settings["threads"] == 1  # the station's slot: one reserved CPU
    assert result.settings["ray_node"] == ray_session.get_runtime_context().get_node_id()
    assert result.settings["measured_to"] > result.settings["measured_from"]
    assert "dedicated slot" in result.settings["isolation"]


SWEEP = textwrap.dedent(
    """
    import json, sys, time
    import ray
    from torch import nn
    from evaluators import get_hw
    from evaluators.latency.measure import MeasureSettings
    from evaluators.sweep import SweepMeasurement

    ray.init(address=sys.argv[1], log_to_driver=False)
    # The driver: a sweep on --hw cpu whose "device" is the FAKE_NPU resource of one node.
    measuring = SweepMeasurement.open("cpu", 1, resource="FAKE_NPU")

    def evaluate(config, settings, report):  # what a trial runs: get_hw without options
        start = time.time()
        quick = MeasureSettings(warmup_runs=1, warmup_s=0.0, window=5, max_time_s=0.4)
        target = get_hw("cpu")
        assert target.options.remote
        target.options = type(target.options)(remote=True, measure=quick)
        result = target.latency(nn.Conv2d(3, 16, 3), (3, 32, 32))
        time.sleep(0.3)  # the trial's other work
        report([start, time.time(), result.settings])

    @ray.remote(num_cpus=0.5)
    def trial(trial_evaluate):
        reports = []
        trial_evaluate(None, None, reports.append)
        return reports[0]

    found = ray.get([trial.remote(measuring.wrap(evaluate)) for _ in range(4)])
    measuring.close()
    device = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("FAKE_NPU")]
    print(json.dumps({"trials": found, "device_nodes": device}))
    """
)


@pytest.mark.slow  # two raylets and a driver process: about a minute on 2 cores
def test_sweep_measurements_never_overlap_on_a_multi_node_cluster(tmp_path) -> None:
    from ray.cluster_utils import Cluster

    # Two raylets: a head with CPUs only, a worker whose FAKE_NPU stands in for a device.
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False}
    )
    try:
        cluster.add_node(num_cpus=2, resources={"FAKE_NPU": 1})
        cluster.wait_for_nodes()
        script = tmp_path / "sweep.py"
        script.write_text(SWEEP)
        done = subprocess.run(
            [sys.executable, str(script), cluster.address],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    finally:
        cluster.shutdown()
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    trials = out["trials"]
    assert len(trials) == 4 and len(out["device_nodes"]) == 1
    # The trials ran concurrently: at some moment more than one was in flight ...
    spans = sorted((start, end) for start, end, _ in trials)
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))
    # ... but their measurements never overlapped, and all ran on the device's node.
    measured = sorted((s["measured_from"], s["measured_to"]) for _, _, s in trials)
    assert all(a[1] <= b[0] for a, b in zip(measured, measured[1:], strict=False))
    assert {s["ray_node"] for _, _, s in trials} == set(out["device_nodes"])
    assert all("exclusive device" in s["isolation"] for _, _, s in trials)

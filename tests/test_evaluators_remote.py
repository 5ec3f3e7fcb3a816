"""Ray placement of measurements: the resource each device needs, and a real local CPU task."""

import pytest
import ray
from torch import nn

from evaluators.latency.measure import MeasureSettings
from evaluators.latency.remote import measure_latency_remote, ray_options
from neonas.errors import UserError


def test_cpu_measurements_ask_for_their_threads_as_cpus() -> None:
    assert ray_options("cpu") == {"num_cpus": 1}
    assert ray_options("cpu", threads=4) == {"num_cpus": 4}


def test_gpu_measurements_ask_for_one_gpu() -> None:
    assert ray_options("cuda") == {"num_cpus": 1, "num_gpus": 1}


def test_npu_measurements_ask_for_the_npu_resource_ray_registers_for_ascend() -> None:
    assert ray_options("npu") == {"num_cpus": 1, "resources": {"NPU": 1}}


@pytest.mark.parametrize("hw", ["cpu", "cuda", "npu"])
def test_the_options_are_valid_ray_task_options(hw: str) -> None:
    ray.remote(lambda: None).options(**ray_options(hw))  # Ray validates here, without a cluster


def test_a_device_index_is_refused_because_ray_picks_the_device() -> None:
    with pytest.raises(UserError, match="use --hw cuda, not 'cuda:1'"):
        ray_options("cuda:1")


def test_predicted_targets_cannot_be_measured_remotely() -> None:
    with pytest.raises(UserError, match="cannot measure 'ascend310' remotely"):
        ray_options("ascend310")


def test_cpu_measurement_runs_as_a_ray_task(ray_session) -> None:
    settings = MeasureSettings(warmup_runs=1, warmup_s=0.0, window=3, max_time_s=0.3)
    result = measure_latency_remote(nn.Conv2d(3, 4, 3), (3, 8, 8), "cpu", settings=settings)
    assert result.source == "measured" and result.hw == "cpu"
    assert result.settings["threads"] == 1  # Ray gives the task one CPU
    assert result.settings["ray_node"] == ray_session.get_runtime_context().get_node_id()

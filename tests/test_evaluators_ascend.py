"""The Ascend roofline model: fractal padding, cores, bounds, and sourced constants."""

import dataclasses

import pytest
import timm
from torch import nn

from evaluators.latency.ascend import ASCEND310, ASCEND910, AscendProfile, op_times, predict_latency
from evaluators.op_trace import Gemm, OpRecord

# One core at 1 GHz, 1 byte/ns of memory, no launch cost: times read as cycles.
UNIT = AscendProfile(
    name="unit",
    description="test chip",
    cores=1,
    clock_hz=1e9,
    memory_bytes_per_s=1e9,
    launch_overhead_s=0.0,
)


def matmul(m: int, k: int, n: int, count: int = 1) -> OpRecord:
    return OpRecord("mm", "layer", (Gemm(m, k, n, count),), read=0, written=0)


def cycles(op: OpRecord, profile: AscendProfile = UNIT) -> float:
    return op_times([op], profile)[0].cube_s * profile.clock_hz


def test_one_fractal_takes_one_cube_cycle() -> None:
    assert cycles(matmul(16, 16, 16)) == 1


def test_every_dimension_is_padded_to_the_fractal() -> None:
    assert cycles(matmul(17, 16, 16)) == 2
    assert cycles(matmul(16, 17, 16)) == 2
    assert cycles(matmul(1, 1, 1)) == 1


def test_output_tiles_are_shared_out_over_cores_but_one_tile_uses_one_core() -> None:
    four_cores = dataclasses.replace(UNIT, cores=4)
    assert cycles(matmul(64, 16, 16), four_cores) == 1  # 4 tiles, 4 cores
    assert cycles(matmul(16, 64, 16), four_cores) == 4  # 1 tile, 4 K steps: no help from cores


def test_op_time_is_its_slowest_unit_plus_launch() -> None:
    profile = dataclasses.replace(UNIT, launch_overhead_s=1e-6)
    copy = OpRecord("clone", "layer", (), read=4000, written=4000)  # 8000 bytes at 1 GB/s = 8 us
    time = op_times([copy], profile)[0]
    assert time.memory_s == pytest.approx(16e-6)  # fp16: 2 bytes per element
    assert time.time_s == pytest.approx(17e-6)
    assert time.bound == "memory"


def test_vector_work_runs_one_element_per_lane_and_cycle() -> None:
    gelu = OpRecord("gelu", "act", (), read=1280, written=1280)
    assert op_times([gelu], UNIT)[0].vector_s == pytest.approx(1280 / 128 / 1e9)


def test_prediction_is_the_sum_of_its_per_layer_breakdown() -> None:
    model = nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32 * 6 * 6, 10))
    result = predict_latency(model, (3, 8, 8), ASCEND310, batch=2)
    assert result.source == "predicted" and result.dtype == "fp16" and result.batch == 2
    assert [row.name for row in result.breakdown] == ["0", "1", "3"]
    assert sum(row.ms for row in result.breakdown) == pytest.approx(result.median_ms)
    assert 0 < result.settings["matrix_efficiency"] <= 1


def test_the_910_is_faster_than_the_310() -> None:
    model = timm.create_model("resnet18", num_classes=10)
    assert (
        predict_latency(model, (3, 64, 64), ASCEND910).median_ms
        < predict_latency(model, (3, 64, 64), ASCEND310).median_ms
    )


def test_profiles_reproduce_the_published_peaks() -> None:
    # Ascend 310: 8 TOPS fp16 counting a multiply-add as one op; 910: 256 TFLOPS counting two.
    assert ASCEND310.peak_macs_per_s == pytest.approx(8e12, rel=0.03)
    assert 2 * ASCEND910.peak_macs_per_s == pytest.approx(256e12, rel=0.03)
    assert (ASCEND310.cores, ASCEND910.cores) == (2, 32)

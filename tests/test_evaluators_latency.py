"""Measured latency: adaptive repeats, CPU threads, and the CUDA / NPU paths with fake devices."""

import contextlib
import itertools
import sys
import time
import types

import pytest
import torch
from torch import nn

from evaluators.latency.backends import Backend, CpuBackend, CudaBackend, NpuBackend, open_backend
from evaluators.latency.measure import MeasureSettings, measure_latency
from neonas.errors import UserError

QUICK = MeasureSettings(warmup_runs=1, warmup_s=0.0, window=5, max_time_s=0.5, min_sample_ms=0.0)


def small_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())


class ScriptedBackend(Backend):
    """CPU tensors, but each timed call takes the next scripted number of milliseconds."""

    kind = "cpu"

    def __init__(self, times_ms):
        self.times = iter(times_ms)

    def device_name(self) -> str:
        return "scripted"

    def time_ms(self, fn, repeat):
        fn()
        return next(self.times) * repeat


class FakeAccelerator:
    """The parts of torch.cuda / torch.npu the backends use, running on the CPU and logging calls."""

    def __init__(self, count: int = 1, available: bool = True) -> None:
        self.count, self.available, self.calls = count, available, []
        self.jit_compile = True
        accelerator = self

        class Event:
            def __init__(self, enable_timing: bool = False) -> None:
                assert enable_timing
                self.at = None

            def record(self) -> None:
                accelerator.calls.append("record")
                self.at = time.perf_counter()

            def synchronize(self) -> None:
                accelerator.calls.append("event.synchronize")

            def elapsed_time(self, end) -> float:
                return (end.at - self.at) * 1e3

        class Graph:
            def replay(self) -> None:
                accelerator.calls.append("replay")

        self.Event, self.CUDAGraph = Event, Graph

    def is_available(self) -> bool:
        return self.available

    def device_count(self) -> int:
        return self.count

    def get_device_name(self, index: int) -> str:
        return f"Fake device {index}"

    def synchronize(self) -> None:
        self.calls.append("synchronize")

    def current_device(self) -> int:
        return 0

    def set_device(self, index: int) -> None:
        self.calls.append(f"set_device({index})")

    def Stream(self):  # noqa: N802 (torch.cuda.Stream)
        return types.SimpleNamespace(wait_stream=lambda other: None)

    def current_stream(self):
        return self.Stream()

    def stream(self, _stream):
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def graph(self, _graph):
        self.calls.append("capture")
        yield

    def set_compile_mode(self, jit_compile: bool) -> None:
        self.calls.append(f"set_compile_mode(jit_compile={jit_compile})")
        self.jit_compile = jit_compile

    def is_jit_compile_false(self) -> bool:
        return not self.jit_compile


def test_stops_as_soon_as_a_window_of_samples_agrees() -> None:
    result = measure_latency(
        small_model(), (3, 8, 8), backend=ScriptedBackend(itertools.repeat(2.0)), settings=QUICK
    )
    assert result.stable and result.spread == 0.0 and result.median_ms == 2.0
    assert result.settings["samples_total"] == 5 and result.runs == 5


def test_noise_before_the_window_counts_as_warm_up() -> None:
    # the first call calibrates forwards per sample; then 4 noisy samples, then steady 2 ms
    times = itertools.chain([2.0, 9.0, 1.0, 7.0, 3.0], itertools.repeat(2.0))
    result = measure_latency(
        small_model(), (3, 8, 8), backend=ScriptedBackend(times), settings=QUICK
    )
    # [3, 2, 2, 2, 2] is already stable: one leftover outlier does not move the robust spread
    assert result.stable and result.median_ms == 2.0 and result.settings["samples_total"] == 8


def test_gives_up_at_the_time_cap_and_says_the_figure_is_not_stable() -> None:
    times = itertools.cycle([1.0, 3.0])
    settings = MeasureSettings(
        warmup_runs=1, warmup_s=0.0, window=5, max_time_s=0.05, min_sample_ms=0.0
    )
    result = measure_latency(
        small_model(), (3, 8, 8), backend=ScriptedBackend(times), settings=settings
    )
    assert not result.stable
    assert result.spread > 0.05
    assert result.iqr_ms > 0


def test_fast_models_are_timed_several_forwards_per_sample() -> None:
    settings = MeasureSettings(
        warmup_runs=1, warmup_s=0.0, window=3, max_time_s=0.2, min_sample_ms=5.0
    )
    result = measure_latency(nn.Identity(), (3, 2, 2), "cpu", settings=settings)
    assert result.settings["forwards_per_sample"] > 1
    assert result.runs == result.settings["samples"] * result.settings["forwards_per_sample"]


def test_cpu_measurement_records_device_threads_and_restores_them() -> None:
    before = torch.get_num_threads()
    result = measure_latency(small_model(), (3, 16, 16), "cpu", batch=2, threads=1, settings=QUICK)
    assert torch.get_num_threads() == before
    assert result.source == "measured" and result.hw == "cpu" and result.batch == 2
    assert result.settings["threads"] == 1 and result.device
    assert result.median_ms > 0 and result.runs >= 3


def test_measuring_leaves_the_model_as_it_was() -> None:
    model = small_model().train()
    measure_latency(model, (3, 8, 8), "cpu", dtype="bf16", settings=QUICK)
    assert model.training and next(model.parameters()).dtype == torch.float32


def test_a_neocell_model_moved_to_another_dtype_is_measured() -> None:
    # The moved copy's parameters must not be inference tensors: NeoCell's operand cache reads
    # their version counter (on a GPU every NeoNeXt is moved, so `profile --hw cuda` failed).
    from neonas.ops import NeoCell

    model = nn.Sequential(nn.Conv2d(3, 8, 1), NeoCell(8, 4))
    result = measure_latency(model, (3, 8, 8), "cpu", dtype="bf16", settings=QUICK)
    assert result.median_ms > 0 and next(model.parameters()).dtype == torch.float32


def test_unknown_dtype_is_a_user_error() -> None:
    with pytest.raises(UserError, match="dtype 'fp8'"):
        measure_latency(small_model(), (3, 8, 8), "cpu", dtype="fp8")


@pytest.mark.parametrize(
    ("hw", "message"),
    [
        ("tpu", "measured targets are cpu, cuda"),
        ("cpu:1", "the CPU takes no index"),
        ("cuda:x", "cuda:N with N a device index"),
    ],
)
def test_bad_backend_names_are_user_errors(hw: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        open_backend(hw)


def test_cuda_graphs_need_cuda() -> None:
    with pytest.raises(UserError, match="CUDA graphs need --hw cuda"):
        open_backend("cpu", cuda_graphs=True)


def test_cuda_without_a_device_is_a_user_error_not_a_fallback(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match=r"torch sees no CUDA device.*use --hw cpu"):
        open_backend("cuda")


def test_cuda_index_beyond_the_visible_devices_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"cuda:2: only 2 cuda device\(s\)"):
        CudaBackend(2, api=FakeAccelerator(count=2), device="cpu")


def test_cuda_timing_uses_events_after_a_synchronize_on_the_chosen_device() -> None:
    fake = FakeAccelerator(count=2)
    backend = CudaBackend(1, api=fake, device="cpu")
    result = measure_latency(small_model(), (3, 8, 8), "cuda:1", backend=backend, settings=QUICK)
    assert result.device == "Fake device 1" and result.settings["device_index"] == 1
    assert fake.calls[0] == "set_device(1)" and fake.calls[-1] == "set_device(0)"
    first_timing = fake.calls.index("record")
    assert fake.calls[first_timing - 1] == "synchronize"
    assert fake.calls[first_timing + 1 : first_timing + 3] == ["record", "event.synchronize"]


def test_cuda_graphs_are_captured_once_then_replayed() -> None:
    fake = FakeAccelerator()
    backend = CudaBackend(0, cuda_graphs=True, api=fake, device="cpu")
    result = measure_latency(small_model(), (3, 8, 8), "cuda", backend=backend, settings=QUICK)
    assert fake.calls.count("capture") == 1
    assert fake.calls.count("replay") >= result.runs
    assert result.settings["cuda_graphs"] is True


def test_npu_without_torch_npu_is_a_user_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torch_npu", None)  # import torch_npu raises ImportError
    with pytest.raises(UserError, match=r"needs Huawei's torch_npu.*ascend310"):
        open_backend("npu")


def test_npu_with_torch_npu_but_no_device_is_a_user_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torch_npu", types.ModuleType("torch_npu"))
    monkeypatch.setattr(torch, "npu", FakeAccelerator(available=False), raising=False)
    with pytest.raises(UserError, match="sees no Ascend device"):
        open_backend("npu:0")


def test_npu_measures_with_precompiled_operators_and_restores_the_mode() -> None:
    fake = FakeAccelerator()
    backend = NpuBackend(0, api=fake, device="cpu")
    result = measure_latency(small_model(), (3, 8, 8), "npu", backend=backend, settings=QUICK)
    assert "set_compile_mode(jit_compile=False)" in fake.calls
    assert fake.jit_compile is True  # restored: it was True before
    assert result.settings["jit_compile"] is False and result.device == "Fake device 0"
    assert "record" in fake.calls


def test_cpu_backend_rejects_zero_threads() -> None:
    with pytest.raises(UserError, match="thread count 0"):
        CpuBackend(0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_real_cuda_measurement(cuda_graphs: bool) -> None:
    result = measure_latency(
        small_model(), (3, 32, 32), "cuda", dtype="fp16", cuda_graphs=cuda_graphs, settings=QUICK
    )
    assert result.source == "measured" and result.median_ms > 0
    assert result.device == torch.cuda.get_device_name(0)

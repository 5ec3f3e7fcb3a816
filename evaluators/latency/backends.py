"""Devices latency can be measured on: CPU, CUDA and Ascend NPU (through torch_npu).

A backend knows how to put a model on its device, how to time calls there (wall clock on
the CPU, device events on accelerators, whose work is asynchronous) and what settings a
figure depends on. Asking for a device that is absent is a UserError, never a fallback.
"""

from __future__ import annotations

import importlib.util
import platform
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch
from torch import nn

from neonas.errors import UserError

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
MEASURED_KINDS = ("cpu", "cuda", "npu")


def parse_dtype(name: str) -> torch.dtype:
    """'fp16' -> torch.float16; unknown names are a UserError."""
    if name not in DTYPES:
        raise UserError(f"unknown dtype {name!r}: use one of {', '.join(DTYPES)}")
    return DTYPES[name]


class Backend:
    """A device to time forwards on; a context manager for the settings it applies."""

    kind = ""
    device = torch.device("cpu")

    def device_name(self) -> str:
        """Human name of the device, recorded with every figure."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """What the figure depends on besides model, input and dtype."""
        return {}

    def synchronize(self) -> None:
        """Wait for queued device work (nothing to wait for on the CPU)."""

    def time_ms(self, fn: Callable[[], object], repeat: int) -> float:
        """Milliseconds that `repeat` calls of `fn` take, device work included."""
        raise NotImplementedError

    def runner(self, model: nn.Module, example: torch.Tensor) -> Callable[[], object]:
        """The call to time: one forward of `model` on `example`."""
        return lambda: model(example)

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class CpuBackend(Backend):
    """This machine's CPU with a fixed number of torch threads, timed by the wall clock."""

    kind = "cpu"

    def __init__(self, threads: int | None = None) -> None:
        if threads is not None and threads < 1:
            raise UserError(f"bad thread count {threads}: use 1 or more")
        self.threads = threads or torch.get_num_threads()
        self._saved_threads = torch.get_num_threads()

    def device_name(self) -> str:
        return cpu_name()

    def settings(self) -> dict[str, Any]:
        return {"threads": self.threads}

    def time_ms(self, fn: Callable[[], object], repeat: int) -> float:
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        return (time.perf_counter() - start) * 1e3

    def __enter__(self) -> CpuBackend:
        self._saved_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        return self

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self._saved_threads)


class _EventBackend(Backend):
    """Accelerators with torch.cuda-like APIs: timing by device events after a synchronize."""

    def __init__(
        self, api: ModuleType | Any, index: int, device: torch.device | str | None
    ) -> None:
        self.api = api
        self.index = index
        self.device = torch.device(device) if device is not None else torch.device(self.kind, index)

    def device_name(self) -> str:
        return str(self.api.get_device_name(self.index))

    def synchronize(self) -> None:
        self.api.synchronize()

    def time_ms(self, fn: Callable[[], object], repeat: int) -> float:
        start = self.api.Event(enable_timing=True)
        end = self.api.Event(enable_timing=True)
        self.api.synchronize()  # nothing queued before `start` may count
        start.record()
        for _ in range(repeat):
            fn()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end))

    def __enter__(self) -> _EventBackend:
        # Events record on the current device's stream: make the measured device current.
        self._saved_device = self.api.current_device()
        self.api.set_device(self.index)
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.set_device(self._saved_device)


class CudaBackend(_EventBackend):
    """An NVIDIA GPU, timed by CUDA events; optionally replays a captured CUDA graph."""

    kind = "cuda"

    def __init__(
        self,
        index: int = 0,
        cuda_graphs: bool = False,
        *,
        api: ModuleType | Any | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        api = torch.cuda if api is None else api
        if not api.is_available():
            raise UserError(
                "--hw cuda: torch sees no CUDA device (torch.cuda.is_available() is False); "
                "run on a machine with an NVIDIA GPU and a CUDA build of torch, or use --hw cpu"
            )
        _check_index("cuda", index, api.device_count())
        self.cuda_graphs = cuda_graphs
        super().__init__(api, index, device)

    def settings(self) -> dict[str, Any]:
        return {"device_index": self.index, "cuda_graphs": self.cuda_graphs}

    def runner(self, model: nn.Module, example: torch.Tensor) -> Callable[[], object]:
        if not self.cuda_graphs:
            return super().runner(model, example)
        # Capture after a few forwards on a side stream (CUDA graphs need warmed-up kernels and
        # allocator state); replaying then costs one launch instead of one per kernel.
        api = self.api
        side = api.Stream()
        side.wait_stream(api.current_stream())
        with api.stream(side):
            for _ in range(3):
                model(example)
        api.current_stream().wait_stream(side)
        graph = api.CUDAGraph()
        with api.graph(graph):
            model(example)
        return graph.replay


class NpuBackend(_EventBackend):
    """A Huawei Ascend NPU through torch_npu, with precompiled (binary) operators.

    Every call is public torch_npu API, checked against `torch_npu.npu.__all__` in
    Ascend/pytorch (commit 0037c39) and the PyTorch adapter 7.0.0 API reference: is_available,
    device_count, get_device_name, current_device, set_device, synchronize, Event(enable_timing=
    True).record/synchronize/elapsed_time, set_compile_mode(jit_compile=...), is_jit_compile_false.

    `set_compile_mode(jit_compile=False)` makes torch_npu use its shipped binary kernels;
    with online compilation the first calls of every new shape would compile operators and
    the timing would measure the compiler.
    """

    kind = "npu"

    def __init__(
        self,
        index: int = 0,
        *,
        api: ModuleType | Any | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if api is None:
            api = _import_torch_npu()
        if not api.is_available():
            raise UserError(
                "--hw npu: torch_npu is installed but sees no Ascend device "
                "(torch.npu.is_available() is False); check the driver and "
                "ASCEND_RT_VISIBLE_DEVICES, or use --hw ascend310 for a predicted latency"
            )
        _check_index("npu", index, api.device_count())
        super().__init__(api, index, device)

    def settings(self) -> dict[str, Any]:
        return {"device_index": self.index, "jit_compile": False}

    def __enter__(self) -> NpuBackend:
        super().__enter__()
        self._saved_binary = bool(self.api.is_jit_compile_false())
        self.api.set_compile_mode(jit_compile=False)
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.set_compile_mode(jit_compile=not self._saved_binary)
        super().__exit__(*exc)


def open_backend(hw: str, *, threads: int | None = None, cuda_graphs: bool = False) -> Backend:
    """The backend for 'cpu', 'cuda', 'cuda:N', 'npu' or 'npu:N'; UserError when unusable."""
    kind, _, index_text = hw.partition(":")
    if kind not in MEASURED_KINDS:
        raise UserError(f"cannot measure on {hw!r}: measured targets are cpu, cuda[:N] and npu[:N]")
    if cuda_graphs and kind != "cuda":
        raise UserError(f"CUDA graphs need --hw cuda, not {hw!r}")
    if kind == "cpu":
        if index_text:
            raise UserError(f"bad hardware {hw!r}: the CPU takes no index (use --threads N)")
        return CpuBackend(threads)
    if index_text and not index_text.isdigit():
        raise UserError(f"bad hardware {hw!r}: use {kind} or {kind}:N with N a device index")
    index = int(index_text or 0)
    if kind == "cuda":
        return CudaBackend(index, cuda_graphs)
    return NpuBackend(index)


def cpu_name() -> str:
    """The CPU model name (from /proc/cpuinfo on Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _check_index(kind: str, index: int, count: int) -> None:
    if index >= count:
        raise UserError(
            f"--hw {kind}:{index}: only {count} {kind} device(s) visible (indices 0..{count - 1})"
        )


def _import_torch_npu() -> Any:
    """torch.npu after importing torch_npu, or a UserError that says how to get it."""
    try:
        import torch_npu  # noqa: F401  (registers the torch.npu module and the 'npu' device)
    except ImportError as err:
        raise UserError(
            "--hw npu needs Huawei's torch_npu (the Ascend adapter for PyTorch, with CANN), "
            f"which is not importable here ({err}); use --hw ascend310 or ascend910 "
            "for a predicted latency"
        ) from None
    return torch.npu  # type: ignore[attr-defined]


def npu_available() -> bool:
    """Whether torch_npu is importable and sees an Ascend device (without raising)."""
    if importlib.util.find_spec("torch_npu") is None:
        return False
    try:
        return bool(_import_torch_npu().is_available())
    except (UserError, RuntimeError):
        return False

"""Predicted latency on Huawei Ascend NPUs: a roofline model of the Da Vinci AI core.

Used where no Ascend device is present (`--hw ascend310`, `ascend910`, and `ascend` without
torch_npu). Per aten op of one eval forward (see evaluators.op_trace):
- cube time: every matrix product padded to the 16x16x16 fractal; the output tiles of an op
  are shared out over the AI cores, each core runs ceil(K/16) fractal steps per tile;
- vector time: one element per vector lane and cycle for everything else (elementwise ops,
  norms, pooling, copies);
- memory time: every byte the op reads (weights included) and writes, at DRAM bandwidth;
- the op takes the largest of the three (roofline) plus a fixed launch overhead, and the
  network takes the sum of its ops. Nothing is fused and on-chip buffers are not modelled,
  so memory-bound layers are charged in full: a pessimistic, ranking-oriented estimate.

Sources of the constants (public; figures that are derived or assumed say so):
[HC31] H. Liao et al., "DaVinci: A Scalable Architecture for Neural Network Computing",
       Hot Chips 31 (2019). AnandTech's live blog of the talk
       (anandtech.com/show/14756/hot-chips-live-blogs-huawei-da-vinci-architecture):
       "Cube is 4096 FP16 MACs + 8192 INT8 MACs" per core; a summary of the slides
       (vengineer.hatenablog.com/entry/2019/09/06/070000): vector unit 2048 bits wide
       (INT8/FP16/FP32), i.e. 128 fp16 lanes.
[310]  HiSilicon, "Huawei Launches ... Ascend 310" (10 Oct 2018, hisilicon.com Media Center):
       16 TOPS int8, 8 TOPS fp16, 8 W; chinaaet.com/article/3000091430 (2018): 4096 MACs per
       AI core and cycle; "解密昇腾AI处理器--Ascend310简介" (mzph.cn/news/252558.shtml): 2 AI Cores
       (Da Vinci), 8 Arm A55 cores, LPDDR4 main memory.
[910]  Linley Group newsletter "Huawei Delivers Powerful AI Training" (8 Oct 2019): 32 Da Vinci
       cores, 256 fp16 TFLOPS, 32 MB L2, four HBM2 stacks; "Inside Huawei's Ascend AI
       Processor" (besthub.dev): four HBM chiplets, 1.2 TB/s in total.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from torch import nn

from evaluators.flops import batched_shape
from evaluators.latency.result import LatencyResult, LayerLatency
from evaluators.matrix_efficiency import efficiency_of_ops
from evaluators.op_trace import OpRecord, record_ops


@dataclass(frozen=True)
class AscendProfile:
    """The constants of one Ascend chip that the model uses."""

    name: str
    description: str
    cores: int
    clock_hz: float
    memory_bytes_per_s: float
    launch_overhead_s: float
    fractal: int = 16  # cube: 16x16x16 fp16 multiply-adds per cycle per core [HC31]
    vector_lanes: int = 128  # 2048-bit vector unit = 128 fp16 lanes per cycle per core [HC31]
    bytes_per_element: int = 2  # fp16, the cube's input type

    @property
    def peak_macs_per_s(self) -> float:
        """Cube peak: fractal^3 multiply-adds per cycle on every core."""
        return self.fractal**3 * self.cores * self.clock_hz


ASCEND310 = AscendProfile(
    name="ascend310",
    description="Huawei Ascend 310 (analytic Da Vinci model)",
    cores=2,  # [310]
    # Derived: 8 TOPS fp16 [310] / (2 cores * 4096 MACs) = 0.98 GHz, if Huawei counts a
    # multiply-add as one operation for the 310 (its int8 figure, 16 TOPS from 8192 int8 MACs
    # per core [HC31], says it does).
    clock_hz=1.0e9,
    # Assumption: LPDDR4X at about 47.7 GB/s; not confirmed by a public source we could find.
    memory_bytes_per_s=47.7e9,
    # Assumption: a few microseconds to issue an operator on the AI core (task scheduler and
    # pipeline fill); not published, to be calibrated against a device.
    launch_overhead_s=3e-6,
)

ASCEND910 = AscendProfile(
    name="ascend910",
    description="Huawei Ascend 910 (analytic Da Vinci model)",
    cores=32,  # [910]
    # Derived: 256 TFLOPS fp16 [910] / (32 cores * 4096 MACs * 2 FLOPs per MAC) = 0.98 GHz.
    clock_hz=1.0e9,
    memory_bytes_per_s=1.2e12,  # HBM2, four stacks [910]
    launch_overhead_s=3e-6,  # assumption, as for the 310
)

PROFILES = {profile.name: profile for profile in (ASCEND310, ASCEND910)}
DEFAULT_PROFILE = ASCEND310  # what `--hw ascend` predicts for


@dataclass(frozen=True)
class OpTime:
    """Predicted time of one op and its three bounds, in seconds."""

    op: str
    module: str
    cube_s: float
    vector_s: float
    memory_s: float
    launch_s: float

    @property
    def time_s(self) -> float:
        """Roofline: the slowest unit bounds the op; launch overhead comes on top."""
        return max(self.cube_s, self.vector_s, self.memory_s) + self.launch_s

    @property
    def bound(self) -> str:
        """Which of cube, vector or memory bounds the op ('launch' when none takes longer)."""
        work = {"cube": self.cube_s, "vector": self.vector_s, "memory": self.memory_s}
        name = max(work, key=work.__getitem__)
        return name if work[name] > self.launch_s else "launch"


def op_times(ops: Iterable[OpRecord], profile: AscendProfile = DEFAULT_PROFILE) -> list[OpTime]:
    """The model's time for each recorded op."""
    times = []
    for op in ops:
        cube_cycles = 0
        for gemm in op.gemms:
            tiles = _blocks(gemm.m, profile.fractal) * _blocks(gemm.n, profile.fractal) * gemm.count
            cube_cycles += math.ceil(tiles / profile.cores) * _blocks(gemm.k, profile.fractal)
        vector_elements = 0 if op.gemms else max(op.read, op.written)
        times.append(
            OpTime(
                op=op.op,
                module=op.module,
                cube_s=cube_cycles / profile.clock_hz,
                vector_s=vector_elements
                / (profile.vector_lanes * profile.cores * profile.clock_hz),
                memory_s=(op.read + op.written)
                * profile.bytes_per_element
                / profile.memory_bytes_per_s,
                launch_s=profile.launch_overhead_s,
            )
        )
    return times


def predict_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    profile: AscendProfile = DEFAULT_PROFILE,
    batch: int = 1,
    hw: str | None = None,
) -> LatencyResult:
    """Predicted fp16 latency of one eval forward on `profile`'s chip, with a per-layer breakdown."""
    shape = batched_shape(input_shape, batch)
    ops = record_ops(model, shape)
    times = op_times(ops, profile)
    total_ms = sum(t.time_s for t in times) * 1e3
    return LatencyResult(
        median_ms=total_ms,
        spread=0.0,
        iqr_ms=0.0,
        runs=0,
        hw=hw or profile.name,
        device=profile.description,
        source="predicted",
        batch=shape[0],
        dtype="fp16",
        settings={
            "model": "roofline per aten op (evaluators/latency/ascend.py)",
            **asdict(profile),
            "ops": len(times),
            "cube_ms": sum(t.cube_s for t in times) * 1e3,
            "vector_ms": sum(t.vector_s for t in times) * 1e3,
            "memory_ms": sum(t.memory_s for t in times) * 1e3,
            "launch_ms": sum(t.launch_s for t in times) * 1e3,
            "matrix_efficiency": efficiency_of_ops(ops, profile.fractal).total,
        },
        breakdown=tuple(breakdown(times)),
    )


def breakdown(times: Iterable[OpTime]) -> list[LayerLatency]:
    """Per-module totals in execution order; each module's bound is its costliest op's."""
    totals: dict[str, float] = {}
    worst: dict[str, OpTime] = {}
    for t in times:
        totals[t.module] = totals.get(t.module, 0.0) + t.time_s
        if t.module not in worst or t.time_s > worst[t.module].time_s:
            worst[t.module] = t
    return [LayerLatency(name or "(top)", s * 1e3, worst[name].bound) for name, s in totals.items()]


def _blocks(length: int, fractal: int) -> int:
    return -(-length // fractal)

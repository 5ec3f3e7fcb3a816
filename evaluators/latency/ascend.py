"""Predicted latency on Huawei Ascend NPUs: the Da Vinci AI core running fused operators.

Used where no Ascend device is present (`--hw ascend310`, `ascend910`, and `ascend` without
torch_npu). One eval forward is recorded op by op (evaluators.op_trace, NeoCells in their tiled
form), grouped into the fused operators the graph compiler builds and given the DRAM traffic
left after the on-chip buffers (evaluators.latency.fusion). Per fused operator:
- cube time: every product padded to the 16x16x16 fractal; output fractals are shared out over
  the AI cores, each runs ceil(K/16) fractal steps per output fractal; divided by the cube
  efficiency (pipeline bubbles, fractal format conversion: fitted, see below);
- vector time: element-passes of the fused epilogue or vector op over 128 fp16 lanes per core;
- memory time: DRAM elements x 2 bytes at the effective DRAM bandwidth (fitted);
- the three pipelines (cube, vector, MTE data movement) overlap within an operator, so it takes
  the longest of the three, plus a fixed launch/scheduling overhead per fused operator (fitted).
The network takes the sum of its operators. The breakdown charges each operator's time to
the unit that bounds it (cube, vector or memory) and its overhead to "overhead", so the four
parts add up to the total.

Sources of the fixed constants (public; derived figures say how):
[HC31] H. Liao et al., "DaVinci: A Scalable Architecture for Neural Network Computing", Hot Chips
       31 (2019), slides and AnandTech's live blog (anandtech.com/show/14756): cube of 4096 fp16
       MACs per core and cycle (16x16x16), vector unit 2048 bits (128 fp16 lanes).
[CANN] CANN's per-chip platform files `platform_config/<chip>.ini` (the op compiler's buffer
       sizes), as quoted in public code: Ascend910A `ai_core_cnt=32`, `l2_size=33554432`,
       `l0_a_size=65536`, `l0_b_size=65536`, `l0_c_size=262144`, `l1_size=1048576`; Ascend310
       (a CANN unit-test fixture of `Ascend310.ini`) `aiCoreCnt=2`, `l2Size=8388608`, the same
       L0A/L0B/L0C/L1 sizes and `ubSize=253952`. Ascend C docs (hiascend.com, "Storage Units"):
       L0A/L0B hold cube inputs, L0C its outputs, the unified buffer vector operands.
[310]  HiSilicon, "Huawei Launches ... Ascend 310" (hisilicon.com Media Center, 10 Oct 2018):
       16 TOPS int8, 8 TOPS fp16, 8 W; LPDDR4X main memory (Atlas 200 DK specifications).
[910]  Linley Group, "Huawei Delivers Powerful AI Training" (8 Oct 2019): 32 Da Vinci cores,
       256 TFLOPS fp16, 32 MB L2, four HBM2 stacks, 1.2 TB/s in total.
Fitted constants (cube efficiency, DRAM efficiency, overhead per operator) come from
`benchmarks/ascend_calibration.py` on the "fit" half of evaluators/latency/data/
ascend_measurements.yaml; the other half is held out (figures in docs/hardware.md).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from torch import nn

from evaluators.flops import batched_shape
from evaluators.latency.fusion import FusedOp, fuse, memory_traffic
from evaluators.latency.result import LATENCY_PARTS, LatencyResult, LayerLatency
from evaluators.matrix_efficiency import efficiency_of_ops
from evaluators.op_trace import OpRecord, record_ops

KB = 1024
MB = 1024 * KB
BREAKDOWN = LATENCY_PARTS


@dataclass(frozen=True)
class AscendProfile:
    """The constants of one Ascend chip: published ones, then fitted ones."""

    name: str
    description: str
    cores: int
    clock_hz: float
    dram_bytes_per_s: float  # published peak
    l2_bytes: int
    l1_bytes: int = 1 * MB  # per core [CANN]
    l0a_bytes: int = 64 * KB  # per core [CANN]: operand A of the cube
    l0b_bytes: int = 64 * KB  # per core [CANN]: operand B of the cube
    l0c_bytes: int = 256 * KB  # per core [CANN]: cube accumulators
    ub_bytes: int = 248 * KB  # per core [CANN] (Ascend310 ubSize): vector unit operands
    fractal: int = 16  # cube: 16x16x16 fp16 multiply-adds per cycle per core [HC31]
    vector_lanes: int = 128  # 2048-bit vector unit = 128 fp16 lanes per cycle per core [HC31]
    bytes_per_element: int = 2  # fp16, the cube's input type
    # Fitted (benchmarks/ascend_calibration.py): no public document gives these.
    cube_efficiency: float = 1.0  # achieved / peak cube throughput
    dram_efficiency: float = 1.0  # achieved / peak DRAM bandwidth
    overhead_s: float = 0.0  # launch + scheduling per fused operator

    @property
    def peak_macs_per_s(self) -> float:
        """Cube peak: fractal^3 multiply-adds per cycle on every core."""
        return self.fractal**3 * self.cores * self.clock_hz

    @property
    def memory_bytes_per_s(self) -> float:
        """Effective DRAM bandwidth: the published peak times the fitted efficiency."""
        return self.dram_bytes_per_s * self.dram_efficiency


ASCEND310 = AscendProfile(
    name="ascend310",
    description="Huawei Ascend 310 (Da Vinci model: fusion, L2, tiled NeoCell)",
    cores=2,  # [CANN]
    # Derived: 8 TFLOPS fp16 [310] / (2 cores * 4096 MACs) = 0.98 GHz, counting a multiply-add
    # as one operation as Huawei does for the 310 (16 TOPS int8 from 8192 int8 MACs per core).
    clock_hz=1.0e9,
    dram_bytes_per_s=47.7e9,  # LPDDR4X-3733 x 128 bit; Atlas 200 DK spec gives LPDDR4X [310]
    l2_bytes=8 * MB,  # [CANN]
    # Fitted on the 310 "fit" rows (benchmarks/ascend_calibration.py).
    cube_efficiency=0.4525,
    dram_efficiency=0.6856,
    overhead_s=19.85e-6,
)

ASCEND910 = AscendProfile(
    name="ascend910",
    description="Huawei Ascend 910 (Da Vinci model: fusion, L2, tiled NeoCell)",
    cores=32,  # [CANN], [910]
    # Derived: 256 TFLOPS fp16 [910] / (32 cores * 4096 MACs * 2 FLOPs per MAC) = 0.98 GHz.
    clock_hz=1.0e9,
    dram_bytes_per_s=1.2e12,  # HBM2, four stacks [910]
    l2_bytes=32 * MB,  # [CANN], [910]
    # Fitted on the 910 "fit" rows (training steps); the overhead is the 310's (see calibration).
    cube_efficiency=0.2385,
    dram_efficiency=0.1513,
    overhead_s=19.85e-6,
)

PROFILES = {profile.name: profile for profile in (ASCEND310, ASCEND910)}
DEFAULT_PROFILE = ASCEND310  # what `--hw ascend` predicts for


@dataclass(frozen=True)
class OpTime:
    """Predicted time of one fused operator: the busy time of each pipeline, in seconds."""

    op: str
    module: str
    cube_s: float
    vector_s: float
    memory_s: float
    launch_s: float

    @property
    def time_s(self) -> float:
        """Cube, vector and data movement overlap: the slowest bounds the op; launch on top."""
        return max(self.cube_s, self.vector_s, self.memory_s) + self.launch_s

    @property
    def bound(self) -> str:
        """Which of cube, vector or memory bounds the op ('overhead' when none takes longer)."""
        work = {"cube": self.cube_s, "vector": self.vector_s, "memory": self.memory_s}
        name = max(work, key=work.__getitem__)
        return name if work[name] > self.launch_s else "overhead"


def cube_cycles(gemms: Iterable, profile: AscendProfile) -> int:
    """Cycles of the cube at peak: output fractals over cores, K fractal steps each."""
    cycles = 0
    for gemm in gemms:
        tiles = _blocks(gemm.m, profile.fractal) * _blocks(gemm.n, profile.fractal) * gemm.count
        cycles += math.ceil(tiles / profile.cores) * _blocks(gemm.k, profile.fractal)
    return cycles


def fused_ops(ops: Sequence[OpRecord], profile: AscendProfile) -> list[FusedOp]:
    """The recorded ops as fused operators with their DRAM traffic on `profile`'s buffers."""
    fused = fuse(ops)
    last = ops[-1].outputs[0].key if ops and ops[-1].outputs else None
    size = profile.bytes_per_element
    memory_traffic(
        fused, profile.l2_bytes / size, profile.cores * profile.l1_bytes / 2 / size, last
    )
    return fused


def op_times(fused: Iterable[FusedOp], profile: AscendProfile = DEFAULT_PROFILE) -> list[OpTime]:
    """The model's time for each fused operator."""
    lanes = profile.vector_lanes * profile.cores * profile.clock_hz
    return [
        OpTime(
            op=op.name,
            module=op.module,
            cube_s=cube_cycles(op.gemms, profile) / (profile.clock_hz * profile.cube_efficiency),
            vector_s=op.vector_elements / lanes,
            memory_s=op.dram_elements * profile.bytes_per_element / profile.memory_bytes_per_s,
            launch_s=profile.overhead_s,
        )
        for op in fused
    ]


def attribute(times: Iterable[OpTime]) -> dict[str, float]:
    """Seconds per breakdown part: each op's time goes to its bound, its overhead to 'overhead'."""
    parts = dict.fromkeys(BREAKDOWN, 0.0)
    for t in times:
        parts["overhead"] += t.launch_s
        work = {"cube": t.cube_s, "vector": t.vector_s, "memory": t.memory_s}
        name = max(work, key=work.__getitem__)
        parts[name] += work[name]
    return parts


def predict_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    profile: AscendProfile = DEFAULT_PROFILE,
    batch: int = 1,
    hw: str | None = None,
) -> LatencyResult:
    """Predicted fp16 latency of one eval forward on `profile`'s chip, with its breakdown."""
    shape = batched_shape(input_shape, batch)
    ops = record_ops(model, shape)
    return latency_of_ops(ops, profile, shape[0], hw)


def latency_of_ops(
    ops: Sequence[OpRecord], profile: AscendProfile, batch: int, hw: str | None = None
) -> LatencyResult:
    """The prediction for an already recorded forward (calibration re-times one recording)."""
    fused = fused_ops(ops, profile)
    times = op_times(fused, profile)
    parts = attribute(times)
    total_ms = sum(t.time_s for t in times) * 1e3
    return LatencyResult(
        median_ms=total_ms,
        spread=0.0,
        iqr_ms=0.0,
        runs=0,
        hw=hw or profile.name,
        device=profile.description,
        source="predicted",
        batch=batch,
        dtype="fp16",
        settings={
            "model": "fused operators, L2, overlapped pipelines (evaluators/latency/ascend.py)",
            **dataclasses.asdict(profile),
            "aten_ops": len(ops),
            "fused_ops": len(times),
            **{f"{name}_ms": seconds * 1e3 for name, seconds in parts.items()},
            "cube_busy_ms": sum(t.cube_s for t in times) * 1e3,
            "vector_busy_ms": sum(t.vector_s for t in times) * 1e3,
            "memory_busy_ms": sum(t.memory_s for t in times) * 1e3,
            "dram_mb": sum(op.dram_elements for op in fused) * profile.bytes_per_element / 1e6,
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

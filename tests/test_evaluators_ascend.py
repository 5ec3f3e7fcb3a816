"""The Ascend model: fractal padding, fusion, on-chip buffers, overlap, the tiled NeoCell."""

import dataclasses

import pytest
import timm
from torch import nn

from evaluators.latency.ascend import (
    ASCEND310,
    ASCEND910,
    BREAKDOWN,
    AscendProfile,
    OpTime,
    breakdown,
    fused_ops,
    op_times,
    predict_latency,
)
from evaluators.latency.fusion import fuse
from evaluators.matrix_efficiency import matrix_efficiency
from evaluators.op_trace import Gemm, OpRecord, TensorUse, record_ops
from neonas.ops import CellGroup, NeoCell

# One core at 1 GHz, 1 byte/ns of memory, no overhead, no L2: times read as cycles / bytes.
UNIT = AscendProfile(
    name="unit",
    description="test chip",
    cores=1,
    clock_hz=1e9,
    dram_bytes_per_s=1e9,
    l2_bytes=0,
    cube_efficiency=1.0,
    dram_efficiency=1.0,
    overhead_s=0.0,
)
# The same chip with memory so fast that a NeoCell is bound by its cube.
CUBE_BOUND = dataclasses.replace(UNIT, dram_bytes_per_s=1e18)


def matmul(m: int, k: int, n: int, count: int = 1) -> OpRecord:
    return OpRecord("mm", "layer", (Gemm(m, k, n, count),))


def cycles(op: OpRecord, profile: AscendProfile = UNIT) -> float:
    return op_times(fused_ops([op], profile), profile)[0].cube_s * profile.clock_hz


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


def test_conv_bn_relu_and_residual_add_are_one_fused_operator() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn, self.act = (
                nn.Conv2d(8, 8, 3, padding=1),
                nn.BatchNorm2d(8),
                nn.ReLU(),
            )

        def forward(self, x):  # noqa: ANN001, ANN202
            return self.act(self.bn(self.conv(x)) + x)

    ops = record_ops(Block(), (1, 8, 8, 8))
    fused = fuse(ops)
    assert [op.op for op in ops] == ["convolution", "native_batch_norm", "add", "relu"]
    assert [f.name for f in fused] == ["convolution+native_batch_norm+add+relu"]
    # Only the block input (read twice, loaded once), weights and the final output touch DRAM.
    (block,) = fused_ops(ops, UNIT)
    weights = 8 * 8 * 9 + 8 + 4 * 8  # conv weight and bias, BN's four vectors
    assert block.dram_elements == 512 + weights + 512


def test_an_elementwise_op_on_another_branch_does_not_join() -> None:
    a = TensorUse(0, 10)
    conv = OpRecord("convolution", "c", (Gemm(1, 1, 1),), (a,), (TensorUse(1, 10),))
    other = OpRecord("relu", "r", (), (TensorUse(7, 10),), (TensorUse(8, 10),))
    assert len(fuse([conv, other])) == 2


def test_layer_norm_and_softmax_are_vector_operators_of_their_own() -> None:
    model = nn.Sequential(nn.Linear(16, 16), nn.LayerNorm(16), nn.Softmax(-1))
    fused = fuse(record_ops(model, (4, 16)))
    assert [f.name.split("+")[0] for f in fused] == ["addmm", "native_layer_norm", "_softmax"]


def test_an_activation_that_fits_the_l2_is_not_read_back_from_dram() -> None:
    model = nn.Sequential(nn.Conv2d(4, 4, 1), nn.LayerNorm(8))  # two operators
    ops = record_ops(model, (1, 4, 8, 8))
    with_l2 = dataclasses.replace(UNIT, l2_bytes=1 << 20)
    first, second = fused_ops(ops, with_l2)
    assert second.l2_elements == 256 and second.dram_elements == 8 + 8 + 256  # LN weights, output
    cold = fused_ops(ops, UNIT)  # no L2: written by the conv, read back by the norm
    assert cold[0].dram_elements == first.dram_elements + 256
    assert cold[1].dram_elements == second.dram_elements + 256


def test_pipelines_overlap_so_an_op_takes_its_slowest_unit_plus_overhead() -> None:
    profile = dataclasses.replace(UNIT, overhead_s=1e-6)
    copy = OpRecord("cat", "layer", (), (TensorUse(0, 4000),), (TensorUse(1, 4000),))
    (time,) = op_times(fused_ops([copy], profile), profile)
    assert time.memory_s == pytest.approx(16e-6)  # 8000 elements, fp16, 1 GB/s
    assert time.vector_s == pytest.approx(4000 / 128 / 1e9)
    assert time.time_s == pytest.approx(16e-6 + 1e-6)  # max, not sum
    assert time.bound == "memory"


def test_breakdown_parts_add_up_to_the_prediction() -> None:
    model = nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32 * 6 * 6, 10))
    result = predict_latency(model, (3, 8, 8), ASCEND310, batch=2)
    assert result.source == "predicted" and result.dtype == "fp16" and result.batch == 2
    parts = [result.settings[f"{name}_ms"] for name in BREAKDOWN]
    assert sum(parts) == pytest.approx(result.median_ms)
    assert result.settings["fused_ops"] == 2  # conv+relu, linear
    assert result.settings["overhead_ms"] == pytest.approx(2 * ASCEND310.overhead_s * 1e3)
    assert sum(row.ms for row in result.breakdown) == pytest.approx(result.median_ms)


def test_a_module_is_bound_by_its_costliest_op_in_either_order() -> None:
    # A block whose big matmul is cube-bound and whose small copy is memory-bound is cube-bound
    # (a minimum would name the copy). Ops of another module keep their own rows, in order.
    matmul_op = OpTime("mm", "block", cube_s=5e-6, vector_s=1e-6, memory_s=2e-6, launch_s=0.0)
    copy_op = OpTime("cat", "block", cube_s=0.0, vector_s=1e-7, memory_s=1e-6, launch_s=0.0)
    head = OpTime("mm", "head", cube_s=1e-7, vector_s=0.0, memory_s=3e-7, launch_s=0.0)
    for ops in ([matmul_op, copy_op, head], [copy_op, matmul_op, head]):
        rows = breakdown(ops)
        assert [(row.name, row.bound) for row in rows] == [("block", "cube"), ("head", "memory")]
        assert rows[0].ms == pytest.approx(6e-3)


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
    assert (ASCEND310.l2_bytes, ASCEND910.l2_bytes) == (8 << 20, 32 << 20)


# The NeoCell as the cube runs it. Expected values are computed here from the tile rule
# (T = k * (16 // k) rows per tile, whole tiles; a shift s puts k - s zero rows in front) and
# the cube formula (one core: ceil(m/16) * ceil(n/16) * count output fractals, ceil(k/16)
# steps each), independently of evaluators/tiled_neocell.py.


def neocell_cycles(cell: NeoCell, size: int) -> float:
    result = predict_latency(nn.Sequential(cell), (cell.channels, size, size), CUBE_BOUND)
    return round(result.median_ms * 1e-3 * CUBE_BOUND.clock_hz, 6)


def patches_on_56(block: int, shifted: bool) -> int:
    return -(-(56 + (block - 1 if shifted else 0)) // block)  # shift 1..k-1: same count here


def tiles_on_56(block: int, shifted: bool) -> int:
    return -(-patches_on_56(block, shifted) // (16 // block))


def per_channel_cycles(block: int, shifted: bool = False) -> int:
    # every tile has <= 16 rows: one fractal row and one K step; the other side of each product
    # spans all tiles of the other axis, tiles * T columns; both axes alike
    tiles = tiles_on_56(block, shifted)
    columns = tiles * block * (16 // block)
    return 2 * tiles * -(-columns // 16)


def efficiency(block: int, shifted: bool = False) -> tuple[int, int]:
    """(useful, padded) multiply-adds of one channel along one axis."""
    patches, tiles = patches_on_56(block, shifted), tiles_on_56(block, shifted)
    columns = tiles * block * (16 // block)
    return patches * block * block * patches * block, tiles * 256 * -(-columns // 16) * 16


def test_matrix_size_changes_latency_and_efficiency_by_the_tile_formula() -> None:
    seven, nine = NeoCell(16, 7), NeoCell(16, 9)
    assert neocell_cycles(seven, 56) == 16 * 2 * 4 * 4  # 4 tiles of 14 rows, 56 -> 4 fractals
    assert neocell_cycles(nine, 56) == 16 * 2 * 7 * 4  # 7 tiles of 9 rows, 63 -> 4 fractals
    assert neocell_cycles(nine, 56) - neocell_cycles(seven, 56) == 16 * 2 * (7 - 4) * 4
    for cell, block in ((seven, 7), (nine, 9)):
        useful, padded = efficiency(block)
        assert matrix_efficiency(cell, (1, 16, 56, 56)) == pytest.approx(useful / padded)
    assert matrix_efficiency(nine, (1, 16, 56, 56)) < matrix_efficiency(seven, (1, 16, 56, 56))


def test_channel_split_changes_latency_by_the_channels_moved() -> None:
    def cell(share: float) -> NeoCell:
        return NeoCell(16, [CellGroup(7, share=share), CellGroup(9, share=1 - share)])

    even, mostly_seven = cell(0.5), cell(0.75)
    assert neocell_cycles(even, 56) == 8 * per_channel_cycles(7) + 8 * per_channel_cycles(9)
    # four channels move from 9x9 to 7x7 matrices
    delta = 4 * (per_channel_cycles(9) - per_channel_cycles(7))
    assert delta > 0
    assert neocell_cycles(even, 56) - neocell_cycles(mostly_seven, 56) == delta
    assert matrix_efficiency(mostly_seven, (1, 16, 56, 56)) > matrix_efficiency(
        even, (1, 16, 56, 56)
    )


def test_shifts_cost_their_corner_tiles() -> None:
    plain, shifted = NeoCell(16, CellGroup(7)), NeoCell(16, CellGroup(7, shift=True))
    # 16 channels in 7 shift subgroups of 2, 2, 2, 2, 2, 2, 4: shift 0 (2 channels) costs
    # nothing extra; every other channel pads 56 to 57..62 rows: 9 patches, a fifth tile
    assert per_channel_cycles(7, shifted=True) == 2 * 5 * 5
    expected = 2 * per_channel_cycles(7) + 14 * per_channel_cycles(7, shifted=True)
    assert neocell_cycles(shifted, 56) == expected
    assert neocell_cycles(shifted, 56) - neocell_cycles(plain, 56) == 14 * (50 - 32)
    (plain_useful, plain_padded), (shift_useful, shift_padded) = efficiency(7), efficiency(7, True)
    assert matrix_efficiency(shifted, (1, 16, 56, 56)) == pytest.approx(
        (2 * plain_useful + 14 * shift_useful) / (2 * plain_padded + 14 * shift_padded)
    )
    assert matrix_efficiency(shifted, (1, 16, 56, 56)) < matrix_efficiency(plain, (1, 16, 56, 56))


def test_the_products_multiply_what_the_tiled_operator_executes() -> None:
    from evaluators.tiled_neocell import tiled_products

    cells = [
        NeoCell(24, [CellGroup(7, share=0.5), CellGroup(4, share=0.5, shift=True)]),
        NeoCell(8, CellGroup((3, 5), out=(2, 4))),
    ]
    for cell in cells:
        products = tiled_products(cell, 13, 17, batch=2)
        assert sum(p.m * p.k * p.n * p.count for p in products) == 2 * cell.macs(13, 17, "tiled")
        assert sum(p.useful for p in products) == 2 * cell.macs(13, 17, "patch")


def test_metrics_carry_the_breakdown_of_a_predicted_latency() -> None:
    from evaluators.metrics import compute_metrics

    names = ["latency_ms", "latency_cube_ms", "latency_vector_ms", "latency_memory_ms"]
    names.append("latency_overhead_ms")
    values = compute_metrics(nn.Sequential(NeoCell(16, 7)), (16, 56, 56), names, "ascend310")
    assert len(values) == 5
    assert sum(values[name] for name in names[1:]) == pytest.approx(values["latency_ms"])
    assert values["latency_memory_ms"] > 0 and values["latency_overhead_ms"] > 0


def test_a_search_trial_records_latency_parts_and_tiled_matrix_efficiency(monkeypatch) -> None:
    import neonas.search.trial as trial
    from neonas.models import build_model
    from neonas.models.family import neonext_config
    from neonas.search.settings import EvalSettings
    from neonas.search.trial import score_candidate

    # The accuracy signal is not under test here (its first call can take a minute on 2 cores).
    monkeypatch.setattr(trial, "zero_cost_signal", lambda *_, **__: {"accuracy": 1.0})

    config = neonext_config("t", (1, 1), (16, 32), drop_path_rate=0.0, input_size=64)
    reports = []
    score_candidate(config, EvalSettings(hw="ascend310", proxy_batch=2), reports.append)
    (metrics,) = reports
    parts = [metrics[f"latency_{part}_ms"] for part in BREAKDOWN]
    assert len(parts) == 4 and sum(parts) == pytest.approx(metrics["latency_ms"])
    model = build_model(config)
    assert metrics["matrix_efficiency"] == pytest.approx(matrix_efficiency(model, (3, 64, 64)))
    assert metrics["matrix_efficiency"] < 1.0  # the NeoCells' tile zeros are waste


def test_measurements_file_cites_a_source_for_every_figure() -> None:
    from evaluators.latency.calibration import load_measurements

    rows = load_measurements()
    assert len(rows) == 43
    assert all(row.source.startswith("https://") and row.page for row in rows)
    for chip in ("ascend310", "ascend910"):
        splits = {row.split for row in rows if row.chip == chip}
        assert splits == {"fit", "holdout"}  # every chip has figures the fit never sees
    # a network is never in both halves of one chip's rows
    for chip in ("ascend310", "ascend910"):
        fit = {row.network for row in rows if row.chip == chip and row.split == "fit"}
        held = {row.network for row in rows if row.chip == chip and row.split == "holdout"}
        assert not fit & held


@pytest.mark.slow  # builds and records 26 standard networks, fits twice: about 1.5 minutes
def test_shipped_profiles_hold_the_constants_the_calibration_fits() -> None:
    from evaluators.latency.calibration import FITTED, calibrate

    reports = calibrate()
    for chip, profile in (("ascend310", ASCEND310), ("ascend910", ASCEND910)):
        for name in FITTED:
            assert getattr(profile, name) == pytest.approx(
                getattr(reports[chip].profile, name), rel=0.01
            )
        assert reports[chip].summary(reports[chip].holdout)["spearman"] > 0.8


def test_the_predicted_target_folds_a_weightless_copy_and_predicts_the_same() -> None:
    from evaluators import get_hw
    from evaluators.hardware import inference_form
    from evaluators.op_trace import meta_copy

    model = timm.create_model("neonext_tiny", num_classes=10).eval()
    copy = meta_copy(model)
    assert all(p.device.type == "meta" for p in copy.parameters())
    assert all(p.device.type == "cpu" for p in model.parameters())  # the original is untouched
    direct = predict_latency(inference_form(model), (3, 64, 64), ASCEND310).median_ms
    assert get_hw("ascend310").latency(model, (3, 64, 64)).median_ms == pytest.approx(direct)

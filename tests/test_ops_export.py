"""Specification of NeoCell under tracing: jit.trace, fvcore counts, ONNX export and BN folding."""

import numpy as np
import pytest
import torch
from torch import nn

from neonas.errors import UserError
from neonas.ops import CellGroup, NeoCell, export_onnx, flop_handles, fold_batchnorm
from neonas.ops.flops import neocell_macs, use_impl

STAGE = [CellGroup(4, share=0.5, shift=True), CellGroup(7, share=0.5, shift=True)]


def trained_like(cell: NeoCell, seed: int = 0) -> NeoCell:
    """Random matrices and biases, so that a wrong index or a missing shift shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * 0.3)
    return cell


def fvcore_total(model: nn.Module, x: torch.Tensor) -> int:
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, x).set_op_handle(**flop_handles())
    return analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).total()


@pytest.mark.parametrize("batch", [1, 4])
def test_fvcore_counts_the_dense_products_per_sample_times_batch(batch):
    cell = NeoCell(24, STAGE, bias=True).eval()
    x = torch.randn(batch, 24, 14, 14)
    expected = batch * (24 * (14 * 14 * 14 + 14 * 14 * 14))  # C (H' H W + H' W W')
    assert fvcore_total(cell, x) == expected == batch * cell.macs(14, 14)


@pytest.mark.parametrize("batch", [1, 4])
def test_fvcore_counts_a_down_sampling_cell(batch):
    cell = NeoCell(8, CellGroup(2, out=1)).eval()
    x = torch.randn(batch, 8, 7, 9)
    assert fvcore_total(cell, x) == batch * 8 * (4 * 7 * 9 + 4 * 9 * 5)


@pytest.mark.parametrize("batch", [1, 4])
def test_fvcore_counts_the_patch_form_as_executed(batch):
    cell = NeoCell(24, STAGE).eval()
    x = torch.randn(batch, 24, 56, 56)
    with use_impl(cell, "patch"):
        assert fvcore_total(cell, x) == batch * cell.macs(56, 56, form="patch")
    unshifted = NeoCell(24, [CellGroup(4, share=0.5), CellGroup(7, share=0.5)])
    assert unshifted.macs(56, 56, "patch") == 2 * 24 * 56 * 56 * (4 + 7) // 2  # 2 C H W k


@pytest.mark.parametrize("batch", [1, 4])
def test_fvcore_counts_the_tiled_form_as_executed(batch):
    cell = NeoCell(24, STAGE, impl="tiled").eval()
    x = torch.randn(batch, 24, 28, 28)
    assert fvcore_total(cell, x) == batch * cell.macs(28, 28, form="tiled")
    down = NeoCell(8, CellGroup(2, out=1), impl="tiled", tile=8).eval()
    assert fvcore_total(down, torch.randn(batch, 8, 14, 9)) == batch * down.macs(14, 9, "tiled")


def test_neocell_macs_sums_the_cells_of_a_model():
    model = nn.Sequential(NeoCell(8, STAGE), nn.Conv2d(8, 8, 1), NeoCell(8, CellGroup(2, out=1)))
    x = torch.randn(3, 8, 14, 14)
    assert neocell_macs(model, x) == 3 * (model[0].macs(14, 14) + model[2].macs(14, 14))
    for form in ("patch", "tiled"):
        assert neocell_macs(model, x, form) == 3 * (
            model[0].macs(14, 14, form) + model[2].macs(14, 14, form)
        )


def test_jit_trace_reproduces_the_module_and_keeps_the_batch_dynamic():
    cell = trained_like(NeoCell(16, STAGE, bias=True)).eval()
    traced = torch.jit.trace(cell, torch.randn(2, 16, 14, 14))
    x = torch.randn(5, 16, 14, 14)
    torch.testing.assert_close(traced(x), cell(x))


def test_auto_traces_as_the_dense_form():
    cell = NeoCell(8, 4).eval()
    traced = torch.jit.trace(cell, torch.randn(1, 8, 8, 8))
    kinds = [node.kind() for node in traced.inlined_graph.nodes()]
    assert kinds.count("aten::bmm") == 2 and "aten::roll" not in kinds


@pytest.mark.parametrize(
    "cell",
    [
        NeoCell(16, STAGE, bias=True),
        NeoCell(16, CellGroup(2, out=1), bias=True),
        NeoCell(16, CellGroup(3, out=2)),
        NeoCell(16, STAGE, bias=True, impl="tiled"),
        NeoCell(16, CellGroup(3, out=2), impl="tiled", tile=8),
    ],
    ids=["stage", "down", "fractional", "tiled-stage", "tiled-fractional"],
)
def test_onnx_export_runs_in_onnxruntime_with_the_same_outputs(cell, tmp_path):
    import onnxruntime

    cell = trained_like(cell).eval()
    path = tmp_path / "cell.onnx"
    export_onnx(cell, torch.randn(2, 16, 14, 14), path)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 16, 14, 14)  # another batch size than the example
    (got,) = session.run(None, {"input": x.numpy()})
    np.testing.assert_allclose(got, cell(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_onnx_export_rejects_old_opsets(tmp_path):
    with pytest.raises(UserError, match="opset"):
        export_onnx(NeoCell(4, 2), torch.randn(1, 4, 4, 4), tmp_path / "x.onnx", opset=13)


def test_export_restores_training_mode(tmp_path):
    cell = NeoCell(4, 2).train()
    export_onnx(cell, torch.randn(1, 4, 4, 4), tmp_path / "x.onnx")
    assert cell.training


@pytest.mark.parametrize("bias", [False, True])
def test_batchnorm_folds_into_the_cell(bias):
    cell = trained_like(NeoCell(12, STAGE, bias=bias)).double()
    bn = nn.BatchNorm2d(12).double()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    bn.eval()
    folded = fold_batchnorm(cell, bn)
    x = torch.randn(2, 12, 14, 14, dtype=torch.float64)
    assert folded.bias is not None and folded is not cell
    assert (folded(x) - bn(cell(x))).abs().max() < 1e-10
    for impl in ("dense", "tiled", "patch"):
        folded.impl = impl
        assert (folded(x) - bn(cell(x))).abs().max() < 1e-10


def test_folding_a_batchnorm_of_another_width_is_a_user_error():
    with pytest.raises(UserError, match="channel counts differ"):
        fold_batchnorm(NeoCell(8), nn.BatchNorm2d(4))


@pytest.mark.slow  # the dynamo exporter takes ~6 s for one cell
def test_dynamo_onnx_export_gives_the_same_outputs(tmp_path):
    import onnxruntime

    cell = trained_like(NeoCell(16, STAGE, bias=True)).eval()
    path = tmp_path / "cell.onnx"
    export_onnx(cell, torch.randn(2, 16, 14, 14), path, opset=18, dynamo=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 16, 14, 14)
    (got,) = session.run(None, {"input": x.numpy()})
    np.testing.assert_allclose(got, cell(x).detach().numpy(), rtol=1e-4, atol=1e-5)

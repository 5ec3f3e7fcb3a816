"""The onnxruntime check `neonas export-onnx` prints: near zero for the exported model, large
for another one, so a wrong export cannot pass it."""

from __future__ import annotations

import copy

import torch

from neonas.ops import CellGroup, NeoCell, export_onnx, onnx_max_error


def test_the_check_is_near_zero_for_the_exported_model_and_large_for_another(tmp_path):
    torch.manual_seed(0)
    cell = NeoCell(8, [CellGroup(2, share=0.5, shift=True), CellGroup(4, share=0.5)]).eval()
    example = torch.randn(2, 8, 8, 8)
    path = tmp_path / "cell.onnx"
    export_onnx(cell, example, path)
    assert onnx_max_error(cell, example, path) < 1e-5
    other = copy.deepcopy(cell)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(1.0)
    assert onnx_max_error(other, example, path) > 1e-2

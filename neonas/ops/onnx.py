"""ONNX export of models that contain NeoCells (the dense form, opset >= 17)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from neonas.errors import UserError


def export_onnx(
    model: nn.Module,
    example_input: Tensor,
    path: str | Path,
    opset: int = 17,
    *,
    dynamo: bool = False,
) -> None:
    """Writes `model` (in eval mode) to an ONNX file with a dynamic batch that onnxruntime runs
    with the same outputs.

    The TorchScript exporter (dynamo=False) is the default: it exports a NeoNeXt block in well
    under a second, where the dynamo exporter took 6 s for a single NeoCell here (same outputs).
    """
    if opset < 17:
        raise UserError(f"ONNX opset {opset} is too old: use 17 or newer")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            # The batch axis stays dynamic: the two exporters spell that differently.
            batch_axis = (
                {"dynamic_shapes": ({0: torch.export.Dim("batch")},)}
                if dynamo
                else {"dynamic_axes": {"input": {0: "batch"}, "output": {0: "batch"}}}
            )
            torch.onnx.export(
                model,
                (example_input,),
                str(path),
                opset_version=opset,
                input_names=["input"],
                output_names=["output"],
                dynamo=dynamo,
                **batch_axis,
            )
    finally:
        model.train(was_training)


def onnx_max_error(model: nn.Module, example_input: Tensor, path: str | Path) -> float:
    """Largest absolute difference between onnxruntime's outputs for the file and torch's.

    The check `neonas export-onnx` prints after writing a file; onnxruntime loads only here.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: example_input.numpy()})
    with torch.no_grad():
        expected = model(example_input)
    return float((torch.from_numpy(output) - expected).abs().max())

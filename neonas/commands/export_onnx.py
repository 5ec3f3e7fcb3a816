"""`neonas export-onnx`: a model as an ONNX file (the way models reach Ascend's ATC converter)."""

from __future__ import annotations

import argparse
import sys

from neonas.commands.arguments import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--model", help="registered NeoNeXt (neonext_tiny, ...) or any timm model name"
    )
    source.add_argument("--config", help="ArchConfig YAML/JSON file, e.g. from `neonas export`")
    parser.add_argument("--out", required=True, help="output .onnx file")
    parser.add_argument(
        "--res", type=positive_int, help="input resolution (default: the model's own)"
    )
    parser.add_argument(
        "--batch",
        type=positive_int,
        default=1,
        help="example batch size (the batch axis is dynamic)",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset, >= 17 (default 17)")
    parser.add_argument(
        "--fold",
        action="store_true",
        help="fold BatchNorms and layer scales into the layers before them first (NeoNeXt only)",
    )
    # --fuse: the old name of --fold, still accepted ("fusion" is the Ascend model's word).
    parser.add_argument("--fuse", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")


def run(args: argparse.Namespace) -> int:
    import torch

    from neonas.errors import UserError
    from neonas.models import NeoNeXt, default_input_size, fold_for_inference, resolve_model
    from neonas.ops import export_onnx, onnx_max_error

    if args.fuse:
        print("neonas export-onnx: --fuse is deprecated, use --fold", file=sys.stderr)
    model, _ = resolve_model(args.model, args.config, input_size=args.res)
    model.eval()
    if args.fold or args.fuse:
        if not isinstance(model, NeoNeXt):
            raise UserError("--fold works on NeoNeXt models only")
        model = fold_for_inference(model)
    channels, height, width = default_input_size(model)
    if args.res is not None:
        height = width = args.res
    example = torch.randn(args.batch, channels, height, width)
    export_onnx(model, example, args.out, opset=args.opset)
    message = (
        f"wrote {args.out} (input {args.batch}x{channels}x{height}x{width}, opset {args.opset})"
    )
    if not args.no_check:
        error = onnx_max_error(model, example, args.out)
        message += f"; onnxruntime max abs difference to torch: {error:.2e}"
    print(message)
    return 0

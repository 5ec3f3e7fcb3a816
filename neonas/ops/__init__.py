"""NeoCell, the patch-wise matrix multiplication operator of NeoNeXt, and its tooling.

`NeoCell` (module) and `neocell` (functional, one group) with dense block-diagonal and
patch-wise implementations, NeoInit, BatchNorm folding, fvcore FLOP handles and ONNX export.

The names below are imported on first use: `neonas.ops.groups` (CellGroup, pure Python) is
read by ArchConfigs and search spaces, which must load without torch so that `neonas --help`
starts in 0.2 s instead of seconds (benchmarks/startup.py, tests/test_cli_startup.py).
"""

from __future__ import annotations

from neonas.lazy import lazy_getattr

# public name -> the module that defines it
_EXPORTS = {
    "CellGroup": "neonas.ops.groups",
    "NeoCell": "neonas.ops.cell",
    "export_onnx": "neonas.ops.onnx",
    "flop_handles": "neonas.ops.flops",
    "fold_batchnorm": "neonas.ops.folding",
    "neocell": "neonas.ops.functional",
    "neoinit_": "neonas.ops.init",
    "onnx_max_error": "neonas.ops.onnx",
    "split_channels": "neonas.ops.groups",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)

"""NeoCell, the patch-wise matrix multiplication operator of NeoNeXt, and its tooling.

`NeoCell` (module) and `neocell` (functional, one group) with dense block-diagonal and
patch-wise implementations, NeoInit, BatchNorm folding, fvcore FLOP handles and ONNX export.
"""

from neonas.ops.cell import NeoCell
from neonas.ops.flops import flop_handles
from neonas.ops.folding import fold_batchnorm
from neonas.ops.functional import neocell
from neonas.ops.groups import CellGroup, split_channels
from neonas.ops.init import neoinit_
from neonas.ops.onnx import export_onnx

__all__ = [
    "CellGroup",
    "NeoCell",
    "export_onnx",
    "flop_handles",
    "fold_batchnorm",
    "neocell",
    "neoinit_",
    "split_channels",
]

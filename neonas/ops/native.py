"""The fused CPU kernel for NeoCell inference (csrc/neocell_band.cpp), opt-in: NEONAS_NATIVE=1.

A square NeoCell (h = h' = w = w', shifts included) only has non-zeros within k - 1 of the
diagonal of its dense operators, so its forward is a banded, separable filter: the kernel reads
the input once, applies both products per 16-channel block with full-width vector FMAs, and
writes the output once, where the PyTorch forms make 3-7 passes over memory (see
benchmarks/README.md, "NeoCell operator"). It serves inference only (no autograd) and needs a
C++ compiler: with NEONAS_NATIVE=1 the extension is built with torch.utils.cpp_extension on
first use (about a minute) and cached in torch's extension directory (~/.cache/torch_extensions
by default, TORCH_EXTENSIONS_DIR to change it). It is opt-in because that first build would
otherwise land inside whatever command first runs a NeoCell on the CPU (and torch rebuilds it
for every checkout of the source). Unset, without a compiler, or when the build fails,
`available()` is False and NeoCell runs its PyTorch forms (one notice on stderr when a build
fails).
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import sys
import warnings
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

LANES = 16  # channels per vector block, as in the kernel
_SOURCE = Path(__file__).parent / "csrc" / "neocell_band.cpp"
_module: ModuleType | None = None
_failed = False


def _cpu_tag() -> str:
    """A short tag of this CPU: the build uses -march=native, so a shared cache directory must
    not hand one machine's binary to another."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags")):
                model += line
    except OSError:
        pass
    return hashlib.sha1(model.encode()).hexdigest()[:8]


def enabled() -> bool:
    """True when the user asked for the fused kernel (NEONAS_NATIVE=1)."""
    return os.environ.get("NEONAS_NATIVE", "0") == "1"


def load() -> ModuleType | None:
    """The compiled kernel module, building it on first call; None when it is not enabled or
    cannot be built."""
    global _module, _failed
    if _module is not None or _failed or not enabled():
        return _module
    # cpp_extension logs on import that it found no CUDA runtime: irrelevant for a CPU kernel.
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension  # lazily: it imports setuptools, for a rare path

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _module = cpp_extension.load(
                    name=f"neonas_neocell_band_{_cpu_tag()}",
                    sources=[str(_SOURCE)],
                    # -fopenmp: without it at::parallel_for (inline in the headers) runs
                    # serially, and the kernel lost to MKL's threaded products at 2 threads.
                    extra_cflags=["-O3", "-march=native", "-fopenmp"],
                    extra_ldflags=["-fopenmp"],
                    verbose=False,
                )
        finally:
            logger.setLevel(level)
    except Exception as err:  # no compiler, no headers, a failed build: fall back, say it once
        _failed = True
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(
            f"neonas: fused NeoCell kernel unavailable ({reason[:120]}); using the PyTorch forms",
            file=sys.stderr,
        )
    return _module


def available() -> bool:
    """True when the fused kernel is enabled and built (or builds now), so it can run."""
    return enabled() and load() is not None


def band(matrix: Tensor, radius: int) -> Tensor:
    """[C, R, R] dense operator -> [C, R, 2*radius + 1]: band[c, i, d] = matrix[c, i, i + d - radius]
    (zero outside the matrix)."""
    size = matrix.shape[-1]
    rows = torch.arange(size, device=matrix.device)[:, None]
    cols = rows + torch.arange(-radius, radius + 1, device=matrix.device)[None, :]
    valid = (cols >= 0) & (cols < size)
    gathered = matrix.gather(
        2, cols.clamp(0, size - 1).expand(matrix.shape[0], -1, -1).contiguous()
    )
    return gathered * valid


def lane_blocks(values: Tensor) -> Tensor:
    """[C, S, D] -> [ceil(C/16), S, D, 16], channels padded with zeros to whole blocks."""
    channels = values.shape[0]
    blocks = -(-channels // LANES)
    padded = torch.nn.functional.pad(values, (0, 0, 0, 0, 0, blocks * LANES - channels))
    return padded.reshape(blocks, LANES, *values.shape[1:]).permute(0, 2, 3, 1).contiguous()


def band_operands(
    left: Tensor, right: Tensor, block_sizes: list[int]
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The kernel's operands from the dense A [C, H, H], B [C, W, W] and every channel's k:
    bands [blocks, H or W, 2R+1, 16] of A and B, and per block and row (column) the first and
    last band index with a non-zero coefficient in any lane [blocks, H or W, 2] (int32)."""
    radius = max(block_sizes) - 1
    # y = t @ B: column j of the output combines rows j + e - R of B's column j.
    bands = (lane_blocks(band(left, radius)), lane_blocks(band(right.transpose(1, 2), radius)))
    return (*bands, *(nonzero_range(b) for b in bands))


def nonzero_range(bands: Tensor) -> Tensor:
    """[blocks, S, D, 16] -> [blocks, S, 2]: first and last d with a non-zero in any lane
    (first > last when there is none)."""
    used = (bands != 0).any(dim=3)  # [blocks, S, D]
    index = torch.arange(used.shape[2], device=bands.device)
    first = torch.where(used, index, used.shape[2]).amin(dim=2)
    last = torch.where(used, index, -1).amax(dim=2)
    return torch.stack([first, last], dim=2).to(torch.int32).contiguous()


def band_forward(
    x: Tensor,
    a_band: Tensor,
    b_band: Tensor,
    a_range: Tensor,
    b_range: Tensor,
    bias_map: Tensor | None,
) -> Tensor:
    """Runs the kernel: x [N, C, H, W] (any layout) -> y [N, C, H, W], channels-last in memory."""
    module = load()
    if module is None:
        raise RuntimeError("the fused NeoCell kernel is not available")
    bias = bias_map if bias_map is not None else x.new_empty(0)
    return module.band_forward(x, a_band, b_band, a_range, b_range, bias)

"""The fused CPU kernel for NeoCell inference (csrc/neocell_band.cpp), built once per install.

A square NeoCell (h = h' = w = w', shifts included) only has non-zeros within k - 1 of the
diagonal of its dense operators, so its forward is a banded, separable filter: the kernel reads
the input once, applies both products per 16-channel block with full-width vector FMAs, and
writes the output once, where the PyTorch forms make 3-7 passes over memory (see
benchmarks/README.md, "NeoCell operator"). It serves inference only (no autograd).

Building: `neonas build-native` (the README's first command runs it) compiles the extension
with torch.utils.cpp_extension (about a minute on 2 cores) into a cache directory keyed by the
source, torch, Python and this CPU (`-march=native`): ~/.cache/neonas/native by default,
NEONAS_NATIVE_DIR to change it. The build runs under a file lock, so processes and Ray workers
asking at once wait for one build and then load it; a finished build is only imported (a few
milliseconds). NEONAS_NATIVE selects the policy:

  unset  use the kernel where it is built; build it on first use otherwise (once, locked);
         where no compiler exists or the build failed, run the PyTorch forms after one notice
         (the failure is recorded, so later processes do not try again until
         `neonas build-native` is run)
  0      never use it (the PyTorch forms)
  1      as unset, but retry a recorded failed build
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import platform
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

LANES = 16  # channels per vector block, as in the kernel
_SOURCE = Path(__file__).parent / "csrc" / "neocell_band.cpp"
# -fopenmp: without it at::parallel_for (inline in the headers) runs serially, and the kernel
# lost to MKL's threaded products at 2 threads.
_CFLAGS = ["-O3", "-march=native", "-fopenmp"]
_LDFLAGS = ["-fopenmp"]
FAILED = "failed.txt"  # in the build directory: why the last build failed

_module: ModuleType | None = None
_failed = False  # this process gave up on the kernel (and said so once)


class NativeBuildError(RuntimeError):
    """The kernel could not be built here (no compiler, no headers, a compile error)."""


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


def module_name() -> str:
    """The extension's name: one per kernel source, torch, Python and CPU, so that a build is
    reused exactly where it is valid (another checkout with the same source shares it)."""
    key = "|".join(
        (
            hashlib.sha1(_SOURCE.read_bytes()).hexdigest(),
            torch.__version__,
            f"{sys.version_info.major}.{sys.version_info.minor}",
            " ".join(_CFLAGS + _LDFLAGS),
            _cpu_tag(),
        )
    )
    return f"neonas_neocell_band_{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def cache_root() -> Path:
    """Where builds live: NEONAS_NATIVE_DIR, else ~/.cache/neonas/native."""
    configured = os.environ.get("NEONAS_NATIVE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "neonas" / "native"


def build_dir() -> Path:
    """This install's build directory."""
    return cache_root() / module_name()


def policy() -> str:
    """'off' (NEONAS_NATIVE=0), 'force' (NEONAS_NATIVE=1) or 'default' (unset)."""
    value = os.environ.get("NEONAS_NATIVE", "").strip()
    return {"0": "off", "1": "force"}.get(value, "default")


def enabled() -> bool:
    """False only when the user turned the kernel off (NEONAS_NATIVE=0)."""
    return policy() != "off"


@contextlib.contextmanager
def build_lock(directory: Path) -> Iterator[None]:
    """An exclusive lock on `directory`'s build, released when the holder exits or dies (an
    flock, unlike torch's own lock file, which a killed build leaves behind)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f"{directory.name}.lock", "a+") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, a concurrent build is merely wasted work
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def built_library(directory: Path, name: str) -> Path | None:
    """The finished extension library in `directory`, if there is one."""
    for path in sorted(directory.glob(f"{name}*.so")) + sorted(directory.glob(f"{name}*.pyd")):
        return path
    return None


def import_library(path: Path, name: str) -> ModuleType:
    """Imports a built extension (torch must be imported first: it holds the symbols)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise NativeBuildError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compile_extension(directory: Path, name: str, verbose: bool = False) -> None:
    """Compiles the kernel into `directory` (torch.utils.cpp_extension, ninja)."""
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise NativeBuildError(f"no C++ compiler ({compiler!r} not found; set CXX)")
    with contextlib.suppress(ImportError):  # the ninja wheel: its binary may not be on PATH
        import ninja

        if getattr(ninja, "BIN_DIR", None):
            os.environ["PATH"] = f"{ninja.BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"
    # cpp_extension logs on import that it found no CUDA runtime: irrelevant for a CPU kernel.
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension  # lazily: it imports setuptools

        directory.mkdir(parents=True, exist_ok=True)
        (directory / "lock").unlink(missing_ok=True)  # torch's lock file of a killed build
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cpp_extension.load(
                name=name,
                sources=[str(_SOURCE)],
                extra_cflags=_CFLAGS,
                extra_ldflags=_LDFLAGS,
                build_directory=str(directory),
                verbose=verbose,
            )
    except NativeBuildError:
        raise
    except Exception as err:  # a compile or link error, missing headers, no ninja
        text = str(err).strip()
        reason = text.splitlines()[0] if text else type(err).__name__
        raise NativeBuildError(reason[:200]) from err
    finally:
        logger.setLevel(level)


def ensure_built(
    directory: Path,
    name: str,
    compile_fn: Callable[[Path, str], None] = compile_extension,
    retry_failed: bool = True,
) -> Path:
    """The built library in `directory`, compiling it first if needed, under the build lock: of
    processes asking at once, one compiles and the others wait and reuse it. A failure is
    recorded in the directory (FAILED) and raised; with retry_failed=False a recorded failure
    is raised again without compiling."""
    with build_lock(directory):
        library = built_library(directory, name)
        if library is not None:
            return library
        failed = directory / FAILED
        if failed.exists() and not retry_failed:
            raise NativeBuildError(failed.read_text().strip() or "an earlier build failed")
        try:
            compile_fn(directory, name)
            library = built_library(directory, name)
            if library is None:
                raise NativeBuildError(f"the build left no library in {directory}")
        except NativeBuildError as err:
            directory.mkdir(parents=True, exist_ok=True)
            failed.write_text(f"{err}\n")
            raise
        failed.unlink(missing_ok=True)
        return library


def build(verbose: bool = False) -> Path:
    """Builds the kernel for this install now (or finds it built): `neonas build-native`."""
    directory, name = build_dir(), module_name()
    library = ensure_built(directory, name, lambda d, n: compile_extension(d, n, verbose))
    import_library(library, name)  # a library that does not load is no build
    return library


def _notice(message: str) -> None:
    print(f"neonas: {message}", file=sys.stderr, flush=True)


def load() -> ModuleType | None:
    """The compiled kernel module, or None where it is turned off or cannot be built (then,
    once per process, a notice on stderr and the PyTorch forms)."""
    global _module, _failed
    if not enabled():
        return None
    if _module is not None or _failed:
        return _module
    directory, name = build_dir(), module_name()

    def compile_now(directory: Path, name: str) -> None:
        _notice(
            "building the fused NeoCell kernel once for this install (about a minute; "
            "`neonas build-native` does it ahead of time)"
        )
        compile_extension(directory, name)

    try:
        # Under the lock even when built: a process that finds another one building waits
        # for its library instead of reading a half-written one.
        library = ensure_built(directory, name, compile_now, retry_failed=policy() == "force")
        _module = import_library(library, name)
    except Exception as err:  # no compiler, a failed build, a library that does not load
        _failed = True
        _notice(
            f"fused NeoCell kernel unavailable ({str(err)[:160]}); using the PyTorch forms "
            "(`neonas build-native` retries, NEONAS_NATIVE=0 silences this)"
        )
    return _module


def available() -> bool:
    """True when the fused kernel can run here (built now if need be, see load)."""
    return load() is not None


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

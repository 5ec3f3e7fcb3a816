"""Building and loading the fused kernel (neonas.ops.native): once per install, locked, used by
default where built, the PyTorch forms with one notice where it cannot be built. No compiler
runs here: compiling is simulated (tests/test_ops_native.py builds the real kernel, slow)."""

import multiprocessing
import time

import pytest
import torch

from neonas.cli import main
from neonas.ops import CellGroup, NeoCell, native

STAGE = [CellGroup(4, share=0.5, shift=True), CellGroup(7, share=0.5, shift=True)]


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A process that has not looked for the kernel yet, with an empty build cache."""
    monkeypatch.setenv("NEONAS_NATIVE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("NEONAS_NATIVE", raising=False)
    monkeypatch.setattr(native, "_module", None)
    monkeypatch.setattr(native, "_failed", False)
    return tmp_path / "cache"


def no_compiler(directory, name, verbose=False):
    raise native.NativeBuildError("no C++ compiler ('c++' not found; set CXX)")


def inference(cell: NeoCell, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return cell(x)


def test_without_a_compiler_the_pytorch_forms_run_after_one_notice(fresh, monkeypatch, capsys):
    monkeypatch.setenv("CXX", "/nonexistent/c++")  # the real compile step finds no compiler
    cell = NeoCell(24, STAGE).double().eval()
    x = torch.randn(2, 24, 14, 14, dtype=torch.float64)
    y = inference(cell, x)
    for _ in range(3):  # later cells and calls stay quiet
        inference(NeoCell(24, STAGE).eval(), torch.randn(1, 24, 14, 14))
    with torch.no_grad():
        assert cell.resolved_impl(x) in ("dense", "patch")
    err = capsys.readouterr().err
    assert err.count("fused NeoCell kernel unavailable") == 1
    assert "no C++ compiler" in err
    cell.impl = "dense"
    assert torch.equal(y, inference(cell, x))  # the same numbers as the dense form


def test_a_failed_build_is_recorded_and_not_retried_by_later_processes(fresh, monkeypatch, capsys):
    def compile_error(directory, name):
        raise native.NativeBuildError("error: simulated compile error")

    monkeypatch.setattr(native, "compile_extension", compile_error)
    assert not native.available()
    assert "simulated compile error" in (fresh / native.module_name() / native.FAILED).read_text()
    # A later process (the per-process state reset) reads the record instead of compiling.
    monkeypatch.setattr(native, "_failed", False)
    monkeypatch.setattr(native, "compile_extension", pytest.fail)
    assert not native.available()
    err = capsys.readouterr().err
    assert err.count("building the fused NeoCell kernel") == 1
    assert err.count("simulated compile error") == 2


def test_build_native_says_why_and_exits_0_without_a_compiler(fresh, monkeypatch, capsys):
    monkeypatch.setattr(native, "compile_extension", no_compiler)
    assert main(["build-native"]) == 0
    assert "was not built (no C++ compiler" in capsys.readouterr().out
    assert main(["build-native", "--strict"]) == 1


def _fake_compile(directory, name):
    """Stands in for the compiler: slow enough for the other process to ask meanwhile."""
    with open(directory.parent / "compiles.log", "a") as log:
        log.write("compiled\n")
    time.sleep(1.0)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.so").write_bytes(b"library")


def _ask(directory, name, results):
    results.put(str(native.ensure_built(directory, name, _fake_compile)))


def test_two_processes_asking_at_once_build_once(tmp_path):
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    directory = tmp_path / "neonas_neocell_band_test"
    workers = [
        context.Process(target=_ask, args=(directory, directory.name, results)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    paths = {results.get(timeout=5) for _ in workers}
    assert paths == {str(directory / "neonas_neocell_band_test.so")}
    assert (tmp_path / "compiles.log").read_text() == "compiled\n"


class FakeKernel:
    """A built kernel as the loader returns it; records its calls."""

    def __init__(self):
        self.calls = 0

    def band_forward(self, x, a_band, b_band, a_range, b_range, bias):
        self.calls += 1
        return torch.zeros_like(x)


def test_a_built_kernel_is_used_by_default(fresh, monkeypatch):
    kernel = FakeKernel()
    monkeypatch.setattr(native, "compile_extension", _fake_compile)
    monkeypatch.setattr(native, "import_library", lambda path, name: kernel)
    cell = NeoCell(16, STAGE).eval()
    x = torch.randn(2, 16, 14, 14)
    with torch.no_grad():
        assert cell.resolved_impl(x) == "fused"
        cell(x)
    assert kernel.calls == 1
    assert (fresh / native.module_name() / f"{native.module_name()}.so").exists()
    assert cell.resolved_impl(x) == "dense"  # training: never the inference kernel


def test_neonas_native_0_turns_a_built_kernel_off(fresh, monkeypatch):
    monkeypatch.setattr(native, "_module", FakeKernel())  # built and loaded already
    monkeypatch.setenv("NEONAS_NATIVE", "0")
    assert not native.available()
    with torch.no_grad():
        assert NeoCell(8, STAGE).eval().resolved_impl(torch.randn(8, 8, 14, 14)) == "dense"

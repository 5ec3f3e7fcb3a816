"""benchmarks/operand_backward.py: the three ways to build NeoCell operands, timed and checked."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import operand_backward  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


def test_gathering_before_the_cast_keeps_bf16_gradients_exact():
    rows = operand_backward.measure("cpu", 1, "neonext_tiny", 32)
    by = {(row["dtype"], row["form"]): row for row in rows}
    assert len(by) == 6 and all(row["median_ms"] > 0 for row in rows)
    for form in operand_backward.FORMS:  # float32: every form sums the same way
        assert by["float32", form]["max_relative_grad_error"] < 1e-6
    assert by["bfloat16", "cast-gather"]["max_relative_grad_error"] > 1e-3
    assert by["bfloat16", "gather-cast"]["max_relative_grad_error"] < 1e-6
    assert by["bfloat16", "in-block"]["max_relative_grad_error"] < 1e-6


@pytest.mark.skipif(torch.cuda.is_available(), reason="the message is for machines without a GPU")
def test_asking_for_cuda_without_one_is_a_one_line_error():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "operand_backward.py"), "--device", "cuda"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "needs a CUDA build" in done.stderr

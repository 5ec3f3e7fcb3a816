"""benchmarks/train.py --profile: where a training step's time goes, ranked operator by
operator (on a CPU here; device time on a GPU)."""

import json


def _run(benchmark_module, capsys, *args: str) -> tuple[int, str, str]:
    bench = benchmark_module("train")
    status = bench.main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_profile_ranks_the_operators_of_a_training_step(benchmark_module, capsys):
    status, out, _ = _run(
        benchmark_module,
        capsys,
        *("--model", "resnet18", "--batch-size", "2", "--res", "32", "--device", "cpu"),
        *("--steps", "1", "--warmup-steps", "1", "--amp", "none", "--profile", "2", "--top", "6"),
    )
    assert status == 0
    report = json.loads(out[out.index("{") :])
    profile = report["profile"]
    assert profile["time"] == "cpu" and profile["steps"] == 2
    operators = profile["operators"]
    assert len(operators) == 6
    times = [op["ms_per_step"] for op in operators]
    assert times == sorted(times, reverse=True) and times[0] > 0
    assert 0 < sum(op["share"] for op in operators) <= 1
    assert all(op["calls_per_step"] > 0 for op in operators)
    # a ResNet step is convolutions: and the optimiser: one of them is among its six costliest operators
    assert any("conv" in op["name"] for op in operators)


def test_a_model_that_does_not_fit_the_resolution_is_one_line_and_exit_2(benchmark_module, capsys):
    status, _, err = _run(benchmark_module, capsys, "--model", "neonext_tiny", "--res", "32")
    assert status == 2
    assert err.strip().startswith("error: neonext_tiny at 32 px")

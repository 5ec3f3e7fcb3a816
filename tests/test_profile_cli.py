"""`neonas profile` and `neonas profile-lut` on the command line: JSON contract and bad input."""

import json

import pytest

from evaluators import get_hw
from evaluators.profile import load_model_to_profile, profile_model
from neonas.cli import main
from neonas.models.family import neonext_config

CONTRACT_KEYS = {"params", "flops", "flops_patchwise", "latency_ms", "latency_source", "hw"}


@pytest.fixture
def config_file(tmp_path):
    config = neonext_config(
        "tiny-test", (1, 1), (16, 32), drop_path_rate=0.0, input_size=64, num_classes=10
    )
    path = tmp_path / "tiny.yaml"
    path.write_text(config.to_yaml())
    return path


def run_json(argv, capsys) -> dict:
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one JSON object and nothing else
    return json.loads(out)


def test_json_report_keeps_the_contract_keys_and_types(config_file, capsys) -> None:
    report = run_json(
        ["profile", "--config", str(config_file), "--hw", "ascend310", "--json"], capsys
    )
    assert CONTRACT_KEYS <= set(report)
    assert isinstance(report["params"], int) and isinstance(report["flops"], int)
    assert isinstance(report["flops_patchwise"], int) and isinstance(report["latency_ms"], float)
    assert isinstance(report["flops_tiled"], int) and report["flops_tiled"] != report["flops"]
    assert report["latency_source"] == "predicted" and report["hw"] == "ascend310"
    assert 0 < report["matrix_efficiency"] <= 1
    assert [row["name"] for row in report["stages"]] == ["stem", "stages.0", "stages.1", "head"]
    assert sum(row["flops"] for row in report["stages"]) == report["flops"]


def test_the_library_report_splits_params_flops_and_latency_over_the_stages(config_file):
    model, label, chw = load_model_to_profile(None, config_file)
    report = profile_model(model, chw, get_hw("ascend310"))
    stages = report["stages"]
    assert label == "tiny-test" and chw == (3, 64, 64) and len(stages) == 4
    assert sum(row["params"] for row in stages) == report["params"]
    assert sum(row["flops"] for row in stages) == report["flops"]
    assert sum(row["latency_ms"] for row in stages) == pytest.approx(report["latency_ms"])


def test_cpu_latency_is_measured_with_its_spread(capsys) -> None:
    argv = [
        "profile",
        "--model",
        "resnet18",
        "--res",
        "32",
        "--threads",
        "1",
        "--time-cap",
        "0.3",
        "--json",
    ]
    report = run_json(argv, capsys)
    assert report["latency_source"] == "measured" and report["hw"] == "cpu"
    assert report["latency_spread"] >= 0 and report["latency_runs"] > 0
    assert report["latency_settings"]["threads"] == 1
    assert report["input_size"] == [3, 32, 32]


def test_human_report_shows_a_per_stage_table(config_file, capsys) -> None:
    assert main(["profile", "--config", str(config_file), "--hw", "ascend910"]) == 0
    out = capsys.readouterr().out
    assert "predicted" in out and "matrix efficiency" in out
    assert "patch-wise" in out and "tiled" in out
    assert "stages.1" in out and "head" in out


def test_a_space_gets_the_mean_and_spread_of_matrix_efficiency(capsys) -> None:
    report = run_json(["profile", "--space", "tiny", "--samples", "3", "--json"], capsys)
    assert report["space"] == "tiny" and report["samples"] == 3
    assert 0 < report["matrix_efficiency_min"] <= report["matrix_efficiency_mean"] <= 1
    assert report["matrix_efficiency_std"] >= 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "resnet18", "--hw", "tpu"], "unknown hardware 'tpu'"),
        (["--model", "resnet18", "--hw", "cuda"], "torch sees no CUDA device"),
        (["--model", "resnet18", "--batch", "0"], "must be 1 or more"),
        (["--model", "resnet18", "--res", "abc"], "is not an integer"),
        (["--model", "no_such_model_xyz"], "unknown model 'no_such_model_xyz'"),
        (["--model", "resnet18", "--config", "a.yaml"], "not allowed with argument"),
        (["--config", "missing.yaml"], "missing.yaml"),
        (["--model", "vit_tiny_patch16_224", "--res", "100"], "does not run at 100x100"),
        (["--space", "tiny", "--hw", "ascend"], "--space reports the matrix efficiency"),
        (["--model", "resnet18", "--samples", "3"], "leave out --samples"),
        (["--model", "resnet18", "--hw", "ascend", "--threads", "2"], "applies to --hw cpu"),
        (["--model", "resnet18", "--hw", "ascend", "--time-cap", "1"], "leave out --time-cap"),
    ],
)
def test_bad_options_exit_2_with_one_line(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        status = main(["profile", *argv])
        raise SystemExit(status)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err


def test_profile_lut_builds_a_table_and_reports_its_error(tmp_path, capsys) -> None:
    out = tmp_path / "cpu.json"
    argv = [
        "profile-lut",
        "--samples",
        "1",
        "--validate",
        "1",
        "--threads",
        "1",
        "--time-cap",
        "0.1",
    ]
    summary = run_json([*argv, "--out", str(out), "--json"], capsys)
    assert summary["entries"] == summary["added"] > 0 and summary["validation"]["networks"] == 1
    assert json.loads(out.read_text())["entries"]
    report = run_json(
        ["profile", "--config", str(_tiny_space_network(tmp_path)), "--hw", f"lut:{out}", "--json"],
        capsys,
    )
    assert report["latency_source"] == "predicted"


def test_profile_lut_refuses_to_mix_settings_in_one_table(tmp_path, capsys) -> None:
    out = tmp_path / "cpu.json"
    base = [
        "profile-lut",
        "--samples",
        "1",
        "--threads",
        "1",
        "--time-cap",
        "0.1",
        "--out",
        str(out),
    ]
    assert main(base) == 0
    capsys.readouterr()
    assert main([*base, "--batch", "2"]) == 2
    assert "holds a table for hw=cpu dtype=fp32 batch=1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--hw", "npu"], "torch_npu"), (["--space", "no_such_space"], "unknown search space")],
)
def test_profile_lut_bad_options_exit_2(argv, message, capsys) -> None:
    assert main(["profile-lut", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and message in captured.err


def _tiny_space_network(tmp_path):
    """The first network profile-lut measured (seed 0), as an ArchConfig file."""
    import random

    from neonas.search import load_space

    config = load_space("tiny").sample(random.Random(0))
    path = tmp_path / "first.yaml"
    path.write_text(config.to_yaml())
    return path

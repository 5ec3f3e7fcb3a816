"""Hardware targets by name: what --hw accepts, measured or predicted, and clear errors."""

import pytest
from torch import nn

import evaluators.hardware as hardware
import evaluators.targets.ascend as ascend_targets
import evaluators.targets.measured as measured_targets
from evaluators import TargetOptions, available_hw, compute_metrics, get_hw, register_hw
from evaluators.latency.backends import CpuBackend
from evaluators.latency.lut import LatencyTable
from evaluators.latency.measure import MeasureSettings
from neonas.errors import UserError
from neonas.models import build_model
from neonas.models.family import neonext_config

QUICK = TargetOptions(
    measure=MeasureSettings(warmup_runs=1, warmup_s=0.0, window=3, max_time_s=0.2)
)


def tiny_neonext() -> nn.Module:
    config = neonext_config(
        "t", (1, 1), (16, 32), drop_path_rate=0.0, input_size=64, num_classes=10
    )
    return build_model(config)


def test_every_documented_target_is_registered() -> None:
    assert set(available_hw()) >= {
        "cpu",
        "cuda[:N]",
        "npu[:N]",
        "ascend",
        "ascend310",
        "ascend910",
        "lut:PATH",
    }


def test_unknown_hardware_lists_the_choices() -> None:
    with pytest.raises(
        UserError, match=r"unknown hardware 'tpu': choose one of cpu, cuda\[:N\], .*lut:PATH"
    ):
        get_hw("tpu")


@pytest.mark.parametrize(
    ("hw", "message"), [("ascend310:1", "use ascend310"), ("lut", "needs an argument")]
)
def test_badly_spelled_targets_are_user_errors(hw: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        get_hw(hw)


def test_cpu_is_measured_and_reports_its_name() -> None:
    result = get_hw("cpu", QUICK).latency(nn.Conv2d(3, 4, 3), (3, 8, 8))
    assert (result.source, result.hw) == ("measured", "cpu")


def test_ascend_without_an_npu_predicts_for_the_310(monkeypatch) -> None:
    monkeypatch.setattr(ascend_targets, "npu_available", lambda: False)
    target = get_hw("ascend")
    result = target.latency(nn.Conv2d(3, 4, 3), (3, 8, 8))
    assert target.source == result.source == "predicted"
    assert result.hw == "ascend" and "Ascend 310" in result.device


def test_ascend_with_an_npu_measures_on_it(monkeypatch) -> None:
    opened = []
    monkeypatch.setattr(ascend_targets, "npu_available", lambda: True)
    monkeypatch.setattr(
        measured_targets, "open_backend", lambda hw, **kw: opened.append(hw) or CpuBackend()
    )
    target = get_hw("ascend", QUICK)
    result = target.latency(nn.Conv2d(3, 4, 3), (3, 8, 8))
    assert (
        opened == ["npu"] and target.source == result.source == "measured" and result.hw == "ascend"
    )


def test_predicted_ascend_refuses_other_dtypes_than_fp16() -> None:
    with pytest.raises(UserError, match="predicts fp16"):
        get_hw("ascend910").latency(nn.Conv2d(3, 4, 3), (3, 8, 8), dtype="fp32")


def test_neonext_latency_is_for_its_inference_form() -> None:
    result = get_hw("ascend310").latency(tiny_neonext(), (3, 64, 64))
    # BatchNorms folded away; the head's LayerNorm keeps its normalisation (a vector operator)
    assert [row.name for row in result.breakdown if "norm" in row.name] == ["head.norm"]


def test_a_latency_table_is_a_target(tmp_path) -> None:
    model = tiny_neonext()
    table = LatencyTable(hw="cpu", device="cpu", dtype="fp32", batch=1)
    target_model = hardware.inference_form(model).eval()
    table.add_units(
        target_model, (1, 3, 64, 64), lambda m, s: get_hw("cpu", QUICK).latency(m, s[1:])
    )
    table.save(tmp_path / "t.json")
    result = get_hw(f"lut:{tmp_path / 't.json'}").latency(model, (3, 64, 64))
    assert result.source == "predicted" and result.median_ms > 0


def test_a_new_target_is_one_registered_factory(monkeypatch) -> None:
    monkeypatch.setattr(hardware, "_REGISTRY", dict(hardware._REGISTRY))
    get_hw("cpu")  # targets are loaded before the new one is added

    @register_hw("twin", "the CPU under another name")
    def twin(hw, argument, options):
        return measured_targets.MeasuredTarget(hw, "cpu", options)

    assert get_hw("twin").name == "twin" and "twin" in available_hw()


def test_metrics_are_asked_for_by_name() -> None:
    metrics = compute_metrics(
        tiny_neonext(),
        (3, 64, 64),
        ["flops", "params", "matrix_efficiency", "latency_ms"],
        hw="ascend310",
    )
    assert list(metrics) == ["flops", "params", "matrix_efficiency", "latency_ms"]
    assert (
        metrics["flops"] > 0 and 0 < metrics["matrix_efficiency"] <= 1 and metrics["latency_ms"] > 0
    )


def test_unknown_metrics_are_user_errors() -> None:
    with pytest.raises(UserError, match="unknown metric.*accuracy"):
        compute_metrics(nn.Identity(), (3, 8, 8), ["accuracy"])

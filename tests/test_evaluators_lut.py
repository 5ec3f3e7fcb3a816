"""Latency lookup table: units measured once, networks predicted as sums, files written safely."""

import json

import pytest
import timm
from torch import nn

from evaluators.latency.lut import (
    LatencyTable,
    Network,
    PredictionError,
    UnitFill,
    build_table,
    calibrate_table,
    fill_units,
    summarize_errors,
    validate_table,
)
from evaluators.latency.result import LatencyResult
from evaluators.segments import model_units
from neonas.errors import UserError
from neonas.models import build_model
from neonas.models.family import neonext_config

SHAPE = (1, 3, 64, 64)


def tiny_neonext(depths=(2, 2), widths=(16, 32)) -> nn.Module:
    config = neonext_config("t", depths, widths, drop_path_rate=0.0, input_size=64, num_classes=10)
    return build_model(config).eval()


def fake_measure(calls: list | None = None):
    """A device on which every module takes 1 us per thousand parameters."""

    def measure(module: nn.Module, shape: tuple) -> LatencyResult:
        if calls is not None:
            calls.append(type(module).__name__)
        ms = sum(p.numel() for p in module.parameters()) / 1000 * 1e-3
        return LatencyResult(
            ms, 0.01, 0.0, 20, "cpu", "fake", "measured", shape[0], "fp32", min_ms=0.9 * ms
        )

    return measure


def new_table() -> LatencyTable:
    return LatencyTable(hw="cpu", device="fake", dtype="fp32", batch=1, settings={"threads": 1})


def test_each_distinct_unit_is_measured_once() -> None:
    calls = []
    table = new_table()
    added = table.add_units(tiny_neonext(depths=(3, 2)), SHAPE, fake_measure(calls))
    assert added == 5 == len(table.entries)
    assert sorted(calls) == sorted(
        ["SpaceToDepthStem", "NeoNeXtBlock", "Transition", "NeoNeXtBlock", "NormMlpClassifierHead"]
    )
    assert table.add_units(tiny_neonext(depths=(1, 1)), SHAPE, fake_measure(calls)) == 0


def test_prediction_is_the_sum_over_every_unit_repeats_included() -> None:
    table = new_table()
    model = tiny_neonext(depths=(3, 2))
    table.add_units(model, SHAPE, fake_measure())
    result = table.predict(model, SHAPE)
    units = model_units(model)
    assert result.median_ms == pytest.approx(
        sum(fake_measure()(unit, SHAPE).median_ms for _, unit in units)
    )
    assert result.source == "predicted" and [row.name for row in result.breakdown] == [
        p for p, _ in units
    ]


def test_fastest_samples_are_summed_alongside_the_medians() -> None:
    table = new_table()
    model = tiny_neonext()
    table.add_units(model, SHAPE, fake_measure())
    result = table.predict(model, SHAPE)
    assert result.min_ms == pytest.approx(0.9 * result.median_ms)


def test_an_additive_device_is_predicted_exactly() -> None:
    table = new_table()
    network = Network("n", tiny_neonext(), SHAPE[1:])
    fill_units(table, [network], fake_measure())
    (error,) = validate_table(table, [network], fake_measure())
    assert error.relative == pytest.approx(0.0, abs=1e-9)
    assert error.relative_min == pytest.approx(0.0, abs=1e-9)


def whole_network_overhead(factor: float):
    """The fake device, but whole networks (modules with a `stages` attribute) cost `factor` x
    the sum of their units: per-call costs that units timed in a loop hide."""
    unit_measure = fake_measure()

    def measure(module: nn.Module, shape: tuple) -> LatencyResult:
        result = unit_measure(module, shape)
        if hasattr(module, "stages"):
            ms = factor * sum(
                unit_measure(unit, shape).median_ms for _, unit in model_units(module)
            )
            return LatencyResult(ms, 0.01, 0.0, 20, "cpu", "fake", "measured", shape[0], "fp32")
        return result

    return measure


def test_calibration_removes_a_whole_network_bias() -> None:
    measure = whole_network_overhead(1.2)
    calibration = [Network("c", tiny_neonext(widths=(16, 16)), SHAPE[1:])]
    validation = [Network("v", tiny_neonext(widths=(32, 48)), SHAPE[1:])]
    table, uncalibrated = new_table(), new_table()
    for t in (table, uncalibrated):
        fill_units(t, calibration + validation, measure)
    factor = calibrate_table(table, calibration, measure)
    assert factor == pytest.approx(1.2, rel=0.05)
    (error,) = validate_table(table, validation, measure)
    (raw,) = validate_table(uncalibrated, validation, measure)
    assert abs(error.relative) < 0.05 < abs(raw.relative)


def test_validation_never_measures_a_unit_it_predicts_from() -> None:
    table = new_table()
    with pytest.raises(UserError, match="no entry"):
        validate_table(table, [Network("v", tiny_neonext(), SHAPE[1:])], fake_measure())


def test_build_measures_every_unit_before_any_whole_network_and_reports_the_fill() -> None:
    calls = []
    measure = fake_measure(calls)
    units_from = [Network("u", tiny_neonext(depths=(2, 2), widths=(16, 32)), SHAPE[1:])]
    calibration = [Network("c", tiny_neonext(depths=(1, 1), widths=(16, 32)), SHAPE[1:])]
    validation = [
        Network("v0", tiny_neonext(depths=(1, 2), widths=(16, 32)), SHAPE[1:]),
        Network("v1", tiny_neonext(depths=(2, 1), widths=(16, 48)), SHAPE[1:]),
    ]
    report = build_table(new_table(), units_from, measure, calibration, validation)
    whole = [i for i, name in enumerate(calls) if name == "NeoNeXt"]
    assert len(whole) == 3 and min(whole) == len(calls) - 3  # networks timed last, once each
    # v1's second stage is 48 wide: its transition, block and head are new units
    # unit occurrences: stem, blocks, transition, blocks, head = 5 + 6 + 6
    assert report.fill == UnitFill(networks=3, units=5 + 6 + 6, missing=3, distinct_missing=3)
    assert len(report.errors) == 2 and report.calibration == pytest.approx(1.0)


def test_calibration_survives_save_and_load(tmp_path) -> None:
    table, network = new_table(), Network("c", tiny_neonext(), SHAPE[1:])
    fill_units(table, [network], fake_measure())
    calibrate_table(table, [network], whole_network_overhead(1.1))
    table.save(tmp_path / "t.json")
    assert LatencyTable.load(tmp_path / "t.json").calibration == pytest.approx(table.calibration)


def test_a_network_with_unmeasured_units_is_a_user_error() -> None:
    table = new_table()
    table.add_units(tiny_neonext(widths=(16, 32)), SHAPE, fake_measure())
    other = tiny_neonext(widths=(32, 32))
    assert "stem" in table.missing(other, SHAPE)
    with pytest.raises(UserError, match=r"no entry for \d+ unit\(s\).*profile-lut"):
        table.predict(other, SHAPE)


def test_models_without_units_cannot_use_a_table() -> None:
    with pytest.raises(UserError, match="unit-shaped network"):
        new_table().predict(timm.create_model("resnet18"), SHAPE)


def test_a_table_answers_only_for_its_batch_size() -> None:
    with pytest.raises(UserError, match="for batch 1, not 2"):
        new_table().predict(tiny_neonext(), (2, 3, 64, 64))


def test_save_and_load_round_trip_without_leftover_files(tmp_path) -> None:
    table = new_table()
    table.add_units(tiny_neonext(), SHAPE, fake_measure())
    path = tmp_path / "tables" / "cpu.json"
    table.save(path)
    assert LatencyTable.load(path) == table
    assert [p.name for p in path.parent.iterdir()] == ["cpu.json"]
    assert json.loads(path.read_text())["format"] == "neonas-latency-table"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("{not json", "cannot read"),
        ('{"a": 1}', "not a neonas latency table"),
    ],
)
def test_loading_anything_but_a_table_is_a_user_error(tmp_path, content, message) -> None:
    path = tmp_path / "table.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=message):
        LatencyTable.load(path)


def test_error_summary_counts_networks_within_tolerance() -> None:
    errors = [PredictionError("a", 1.05, 1.0, 0.0), PredictionError("b", 0.8, 1.0, 0.0)]
    summary = summarize_errors(errors, tolerance=0.10)
    assert summary["within_tolerance"] == 0.5
    assert summary["mean_abs_error"] == pytest.approx(0.125)
    assert summary["mean_error"] == pytest.approx(-0.075)


def test_error_summary_of_fastest_samples() -> None:
    errors = [PredictionError("a", 1.0, 1.0, 0.0, predicted_min_ms=0.5, measured_min_ms=1.0)]
    assert summarize_errors(errors, statistic="min")["mean_error"] == pytest.approx(-0.5)

"""benchmarks/gpu_check.py: its CPU dry run runs every section, so it does not fail first on a GPU."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from test_train_fixtures import one_torch_thread  # noqa: F401 (autouse: one torch thread)

REPO = Path(__file__).resolve().parents[1]


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


gpu_check = load_gpu_check()


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory, ray_session):
    """One full dry run (all sections, tiny sizes) shared by the tests that read its report."""
    out = tmp_path_factory.mktemp("gpu_check")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module scope: the per-test thread fixture has not started yet
    try:
        status = gpu_check.main(["--dry-run", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    return status, json.loads((out / "gpu_check.json").read_text()), (out / "gpu_check.md")


def test_the_dry_run_runs_every_section_and_passes(dry_run) -> None:
    status, report, _ = dry_run
    sections = report["sections"]
    assert list(sections) == list(gpu_check.SECTIONS)
    not_ok = {
        name: s.get("error") or s.get("failed_checks")
        for name, s in sections.items()
        if s["status"] != "ok"
    }
    assert not not_ok and status == 0, not_ok
    assert report["dry_run"] is True
    for section in sections.values():
        assert section["seconds"] >= 0 and isinstance(section["findings"], list)
        assert all(value is not False for value in section["checks"].values())
    assert sections["environment"]["info"]["torch"] == torch.__version__


def test_every_impl_dtype_and_layout_is_checked_against_float64(dry_run) -> None:
    accuracy = dry_run[1]["sections"]["neocell_accuracy"]
    plan = gpu_check.DRY_PLAN
    cases = accuracy["cases"]
    expected = len(plan.accuracy_shapes) * len(gpu_check.IMPLS) * 2 * 2
    assert len(cases) == expected
    assert {c["impl"] for c in cases} == set(gpu_check.IMPLS)
    assert {c["dtype"] for c in cases} == {"fp32", "bf16"}
    for case in cases:
        tolerance = gpu_check.TOLERANCES[case["dtype"]]
        errors = [case[f"{k}_error"] for k in ("inference", "forward", "backward")]
        assert case["passed"] and all(0 <= e <= tolerance for e in errors), case
        if case["dtype"] == "fp32":
            assert max(errors) < 1e-5  # float32 is far inside its tolerance on the CPU


def test_speed_tables_time_every_candidate_and_name_a_winner_per_shape(dry_run) -> None:
    speed = dry_run[1]["sections"]["neocell_speed"]
    plan = gpu_check.DRY_PLAN
    shapes = len(plan.speed_shapes) * len(plan.speed_batches) * len(gpu_check.DTYPES) * 2
    # dwconv7 and one module per impl, each in two layouts, per shape, batch, dtype and mode
    assert len(speed["rows"]) == shapes * (1 + len(gpu_check.IMPLS)) * 2
    assert len(speed["winners"]) == shapes
    assert all(w["fastest_form"] in ("dense", "patch", "tiled") for w in speed["winners"])
    assert all(r["median_ms"] > 0 for r in speed["rows"])
    assert "auto" in speed["auto_rule_note"]


def test_models_commands_and_training_sections_report_their_figures(dry_run) -> None:
    sections = dry_run[1]["sections"]
    models = sections["models"]["rows"]
    assert {(r["model"], r["variant"]) for r in models} == {
        (m, v) for m in ("NeoNeXt-T folded", "ConvNeXt-T (timm)") for v in ("nchw", "channels_last")
    }
    assert all(r["images_per_s"] > 0 for r in models)
    compiled = sections["models_compiled"]
    assert set(compiled["compile"]) == {"NeoNeXt-T folded", "ConvNeXt-T (timm)"}
    for info in compiled["compile"].values():
        assert info["compiled"] or info["reason"]
    for dtype in ("fp32", "bf16"):
        report = sections["profile"]["reports"][dtype]
        assert report["latency_source"] == "measured" and report["latency_ms"] > 0
        assert report["latency_spread"] is not None
    search = sections["search"]
    assert search["statuses"]["completed"] == gpu_check.DRY_PLAN.search_trials
    assert len(search["trials"]) == gpu_check.DRY_PLAN.search_trials
    # A --hw cpu sweep measures through the station: every trial records its interval.
    assert search["intervals_recorded"] == len(search["trials"])
    assert search["checks"]["measurements_do_not_overlap"] is True
    for name in ("train", "supernet"):
        run = sections[name]
        assert run["checks"]["loss_finite"] is True
        assert run["epochs"] and run["images_per_s_last_epoch"] > 0
        assert "peak_memory_mib" in run  # None on the CPU


def test_the_markdown_names_every_section_and_the_auto_rule(dry_run) -> None:
    text = dry_run[2].read_text()
    assert "CPU dry run" in text
    for name in gpu_check.SECTIONS:
        assert f"| {name} | ok |" in text
    assert gpu_check.AUTO_RULE_NOTE in text and "fastest NeoCell form" in text


def test_a_failing_section_is_recorded_and_the_others_still_run(tmp_path, monkeypatch) -> None:
    def broken(plan, device, context):
        raise ValueError("broken on purpose")

    monkeypatch.setitem(gpu_check.SECTION_FUNCTIONS, "neocell_accuracy", broken)
    args = ["--dry-run", "--out", str(tmp_path), "--sections", "neocell_accuracy", "environment"]
    assert gpu_check.main(args) == 1
    sections = json.loads((tmp_path / "gpu_check.json").read_text())["sections"]
    assert sections["neocell_accuracy"]["status"] == "failed"
    assert sections["neocell_accuracy"]["error"] == "ValueError: broken on purpose"
    assert sections["environment"]["status"] == "ok"
    assert sections["search"] == {"status": "skipped", "reason": "not asked for"}


def test_without_cuda_and_without_dry_run_it_is_one_line_and_status_2(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", "unused"]) == 2
    err = capsys.readouterr().err
    assert "--dry-run" in err and err.count("\n") == 1


def test_overlap_counting_and_finding_recorded_keys() -> None:
    assert gpu_check.measurement_overlaps([(0, 1), (1, 2), (2.5, 3)]) == 0
    assert gpu_check.measurement_overlaps([(0, 1.5), (1, 2), (3, 4), (3.5, 5)]) == 2
    nested = {"latency_ms": 1.0, "settings": {"measured_from": 5.0, "x": [{"measured_to": 6}]}}
    assert gpu_check.find_keys(nested, ("measured_from", "measured_to")) == {
        "measured_from": 5.0,
        "measured_to": 6,
    }


def test_the_winner_is_the_fastest_concrete_form_not_auto() -> None:
    def row(module, layout, ms, resolved="-"):
        return {
            "dtype": "bf16",
            "mode": "fwd",
            "batch": 64,
            "shape": [96, 56],
            "module": module,
            "layout": layout,
            "resolved": resolved,
            "median_ms": ms,
        }

    rows = [
        row("dwconv7", "nchw", 2.0),
        row("dwconv7", "channels_last", 1.0),
        row("stage/dense", "nchw", 0.8, "dense"),
        row("stage/patch", "channels_last", 0.5, "patch"),
        row("stage/tiled", "nchw", 0.9, "tiled"),
        row("stage/auto", "nchw", 0.4, "dense"),
    ]
    (winner,) = gpu_check.speed_winners(rows)
    assert (winner["fastest_form"], winner["fastest_form_layout"]) == ("patch", "channels_last")
    assert winner["dwconv_ms"] == 1.0 and winner["dwconv_layout"] == "channels_last"
    assert winner["speedup_over_dwconv"] == pytest.approx(2.0)
    assert winner["auto_runs"] == "dense" and winner["auto_ms"] == 0.4


def test_an_accuracy_case_that_raises_is_recorded_and_the_others_run(monkeypatch) -> None:
    real = gpu_check._accuracy_case

    def tiled_breaks(reference, x, expected, impl, *args):
        if impl == "tiled":
            raise RuntimeError("no kernel")
        return real(reference, x, expected, impl, *args)

    monkeypatch.setattr(gpu_check, "_accuracy_case", tiled_breaks)
    plan = dataclasses.replace(gpu_check.DRY_PLAN, accuracy_shapes=((8, 7),), accuracy_batch=1)
    result = gpu_check.section_neocell_accuracy(plan, torch.device("cpu"), {})
    broken = [c for c in result["cases"] if c["impl"] == "tiled"]
    assert len(broken) == 4 and all(c["error"] == "RuntimeError: no kernel" for c in broken)
    assert all(c["passed"] for c in result["cases"] if c["impl"] != "tiled")
    assert [name for name, ok in result["checks"].items() if ok is False] == [
        f"8x7 tiled {dtype} {layout}" for dtype in ("fp32", "bf16") for layout in gpu_check.LAYOUTS
    ]
    assert "no kernel" in gpu_check.markdown(
        {
            "started": "now",
            "dry_run": True,
            "sections": {"neocell_accuracy": {"status": "check_failed", **result}},
        }
    )


def test_compiler_warnings_are_heard_though_torch_stops_their_propagation() -> None:
    import logging

    import torch._dynamo  # noqa: F401 (sets up the compiler's loggers)

    log = gpu_check._WarningLog()
    loggers = [logging.getLogger(name) for name in gpu_check.COMPILER_LOGGERS]
    for logger in loggers:
        logger.addHandler(log)
    try:
        logging.getLogger("torch._dynamo.convert_frame").warning("hit the recompile limit\nmore")
        logging.getLogger("torch._dynamo.convert_frame").info("not a warning")
    finally:
        for logger in loggers:
            logger.removeHandler(log)
    assert log.messages == ["hit the recompile limit"]


def test_the_speed_section_stops_at_its_budget_and_saves_what_it_timed(tmp_path) -> None:
    # The first H200 run did not finish this section in 500 s and kept nothing of it.
    plan = dataclasses.replace(gpu_check.DRY_PLAN, speed_budget_s=0.0, rounds=1)
    saved = []
    context = {"save_partial": lambda partial: saved.append(json.loads(json.dumps(partial)))}
    result = gpu_check.section_neocell_speed(plan, torch.device("cpu"), context)
    groups = len(plan.speed_batches) * len(gpu_check.DTYPES) * len(plan.speed_shapes)
    assert len(result["untimed"]) == groups - 1  # the first group starts inside any budget
    assert result["checks"]["every_shape_timed"] is None  # undecided, not passed
    assert "not timed" in result["findings"][0]
    assert len(saved) == 1 and saved[0]["rows"] == result["rows"] and saved[0]["winners"]


def test_a_killed_section_leaves_its_partial_results_in_the_report(tmp_path) -> None:
    report = {"started": "now", "dry_run": True, "sections": {}}
    save = gpu_check._partial_saver(report, "neocell_speed", tmp_path)
    save({"protocol": "p", "rows": [], "winners": []})
    written = json.loads((tmp_path / "gpu_check.json").read_text())
    assert written["sections"]["neocell_speed"]["status"] == "interrupted"
    assert "| neocell_speed | interrupted |" in (tmp_path / "gpu_check.md").read_text()

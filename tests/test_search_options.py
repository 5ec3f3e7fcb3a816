"""`neonas search`'s options are declared once (neonas/search/settings.py, SEARCH_OPTIONS): the
argparse options, the help's defaults, the option <-> setting mapping and the resume rule all
derive from the declarations, so none of them can drift from the settings model."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from neonas.cli import build_parser
from neonas.commands.search import add_arguments
from neonas.errors import UserError
from neonas.options import check_resumed, given_settings, resumable, shown
from neonas.search.run_folder import RunFolder
from neonas.search.settings import (
    OPTION_FLAGS,
    SEARCH_OPTIONS,
    EvalSettings,
    SearchSettings,
    setting_default,
)

OLD_RUN = Path(__file__).parent / "data" / "old_run" / "run.json"  # as main wrote it, 2026-12-03


def search_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neonas search")
    add_arguments(parser)
    return parser


def squeezed(text: str) -> str:
    """Text without whitespace: argparse wraps the help."""
    return "".join(text.split())


def test_each_option_and_setting_is_declared_once() -> None:
    flags = [option.flag for option in SEARCH_OPTIONS]
    settings = [option.setting for option in SEARCH_OPTIONS]
    assert len(set(flags)) == len(flags) and len(set(settings)) == len(settings)
    for setting in settings:  # every declared setting is a field of the model
        setting_default(setting)


@pytest.mark.parametrize("option", SEARCH_OPTIONS, ids=lambda option: option.flag)
def test_every_declared_option_is_in_argparse_with_the_model_default_in_its_help(option) -> None:
    parser = search_parser()
    # "given" and "left at its default" stay apart: argparse has no default, the model has it
    assert getattr(parser.parse_args([]), option.dest) is None
    default = setting_default(option.setting)
    text = option.help_text({option.setting: default})
    assert squeezed(f"{option.flag} {option.metavar or ''}") in squeezed(parser.format_help())
    assert squeezed(text) in squeezed(parser.format_help())
    # a default that is one value is shown; one that depends (None in the model) is said in words
    assert default is None or f"default {shown(default)}" in text, option.flag


def test_the_help_defaults_are_the_models() -> None:
    help_text = " ".join(search_parser().format_help().split()).replace("- ", "-")
    assert f"(default {SearchSettings.model_fields['trials'].default})" in help_text
    assert f"(default {EvalSettings.model_fields['epochs'].default};" in help_text
    assert f"(default {EvalSettings.model_fields['max_train_images'].default})" in help_text
    assert f"(default {EvalSettings.model_fields['latency_weight'].default:g}," in help_text


def test_given_options_become_their_settings_converted() -> None:
    args = build_parser().parse_args(
        [
            "search",
            "--budget",
            "4.4G",
            "--time-budget",
            "2m",
            "--train-images",
            "9",
            "--trials",
            "3",
        ]
    )
    assert given_settings(args, SEARCH_OPTIONS) == {
        "budget_flops": 4_400_000_000,
        "time_budget_s": 120.0,
        "eval.max_train_images": 9,
        "trials": 3,
    }


def recorded_defaults() -> dict:
    return {option.setting: setting_default(option.setting) for option in SEARCH_OPTIONS}


def other_value(setting: str):
    value = setting_default(setting)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return "other"
    return value + 1


@pytest.mark.parametrize(
    "option",
    [option for option in SEARCH_OPTIONS if not option.resumable],
    ids=lambda option: option.flag,
)
def test_a_defining_option_changed_on_resume_is_refused_in_one_line(option) -> None:
    given = {option.setting: other_value(option.setting)}
    with pytest.raises(UserError) as refused:
        check_resumed(
            given, recorded_defaults(), SEARCH_OPTIONS, run="run old", list_resumable=True
        )
    message = str(refused.value)
    assert message.startswith(f"{option.flag} ") and "\n" not in message
    assert "a resume may change only" in message
    # given again unchanged, it is accepted
    check_resumed(
        {option.setting: setting_default(option.setting)}, recorded_defaults(), SEARCH_OPTIONS
    )


def test_the_resumable_options_may_change() -> None:
    given = {setting: other_value(setting) for setting in resumable(SEARCH_OPTIONS)}
    check_resumed(given, recorded_defaults(), SEARCH_OPTIONS)
    assert set(resumable(SEARCH_OPTIONS)) == {
        "trials",
        "max_failures",
        "time_budget_s",
        "concurrency",
        "gpus_per_trial",
        "address",
        "storage",
    }
    assert [OPTION_FLAGS[key] for key in ("budget_flops", "eval.max_train_images")] == [
        "--budget",
        "--train-images",
    ]


@pytest.fixture
def old_run(tmp_path) -> RunFolder:
    """A run folder whose run.json main wrote before the options were declared once."""
    folder = tmp_path / "old-format"
    folder.mkdir()
    shutil.copy(OLD_RUN, folder / "run.json")
    return RunFolder(folder)


def test_a_run_json_of_the_old_format_resumes_with_its_settings(old_run) -> None:
    from neonas.search.driver import resumed_settings

    stored = json.loads(OLD_RUN.read_text())["settings"]
    settings = resumed_settings(old_run, {"trials": 5, "space": "tiny", "eval.hw": "ascend"})
    assert settings.trials == 5 and settings.results_dir == str(old_run.path.parent)
    assert settings.model_dump(mode="json") == {
        **stored,
        "trials": 5,
        "results_dir": str(old_run.path.parent),
    }
    with pytest.raises(UserError, match=r"^--budget 5000000 differs from the 7000000 run"):
        resumed_settings(old_run, {"budget_flops": 5_000_000})
    with pytest.raises(UserError, match=r"^--latency-weight -0.1 differs from the -0.07 run"):
        resumed_settings(old_run, {"eval.latency_weight": -0.1})


def test_a_rule_broken_by_a_resumed_option_is_one_line(old_run) -> None:
    from neonas.search.driver import resumed_settings

    with pytest.raises(UserError, match=r"^--gpus-per-trial 1.5: Ray gives a trial a share"):
        resumed_settings(old_run, {"gpus_per_trial": 1.5})


def test_defaults_that_depend_on_other_options_are_decided_by_the_model(tmp_path) -> None:
    from neonas.commands.search import settings_from_args
    from neonas.signals import DEFAULT_WITH_DATA, DEFAULT_ZERO_COST

    scalar = EvalSettings(objective="scalar", latency_budget_ms=2.0)
    assert scalar.latency_target_ms == 2.0  # the scalar reward's T: the latency budget
    assert (
        EvalSettings(
            objective="scalar", latency_budget_ms=2.0, latency_target_ms=1.0
        ).latency_target_ms
        == 1.0
    )
    args = build_parser().parse_args(["search", "--latency-budget", "3ms", "--data", str(tmp_path)])
    settings = settings_from_args(args)
    assert settings.eval.latency_target_ms == 3.0 and settings.eval.signal == DEFAULT_WITH_DATA
    assert (
        settings_from_args(build_parser().parse_args(["search"])).eval.signal == DEFAULT_ZERO_COST
    )


def test_the_default_sampler_follows_the_signal_and_a_given_one_wins() -> None:
    zero_cost = SearchSettings(name="a")
    supernet = SearchSettings(name="b", eval={"supernet": "last.pt", "data": "data"})
    short = SearchSettings(name="c", eval=EvalSettings(signal="short-training", data="data"))
    assert (zero_cost.sampler, supernet.sampler, short.sampler) == ("tpe", "gp", "gp")
    given = SearchSettings(name="d", sampler="nsga2", eval={"supernet": "x", "data": "y"})
    assert given.sampler == "nsga2"
    # A run records the sampler it used: a resume reads it back, whatever today's default.
    recorded = SearchSettings.model_validate({**supernet.model_dump(), "sampler": "tpe"})
    assert recorded.sampler == "tpe"


def test_the_default_validation_images_follow_the_signal_and_a_given_number_wins(tmp_path) -> None:
    from neonas.commands.search import settings_from_args

    supernet = SearchSettings(name="a", eval={"supernet": "last.pt", "data": "data"})
    short = SearchSettings(name="b", eval=EvalSettings(signal="short-training", data="data"))
    assert (supernet.eval.max_val_images, short.eval.max_val_images) == (2000, 500)
    given = EvalSettings(supernet="last.pt", data="data", max_val_images=300)
    assert given.max_val_images == 300
    # run.json records the number: a run made when the supernet's default was 500 keeps it
    recorded = SearchSettings.model_validate(
        {**supernet.model_dump(), "eval": {**supernet.eval.model_dump(), "max_val_images": 500}}
    )
    assert recorded.eval.max_val_images == 500
    line = ["search", "--supernet", "last.pt", "--data", str(tmp_path), "--val-images", "64"]
    assert settings_from_args(build_parser().parse_args(line)).eval.max_val_images == 64
    with pytest.raises(UserError, match=r"^--val-images sets how trials .* synflow validates"):
        settings_from_args(build_parser().parse_args(["search", "--val-images", "64"]))


def test_short_training_with_too_few_steps_is_warned_about(tmp_path) -> None:
    from test_train_fixtures import make_image_folder

    from neonas.search.checks import SHORT_TRAINING_MIN_STEPS, short_training_note

    data = str(make_image_folder(tmp_path / "images", classes=2, train_per_class=20))
    short = {"signal": "short-training", "data": data}  # 40 images: 1 step of 64 per epoch
    note = short_training_note(SearchSettings(name="a", eval=short))
    assert note is not None and note.startswith("warning: short training makes 6 optimizer steps")
    assert "40 training images, batch 64, 6 epochs" in note
    enough = {**short, "batch_size": 4, "epochs": SHORT_TRAINING_MIN_STEPS // 10}  # 10 a epoch
    assert short_training_note(SearchSettings(name="b", eval=enough)) is None
    assert short_training_note(SearchSettings(name="c", eval={"data": data})) is None

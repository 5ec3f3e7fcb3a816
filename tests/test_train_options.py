"""`train` and `supernet train` declare their options once (neonas/train/options.py), the shared
ones once for both; parsers, help defaults and what a resume records derive from that, and a
resume applies the one rule of neonas/options.py."""

from __future__ import annotations

import argparse

import pytest

from neonas.commands import supernet as supernet_command
from neonas.commands import train as train_command
from neonas.errors import UserError
from neonas.options import check_resumed, shown
from neonas.train.options import (
    RECIPE_FIELDS,
    RESUMED_OPTIONS,
    SUPERNET_DEFAULTS,
    SUPERNET_RUN_OPTIONS,
    SUPERNET_TRAIN_OPTIONS,
    TRAIN_OPTIONS,
    TRAINING_OPTIONS,
)


def parsed(module, *argv: str) -> tuple[argparse.Namespace, argparse.ArgumentParser]:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(list(argv)), parser


@pytest.mark.parametrize(
    ("module", "argv", "options"),
    [(train_command, (), TRAIN_OPTIONS), (supernet_command, ("train",), SUPERNET_TRAIN_OPTIONS)],
    ids=["train", "supernet train"],
)
def test_every_declared_option_is_on_its_command_without_an_argparse_default(
    module, argv, options
) -> None:
    args, _ = parsed(module, *argv)
    for option in options:
        assert getattr(args, option.dest) is None, option.flag


def test_the_shared_options_are_one_declaration_in_both_commands() -> None:
    assert set(TRAINING_OPTIONS) <= set(TRAIN_OPTIONS) & set(SUPERNET_TRAIN_OPTIONS)
    for argv, module in (
        (["--lr", "0.5"], train_command),
        (["train", "--lr", "0.5"], supernet_command),
    ):
        assert parsed(module, *argv)[0].lr == 0.5


def test_supernet_help_shows_the_defaults_the_job_uses() -> None:
    from neonas.supernet.training import SupernetJob

    job = SupernetJob(output_dir="x")
    for setting in ("batch_size", "seed", "sampling"):
        assert SUPERNET_DEFAULTS[setting] == getattr(job, setting)
    text = {o.setting: o.help_text(SUPERNET_DEFAULTS) for o in SUPERNET_TRAIN_OPTIONS}
    assert f"default {shown(job.batch_size)}" in text["batch_size"]
    assert f"default {job.sampling}" in text["sampling"]


def test_what_a_resume_records_derives_from_the_declarations() -> None:
    # as listed by hand before the declarations: runs recorded then resume now
    assert set(RESUMED_OPTIONS) == {
        "max_train_images",
        "max_val_images",
        "device_batch",
        "init_path",
    }
    assert set(RECIPE_FIELDS) == {
        "epochs", "batch_size", "lr", "warmup_epochs", "weight_decay", "opt", "drop_path",
        "image_size", "seed", "ema",
    }  # fmt: skip
    assert set(SUPERNET_RUN_OPTIONS) == {
        "epochs", "batch_size", "lr", "seed", "random_subnets", "sampling", "max_train_images",
        "max_val_images", "calib_images",
    }  # fmt: skip


def test_train_resume_names_a_recorded_option_by_its_flag_and_lets_the_others_change() -> None:
    recorded = {"max_train_images": 8, "init_path": None, "device_batch": 4}
    with pytest.raises(UserError, match=r"^--init a.pt differs from this training, which started"):
        check_resumed({"init_path": "a.pt"}, recorded, TRAIN_OPTIONS)
    with pytest.raises(UserError) as refused:
        check_resumed({"max_train_images": 16}, recorded, TRAIN_OPTIONS)
    assert str(refused.value) == (
        "--max-train-images 16 differs from the 8 this training started with: leave it out to "
        "continue, or start a new --output"
    )
    check_resumed({"stop_after": 2, "address": "auto", "device_batch": 4}, recorded, TRAIN_OPTIONS)

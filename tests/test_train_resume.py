"""The one rule `train --resume`, `supernet train --resume` and `search --resume` apply to options
given again (neonas/options.py)."""

from __future__ import annotations

import pytest

from neonas.errors import UserError
from neonas.options import check_resumed

RECORDED = {"epochs": 3, "lr": None, "scale": [0.08, 1.0], "batch_size": 16}


def test_options_equal_to_the_recorded_ones_are_accepted():
    check_resumed({"epochs": 3, "batch_size": 16, "scale": (0.08, 1.0)}, RECORDED)
    check_resumed({}, RECORDED)


def test_another_value_is_refused_naming_the_option_and_both_values():
    with pytest.raises(UserError) as caught:
        check_resumed({"epochs": 3, "batch_size": 32}, RECORDED)
    assert str(caught.value) == (
        "--batch-size 32 differs from the 16 this training started with: leave it out to "
        "continue, or start a new --output"
    )


def test_a_value_for_an_option_the_run_started_without_is_refused():
    with pytest.raises(UserError, match="--lr 0.003 differs from this training, which started"):
        check_resumed({"lr": 3e-3}, RECORDED)


def test_flags_name_the_option_as_the_command_line_spells_it():
    with pytest.raises(UserError, match=r"^recipe epochs 4 differs from the 3"):
        check_resumed({"epochs": 4}, RECORDED, names={"epochs": "recipe epochs"})


def test_options_a_record_lacks_are_not_checked():
    check_resumed({"sampling": "uniform"}, RECORDED)  # runs from before --sampling

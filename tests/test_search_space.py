"""Search spaces as data: loading, validation, and that every sampled point builds."""

from __future__ import annotations

import random

import optuna
import pytest
import torch

from neonas.arch import ArchConfig
from neonas.errors import UserError
from neonas.space import available_spaces, load_space, space_from_yaml

TINY_YAML = """
name: mini
fixed: {input_size: 32, num_classes: 10, stem_patch: 2}
stages:
  - depth: {low: 1, high: 2}
    width: [16, 32]
    cells: {shares: [[1.0], [0.5, 0.5]], size: [2, 3], shift: [true, false]}
  - sampling: [[2, 1], [3, 2], [1, 1]]
    depth: 1
    width: {low: 32, high: 64, step: 16}
    cells: {shares: [[1.0]], size: [2, 4]}
"""


def test_shipped_spaces_are_listed_and_load() -> None:
    assert {"neonext", "tiny"} <= set(available_spaces())
    for name in ("neonext", "tiny"):
        assert load_space(name).name == name


def test_neonext_tiny_is_a_point_of_the_default_space() -> None:
    from neonas.models import variant_config

    space = load_space("neonext")
    tiny = variant_config("neonext_tiny")
    params = space.params_of(tiny)
    assert params is not None
    assert space.from_params(params).model_copy(update={"name": tiny.name}) == tiny


def test_default_space_searches_fractional_ratios_and_where_to_downsample() -> None:
    plans = load_space("neonext").plan_names
    assert "2:1 2:1 2:1" in plans
    assert any("3:2" in plan for plan in plans)  # 2/3 scaling
    assert any(plan.startswith("1:1") for plan in plans)  # down-sampling moved to a later stage


def test_every_plan_gives_integral_maps_that_fit_the_cells() -> None:
    for name in ("neonext", "tiny"):
        space = load_space(name)
        rng = random.Random(0)
        for _ in range(300):
            config = space.sample(rng)
            for stage, (height, width) in zip(config.stages, config.feature_sizes(), strict=True):
                assert all(cell.size <= min(height, width) for cell in stage.cells)


def test_widths_are_multiples_of_the_ascend_fractal() -> None:
    rng = random.Random(1)
    space = load_space("neonext")
    for _ in range(100):
        assert all(stage.width % 16 == 0 for stage in space.sample(rng).stages)


def test_every_sampled_tiny_network_builds_and_runs() -> None:
    from neonas.models import build_model

    space = load_space("tiny")
    rng = random.Random(2)
    for _ in range(12):
        config = space.sample(rng)
        with torch.no_grad():
            out = build_model(config).eval()(torch.randn(2, 3, 32, 32))
        assert out.shape == (2, 10)


def test_sampling_is_reproducible_from_the_seed() -> None:
    space = load_space("neonext")
    first = [space.sample(random.Random(7)) for _ in range(3)]
    again = [space.sample(random.Random(7)) for _ in range(3)]
    assert first == again


def test_optuna_suggestion_replays_from_its_params() -> None:
    space = load_space("neonext")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    trial = study.ask()
    config = space.suggest(trial)
    assert isinstance(config, ArchConfig)
    assert space.from_params(trial.params) == config


def test_single_valued_choices_are_not_parameters() -> None:
    space = space_from_yaml(TINY_YAML)
    study = optuna.create_study()
    trial = study.ask()
    space.suggest(trial)
    assert "s1.depth" not in trial.params  # depth: 1 is fixed
    assert "s1.shares" not in trial.params  # one share pattern


def test_plans_that_cannot_build_are_never_offered() -> None:
    # 16x16 after the stem: 3 -> 2 would give 10.67, so only 2:1 and 1:1 remain.
    assert space_from_yaml(TINY_YAML).plan_names == ["2:1", "1:1"]


def test_params_outside_the_space_are_refused() -> None:
    space = load_space("tiny")
    params = space.params_of(space.sample(random.Random(0)))
    assert params is not None
    with pytest.raises(UserError, match="s0.width"):
        space.from_params({**params, "s0.width": 48})
    wide = space.sample(random.Random(0))
    stages = list(wide.stages)
    stages[0] = stages[0].model_copy(update={"width": 512})
    assert space.params_of(wide.model_copy(update={"stages": tuple(stages)})) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("width: [16, 32]", "width: [16, 24]"),
            "stages.0.width: 24 is not a multiple of channel_multiple 16",
        ),
        (("[[1.0], [0.5, 0.5]]", "[[1.0], [0.5, 0.4]]"), "stages.0.cells.shares"),
        (
            ("  - sampling: [[2, 1], [3, 2], [1, 1]]\n    depth", "  - depth"),
            "stages.1.sampling: missing",
        ),
        (("depth: 1\n", "depth: 1\n    colour: red\n"), "stages.1.colour: unknown field"),
        (("stem_patch: 2", "stem_patch: 2, dropout: 0.1"), "fixed: unknown field(s) ['dropout']"),
        (("[[2, 1], [3, 2], [1, 1]]", "[[3, 2]]"), "no combination of the transitions"),
        (("size: [2, 3]", "size: [2, 40]"), "no combination"),
        (("{low: 32, high: 64, step: 16}", "{low: 32, high: 60, step: 16}"), "stages.1.width"),
        (("name: mini", "name: mini\nfixed2: 1"), "fixed2: unknown field"),
        (("input_size: 32", "input_size: 31"), "input_size 31 is not a multiple of stem_patch"),
        (("[[1.0], [0.5, 0.5]]", "[[0.97, 0.03]]"), "every group needs at least 1 channel"),
    ],
)
def test_invalid_space_is_one_clear_error_naming_the_field(
    change: tuple[str, str], message: str
) -> None:
    text = TINY_YAML.replace(*change)
    assert text != TINY_YAML
    with pytest.raises(UserError) as err:
        space_from_yaml(text, "bad.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("bad.yaml") and "\n" not in str(err.value)


def test_unknown_space_name_lists_the_shipped_ones() -> None:
    with pytest.raises(UserError, match="use one of .*neonext.*tiny"):
        load_space("imagenet21k")


def test_missing_space_file_is_a_user_error(tmp_path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_space(tmp_path / "nope.yaml")


def test_not_yaml_is_a_user_error() -> None:
    with pytest.raises(UserError, match="not valid YAML"):
        space_from_yaml("stages: [1, 2", "broken.yaml")


# --- canonical forms: one network, one ArchConfig ---------------------------------------------


def _stage_config(cells: list[dict], width: int = 64) -> ArchConfig:
    return ArchConfig.from_dict(
        {
            "input_size": 32,
            "num_classes": 10,
            "stem_patch": 2,
            "stages": [{"depth": 1, "width": width, "cells": cells}],
        }
    )


def _cell_output(cells: list[dict], width: int, x: torch.Tensor, weights: list) -> torch.Tensor:
    from neonas.ops import CellGroup, NeoCell

    cell = NeoCell(width, [CellGroup(**c) for c in cells])
    with torch.no_grad():
        for param, value in zip([*cell.left, *cell.right], weights, strict=True):
            param.copy_(value)
    return cell(x)


def test_reordered_groups_are_one_network_with_channels_permuted() -> None:
    # [0.75, 0.25] with sizes (4, 2) is [0.25, 0.75] with sizes (2, 4): same outputs once the
    # channels (and each channel's matrices) are reordered alike.
    big, small = (
        {"size": 4, "share": 0.75, "shift": True},
        {"size": 2, "share": 0.25, "shift": False},
    )
    first = _stage_config([big, small])
    second = _stage_config([small, big])
    assert first != second
    assert first.canonical() == second.canonical()
    torch.manual_seed(0)
    x = torch.randn(1, 64, 8, 8)
    l_big, r_big = torch.randn(48, 4, 4), torch.randn(48, 4, 4)
    l_small, r_small = torch.randn(16, 2, 2), torch.randn(16, 2, 2)
    out_first = _cell_output([big, small], 64, x, [l_big, l_small, r_big, r_small])
    permuted = torch.cat([x[:, 48:], x[:, :48]], dim=1)
    out_second = _cell_output([small, big], 64, permuted, [l_small, l_big, r_small, r_big])
    assert torch.allclose(torch.cat([out_second[:, 16:], out_second[:, :16]], dim=1), out_first)


def test_two_unshifted_groups_of_one_size_are_one_group() -> None:
    half = {"size": 3, "share": 0.5, "shift": False}
    split = _stage_config([half, half])
    whole = _stage_config([{"size": 3, "share": 1.0, "shift": False}])
    assert split.canonical() == whole.canonical() == whole
    torch.manual_seed(1)
    x = torch.randn(1, 64, 9, 9)
    left, right = torch.randn(64, 3, 3), torch.randn(64, 3, 3)
    out_split = _cell_output([half, half], 64, x, [left[:32], left[32:], right[:32], right[32:]])
    out_whole = _cell_output([{"size": 3, "share": 1.0}], 64, x, [left, right])
    assert torch.allclose(out_split, out_whole)


def test_shifted_halves_merge_only_when_their_shift_split_is_the_whole_groups() -> None:
    # 64 channels, shift 2: halves give 16+16 per shift, the whole 32 per shift: one network.
    two = {"size": 2, "share": 0.5, "shift": True}
    assert _stage_config([two, two]).canonical().stages[0].cells == (
        _stage_config([{"size": 2, "share": 1.0, "shift": True}]).stages[0].cells
    )
    # shift 3: halves give 10+10, 10+10, 12+12 channels per shift, the whole 21, 21, 22: not one.
    three = {"size": 3, "share": 0.5, "shift": True}
    kept = _stage_config([three, three]).canonical()
    assert len(kept.stages[0].cells) == 2


def test_neonext_tiny_is_already_canonical() -> None:
    from neonas.models import variant_config

    tiny = variant_config("neonext_tiny")
    assert tiny.canonical() == tiny


def test_the_space_gives_one_config_and_one_key_per_network() -> None:
    space = space_from_yaml(
        TINY_YAML.replace("[[1.0], [0.5, 0.5]]", "[[1.0], [0.25, 0.75], [0.75, 0.25]]")
    )
    common = {"s0.depth": 1, "s0.width": 32, "s1.width": 32, "s1.c0.size": 2}
    common["transitions"] = space.plan_names[0]
    a = {**common, "s0.shares": "0.75,0.25", "s0.c0.size": 3, "s0.c1.size": 2}
    a |= {"s0.c0.shift": False, "s0.c1.shift": True}
    b = {**common, "s0.shares": "0.25,0.75", "s0.c0.size": 2, "s0.c1.size": 3}
    b |= {"s0.c0.shift": True, "s0.c1.shift": False}
    first, second = space.from_params(a), space.from_params(b)
    assert first == second
    assert space.key(first) == space.key(second)
    assert space.params_of(first) == b  # the canonical params: groups ordered by size
    assert space.from_params(space.params_of(first)) == first
    other = space.from_params({**b, "s0.c1.size": 2, "s0.c1.shift": True})
    assert space.key(other) != space.key(first)


def test_a_network_key_leaves_out_the_config_name() -> None:
    # A resumed run renames its stored configs 'run-tNNNN'; a new proposal named otherwise must
    # still match them, or the run evaluates the same network twice.
    space = load_space("tiny")
    config = space.sample(random.Random(0))
    renamed = config.model_copy(update={"name": "run-t0007"})
    assert renamed != config
    assert space.key(renamed) == space.key(config)


def test_sampled_points_are_canonical() -> None:
    space = load_space("neonext")
    rng = random.Random(3)
    configs = [space.sample(rng) for _ in range(200)]
    assert len(configs) == 200
    assert all(config.canonical() == config for config in configs)


def test_network_count_of_a_space_by_hand() -> None:
    # One stage, width 32, shares [1.0] or [0.5, 0.5], sizes 2 or 4, no shift: 2 + 4 points;
    # distinct networks: 2x2, 4x4, and 2x2 + 4x4 halves (2+2 and 4+4 halves repeat the wholes;
    # (2, 4) and (4, 2) are one) -> 3 networks.
    space = space_from_yaml(
        """
name: count
fixed: {input_size: 32, num_classes: 10, stem_patch: 2}
stages:
  - depth: 1
    width: 32
    cells: {shares: [[1.0], [0.5, 0.5]], size: [2, 4]}
"""
    )
    counted = space.count_networks()
    assert counted["points"] == 6
    assert counted["networks"] == 3
    assert counted["stages"] == [{"cell_choices": 6, "distinct": 3}]


def test_balanced_draws_take_every_value_equally_often() -> None:
    space = load_space("tiny")
    configs = space.sample_balanced(random.Random(5), 20)  # 20: a multiple of 2, 4, 10 values
    assert all(space.contains(config) for config in configs)
    plans = [tuple(tuple(stage.sampling) for stage in config.stages[1:]) for config in configs]
    assert sorted(plans.count(plan) for plan in set(plans)) == [2] * len(space.plans)
    for index in range(3):
        depths = [config.stages[index].depth for config in configs]
        assert depths.count(1) == depths.count(2) == 10
    widths = [config.stages[2].width for config in configs]  # 48, 64, 80, 96
    assert sorted(widths.count(width) for width in (48, 64, 80, 96)) == [5, 5, 5, 5]
    # Uniform draws of the same count leave some value under-represented.
    uniform = [space.sample(random.Random(seed)) for seed in range(20)]
    assert (
        any([c.stages[i].depth for c in uniform].count(1) != 10 for i in range(3))
        or len({tuple(tuple(s.sampling) for s in c.stages[1:]) for c in uniform}) < 10
    )
    assert space.sample_balanced(random.Random(5), 20) == configs  # reproducible

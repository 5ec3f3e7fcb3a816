"""Search spaces as data: loading, validation, and that every sampled point builds."""

from __future__ import annotations

import random

import optuna
import pytest
import torch

from neonas.arch import ArchConfig
from neonas.errors import UserError
from neonas.search.space import available_spaces, load_space, space_from_yaml

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

"""Zero-cost accuracy proxies (evaluators/proxies.py) on real tiny-space networks."""

from __future__ import annotations

import math
import random

import pytest
import torch

from evaluators.proxies import naswot_score, synflow_score, zero_cost_score
from neonas.models import build_model
from neonas.search.space import load_space


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    return build_model(load_space("tiny").sample(random.Random(0)))


def test_naswot_is_finite_and_deterministic(tiny_model: torch.nn.Module) -> None:
    first = naswot_score(tiny_model, (3, 32, 32), batch_size=8)
    assert math.isfinite(first)
    assert naswot_score(tiny_model, (3, 32, 32), batch_size=8) == first


def test_naswot_grows_with_the_number_of_units() -> None:
    # More channels, same shape otherwise: more units to tell 16 images apart.
    space = load_space("tiny")
    config = space.sample(random.Random(1))
    narrow_stages = [stage.model_copy(update={"width": 16}) for stage in config.stages]
    wide_stages = [stage.model_copy(update={"width": 96}) for stage in config.stages]
    narrow = build_model(config.model_copy(update={"stages": tuple(narrow_stages)}))
    wide = build_model(config.model_copy(update={"stages": tuple(wide_stages)}))
    assert naswot_score(wide, (3, 32, 32)) > naswot_score(narrow, (3, 32, 32))


def test_naswot_leaves_the_model_as_it_found_it(tiny_model: torch.nn.Module) -> None:
    tiny_model.train()
    weights = {k: v.clone() for k, v in tiny_model.state_dict().items() if "running" not in k}
    naswot_score(tiny_model, (3, 32, 32), batch_size=4)
    assert tiny_model.training
    after = tiny_model.state_dict()
    assert all(torch.equal(after[key], value) for key, value in weights.items())


def test_synflow_restores_signs_dtype_and_mode(tiny_model: torch.nn.Module) -> None:
    tiny_model.eval()
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    score = synflow_score(tiny_model, (3, 32, 32))
    assert math.isfinite(score)
    assert not tiny_model.training
    after = tiny_model.state_dict()
    assert all(after[k].dtype == v.dtype and torch.allclose(after[k], v) for k, v in before.items())


def test_unknown_proxy_is_refused(tiny_model: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match="use one of naswot, synflow"):
        zero_cost_score(tiny_model, (3, 32, 32), proxy="zico")

"""The recipes' training transforms draw hundreds of augmentations without an error."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch
from PIL import Image
from test_train_fixtures import (
    one_torch_thread,  # noqa: F401 (an autouse fixture: one torch thread per test)
    write_tiny_config,
)
from timm.data.auto_augment import AugmentOp, posterize, rand_augment_transform

from neonas.train.augment import data_config, posterize_keeps_a_bit, train_transform
from neonas.train.model_spec import build_training_model
from neonas.train.recipe import get_recipe

DRAWS = 400


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The data config of a tiny NeoNeXt (16 px), as `neonas train` resolves it."""
    config = write_tiny_config(tmp_path_factory.mktemp("augment") / "tiny.yaml")
    model, _ = build_training_model(None, str(config), num_classes=3)
    return data_config(model, get_recipe("full"))


@pytest.fixture
def image():
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))


def draw(transform, image, count: int = DRAWS) -> list[torch.Tensor]:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    return [transform(image) for _ in range(count)]


def test_the_full_recipes_training_transform_draws_hundreds_of_images(inputs, image):
    recipe = get_recipe("full")
    assert recipe.auto_augment == "rand-m9-n2-mstd0.5-inc1"
    images = draw(train_transform(recipe, inputs), image)
    assert all(tensor.shape == (3, 16, 16) for tensor in images)
    assert len({tensor.sum().item() for tensor in images}) > DRAWS // 2  # they do differ


# Magnitudes at which timm asks posterize for 0 bits (Pillow 13 raises): RandAugment `inc1` at
# 10 and above mmax, plain Posterize at 0, and AutoAugment v0's Posterize. `p1` applies every
# chosen op, so posterize runs on about 1 image in 8.
EXTREMES = {
    "magnitude 10": "rand-m10-n2-mstd0-inc1-p1",
    "magnitude 9 std 0.5, every op": "rand-m9-n2-mstd0.5-inc1-p1",
    "magnitude 30, the max with mmax30": "rand-m30-n2-mstd0.5-inc1-mmax30-p1",
    "magnitude 0, not increasing": "rand-m0-n2-mstd0-p1",
    "autoaugment v0": "v0",
}


@pytest.mark.parametrize("auto_augment", EXTREMES.values(), ids=EXTREMES.keys())
def test_extreme_magnitudes_draw_hundreds_of_images(inputs, image, auto_augment):
    recipe = dataclasses.replace(get_recipe("full"), auto_augment=auto_augment)
    images = draw(train_transform(recipe, inputs), image)
    assert all(torch.isfinite(tensor).all() for tensor in images)


def only_posterize(magnitude: int):
    """RandAugment that posterizes every image at one magnitude (timm's `inc1` scale)."""
    config = f"rand-m{magnitude}-n1-mstd0-inc1-p1"
    return rand_augment_transform(config, {}, transforms=["PosterizeIncreasing"])


def test_posterize_at_the_top_magnitude_keeps_one_bit(image):
    out = np.asarray(posterize_keeps_a_bit(only_posterize(10))(image))
    assert set(np.unique(out)) == {0, 128}  # the strongest posterize Pillow allows


def test_posterize_below_the_top_keeps_the_bits_timm_gives(image):
    # magnitude 5: timm keeps 4 - int(5 / 10 * 4) = 2 bits
    out = np.asarray(posterize_keeps_a_bit(only_posterize(5))(image))
    assert set(np.unique(out)) == {0, 64, 128, 192}
    # magnitude 9 (the recipe's mean): 1 bit already
    assert set(np.unique(np.asarray(posterize_keeps_a_bit(only_posterize(9))(image)))) == {0, 128}


def test_only_the_ops_of_the_built_transform_change_not_timms_tables():
    fixed = posterize_keeps_a_bit(only_posterize(10))
    assert fixed.ops[0].aug_fn is not posterize
    assert AugmentOp("PosterizeIncreasing", prob=1.0, magnitude=10).aug_fn is posterize

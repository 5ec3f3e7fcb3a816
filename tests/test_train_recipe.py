"""Recipe presets build the optimiser, schedule and augmentation the paper describes."""

from __future__ import annotations

import inspect

import pytest
import timm
import torch
from timm.data import Mixup
from timm.data.auto_augment import RandAugment
from timm.data.random_erasing import RandomErasing
from timm.loss import SoftTargetCrossEntropy

from neonas.errors import UserError
from neonas.search.settings import EvalSettings
from neonas.train import recipe as recipe_module
from neonas.train.augment import build_mixup, data_config, train_loss, train_transform
from neonas.train.optim import build_optimizer, build_scheduler
from neonas.train.recipe import (
    RECIPES,
    SHORT_TRAINING_DEFAULTS,
    Recipe,
    canonical_name,
    get_recipe,
    parse_assignments,
    warmup_note,
)
from neonas.train.short_training import short_train


def small_model() -> torch.nn.Module:
    return timm.create_model("test_resnet", pretrained=False, num_classes=3)


def lr_at(scheduler, optimizer, update: int) -> float:
    scheduler.step_update(num_updates=update)
    return optimizer.param_groups[0]["lr"]


def transform_parts(transform) -> list:
    return list(transform.transforms)


def test_full_recipe_is_table_2():
    recipe = get_recipe("full")
    assert (recipe.opt, recipe.betas, recipe.weight_decay) == ("adamw", (0.9, 0.999), 0.05)
    assert (recipe.base_lr, recipe.lr_base_batch, recipe.batch_size) == (4e-3, 4096, 4096)
    assert (recipe.epochs, recipe.sched, recipe.warmup_epochs) == (300, "cosine", 20)
    assert (recipe.mixup, recipe.cutmix, recipe.re_prob, recipe.label_smoothing) == (
        0.8,
        1.0,
        0.25,
        0.1,
    )
    assert recipe.clip_grad is None and recipe.ema is False and recipe.drop_path is None


def test_full_recipe_lr_scales_linearly_with_the_batch():
    assert get_recipe("full", {"batch_size": 256}).peak_lr == pytest.approx(4e-3 * 256 / 4096)
    assert get_recipe("full", {"batch_size": 256, "lr": 1e-3}).peak_lr == 1e-3


def test_full_recipe_builds_adamw_without_decay_on_norms_and_biases():
    model = small_model()
    optimizer = build_optimizer(model, get_recipe("full", {"batch_size": 1024}))
    assert isinstance(optimizer, torch.optim.AdamW)
    decayed = [g for g in optimizer.param_groups if g["weight_decay"] > 0]
    plain = [g for g in optimizer.param_groups if g["weight_decay"] == 0]
    assert decayed[0]["weight_decay"] == 0.05 and decayed[0]["betas"] == (0.9, 0.999)
    assert all(p.ndim > 1 for g in decayed for p in g["params"])
    assert all(p.ndim == 1 for g in plain for p in g["params"])
    counts = [sum(len(g["params"]) for g in groups) for groups in (decayed, plain)]
    assert min(counts) > 0 and sum(counts) == len(list(model.parameters()))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_full_recipe_warms_up_linearly_for_20_epochs_then_decays_by_cosine():
    model = small_model()
    recipe = get_recipe("full", {"batch_size": 4096})
    optimizer = build_optimizer(model, recipe)
    scheduler = build_scheduler(optimizer, recipe, updates_per_epoch=10)
    peak = recipe.peak_lr
    assert lr_at(scheduler, optimizer, 0) == pytest.approx(recipe.warmup_lr)
    assert lr_at(scheduler, optimizer, 100) == pytest.approx((recipe.warmup_lr + peak) / 2)
    assert lr_at(scheduler, optimizer, 200) == pytest.approx(peak)
    # cosine over the 300 epochs: halfway between peak and min at epoch 20 + (300 - 20) / 2
    assert lr_at(scheduler, optimizer, 1600) == pytest.approx((peak + recipe.min_lr) / 2, rel=1e-3)
    assert lr_at(scheduler, optimizer, 3000) == pytest.approx(recipe.min_lr, rel=1e-3)


def test_full_recipe_augments_with_randaugment_erasing_mixup_and_cutmix():
    recipe = get_recipe("full")
    parts = transform_parts(train_transform(recipe, data_config(small_model(), recipe)))
    (randaugment,) = [p for p in parts if isinstance(p, RandAugment)]
    assert randaugment.num_layers == 2
    assert len(randaugment.ops) > 2 and all(op.magnitude == 9 for op in randaugment.ops)
    (erasing,) = [p for p in parts if isinstance(p, RandomErasing)]
    assert erasing.probability == 0.25
    mixup = build_mixup(recipe, num_classes=10)
    assert isinstance(mixup, Mixup)
    assert (mixup.mixup_alpha, mixup.cutmix_alpha, mixup.label_smoothing) == (0.8, 1.0, 0.1)
    assert isinstance(train_loss(recipe), SoftTargetCrossEntropy)


def test_cifar_recipe_is_momentum_sgd_warming_up_one_epoch_to_lr_0_1():
    recipe = get_recipe("cifar")
    assert (recipe.batch_size, recipe.epochs) == (64, 25)
    optimizer = build_optimizer(small_model(), recipe)
    assert isinstance(optimizer, torch.optim.SGD)
    assert (
        optimizer.param_groups[0]["momentum"] == 0.9
        and optimizer.param_groups[0]["nesterov"] is False
    )
    scheduler = build_scheduler(optimizer, recipe, updates_per_epoch=50)
    assert lr_at(scheduler, optimizer, 25) == pytest.approx(0.05)
    assert lr_at(scheduler, optimizer, 50) == pytest.approx(0.1)
    assert lr_at(scheduler, optimizer, 25 * 50) == pytest.approx(0.0, abs=1e-9)


def test_cifar_and_short_recipes_train_on_hard_labels_without_randaugment():
    for name in ("cifar", "short"):
        recipe = get_recipe(name)
        parts = transform_parts(train_transform(recipe, data_config(small_model(), recipe)))
        assert not any(isinstance(p, RandAugment | RandomErasing) for p in parts)
        assert build_mixup(recipe, num_classes=10) is None
        assert isinstance(train_loss(recipe), torch.nn.CrossEntropyLoss)


def test_short_recipe_is_short_trainings_few_epochs_of_adamw():
    recipe = get_recipe("short")
    assert (recipe.opt, recipe.epochs, recipe.batch_size) == ("adamw", 6, 64)
    # one home: the preset, short_train and search's settings share SHORT_TRAINING_DEFAULTS
    assert (recipe.epochs, recipe.batch_size) == (
        SHORT_TRAINING_DEFAULTS.epochs,
        SHORT_TRAINING_DEFAULTS.batch_size,
    )
    settings = EvalSettings()
    assert (settings.epochs, settings.batch_size) == (recipe.epochs, recipe.batch_size)
    assert (settings.max_train_images, settings.max_val_images) == (
        SHORT_TRAINING_DEFAULTS.max_train_images,
        SHORT_TRAINING_DEFAULTS.max_val_images,
    )
    defaults = inspect.signature(short_train).parameters
    assert defaults["epochs"].default == recipe.epochs
    assert defaults["max_train_images"].default == settings.max_train_images
    assert SHORT_TRAINING_DEFAULTS.image_size(224) == 64
    assert SHORT_TRAINING_DEFAULTS.image_size(32) == 32
    assert isinstance(build_optimizer(small_model(), recipe), torch.optim.AdamW)


@pytest.mark.parametrize(("epochs", "warmup"), [(1, 0.5 / 3), (2, 1 / 3), (3, 0.5), (15, 0.5)])
def test_short_recipe_keeps_the_warmup_it_had_as_a_three_epoch_preset(epochs, warmup):
    # runs of 3 epochs and more warm up for 0.5 epochs, shorter ones for their share of 3
    assert get_recipe("short", {"epochs": epochs}).warmup_epochs == pytest.approx(warmup)


def test_the_old_name_proxy_gives_the_short_recipe_after_one_notice(capsys, monkeypatch):
    monkeypatch.setattr(recipe_module, "_noticed", set())
    monkeypatch.delenv("RANK", raising=False)
    assert get_recipe("proxy", {"epochs": 2}) == get_recipe("short", {"epochs": 2})
    get_recipe("proxy")
    err = capsys.readouterr().err
    assert err.count("'proxy' is now named 'short'") == 1 and len(err.splitlines()) == 1
    assert canonical_name("proxy") == canonical_name("short") == "short"
    # a recipe recorded under the old name (an old recipe.yaml or checkpoint) still reads
    old = {**get_recipe("short").to_dict(), "name": "proxy"}
    assert Recipe.from_dict(old).name == "proxy"


def test_set_values_are_read_as_yaml_and_typed_by_the_field():
    overrides = parse_assignments(
        ["epochs=10", "scale=[0.5, 1]", "lr=none", "auto_augment=null", "ema=true"]
    )
    assert overrides == {
        "epochs": 10,
        "scale": (0.5, 1.0),
        "lr": None,
        "auto_augment": None,
        "ema": True,
    }
    assert isinstance(overrides["scale"][1], float)
    assert get_recipe("cifar", overrides).scale == (0.5, 1.0)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["mixupp=0.1"], "unknown recipe field 'mixupp'"),
        (["epochs=ten"], "'epochs' takes int"),
        (["scale=[0.5]"], "'scale' takes tuple"),
        (["epochs"], "use KEY=VALUE"),
    ],
)
def test_bad_set_values_are_one_line_user_errors(items, message):
    with pytest.raises(UserError, match=message):
        parse_assignments(items)


def test_unknown_preset_and_out_of_range_values_are_user_errors():
    with pytest.raises(UserError, match="choose one of full, cifar, short"):
        get_recipe("imagenet")
    with pytest.raises(UserError, match="batch_size must be positive"):
        get_recipe("full", {"batch_size": 0})


def test_recipes_round_trip_through_plain_dicts():
    assert list(RECIPES) == ["full", "cifar", "short"]
    for recipe in RECIPES.values():
        assert Recipe.from_dict(recipe.to_dict()) == recipe


def test_a_warmup_as_long_as_the_training_is_a_user_error():
    with pytest.raises(UserError, match="lower --warmup-epochs"):
        get_recipe("full", {"epochs": 10, "warmup_epochs": 10})
    assert get_recipe("full", {"epochs": 10, "warmup_epochs": 1}).warmup_epochs == 1


def test_a_short_run_keeps_the_presets_share_of_warmup_and_says_so():
    overrides = {"epochs": 1}
    recipe = get_recipe("full", overrides)
    assert recipe.warmup_epochs == pytest.approx(20 / 300)
    assert get_recipe("full", {"epochs": 30}).warmup_epochs == pytest.approx(2.0)
    assert get_recipe("cifar", {"epochs": 5}).warmup_epochs == pytest.approx(0.2)
    note = warmup_note(recipe, overrides)
    assert note is not None and "20 of 300" in note and "--warmup-epochs" in note


def test_a_long_run_or_an_explicit_warmup_is_left_as_it_is():
    assert get_recipe("full", {"epochs": 600}).warmup_epochs == 20
    assert warmup_note(get_recipe("full", {"epochs": 600}), {"epochs": 600}) is None
    explicit = {"epochs": 10, "warmup_epochs": 3}
    assert get_recipe("full", explicit).warmup_epochs == 3
    assert warmup_note(get_recipe("full", explicit), explicit) is None
    assert warmup_note(get_recipe("full"), {}) is None

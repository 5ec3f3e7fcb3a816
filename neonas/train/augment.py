"""Transforms, Mixup/CutMix and the training loss of a recipe, all from timm."""

from __future__ import annotations

from typing import Any

from timm.data import Mixup, create_transform, resolve_model_data_config
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from torch import nn

from neonas.train.recipe import Recipe


def data_config(model: nn.Module, recipe: Recipe) -> dict[str, Any]:
    """The model's input size, mean/std, interpolation and crop, with the recipe's overrides."""
    config = resolve_model_data_config(model)
    if recipe.image_size is not None:
        config["input_size"] = (config["input_size"][0], recipe.image_size, recipe.image_size)
    if recipe.crop_pct is not None:
        config["crop_pct"] = recipe.crop_pct
    return config


def train_transform(recipe: Recipe, config: dict[str, Any]) -> Any:
    """Random-resized crop, flip, RandAugment and random erasing as the recipe sets them."""
    return create_transform(
        config["input_size"],
        is_training=True,
        scale=recipe.scale,
        ratio=recipe.ratio,
        hflip=recipe.hflip,
        color_jitter=recipe.color_jitter,
        auto_augment=recipe.auto_augment,
        interpolation=config["interpolation"],
        mean=config["mean"],
        std=config["std"],
        re_prob=recipe.re_prob,
        re_mode=recipe.re_mode,
    )


def eval_transform(config: dict[str, Any]) -> Any:
    """Resize and centre crop (the model's crop_pct unless the recipe overrides it)."""
    return create_transform(
        config["input_size"],
        is_training=False,
        interpolation=config["interpolation"],
        mean=config["mean"],
        std=config["std"],
        crop_pct=config["crop_pct"],
    )


def build_mixup(recipe: Recipe, num_classes: int) -> Mixup | None:
    """timm's batch Mixup/CutMix with label smoothing folded into the soft targets; None if off."""
    if not recipe.uses_mixup:
        return None
    return Mixup(
        mixup_alpha=recipe.mixup,
        cutmix_alpha=recipe.cutmix,
        prob=recipe.mixup_prob,
        switch_prob=recipe.mixup_switch_prob,
        mode="batch",
        label_smoothing=recipe.label_smoothing,
        num_classes=num_classes,
    )


def train_loss(recipe: Recipe) -> nn.Module:
    """Soft-target cross-entropy after Mixup (which already smooths), else label smoothing."""
    if recipe.uses_mixup:
        return SoftTargetCrossEntropy()
    if recipe.label_smoothing > 0:
        return LabelSmoothingCrossEntropy(smoothing=recipe.label_smoothing)
    return nn.CrossEntropyLoss()

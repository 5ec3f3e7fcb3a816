"""Transforms, Mixup/CutMix and the training loss of a recipe, all from timm."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from PIL import Image
from timm.data import Mixup, create_transform, resolve_model_data_config
from timm.data.auto_augment import AugmentOp, AugMixAugment, AutoAugment, RandAugment, posterize
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
    transform = create_transform(
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
    return posterize_keeps_a_bit(transform)


def posterize_keeps_a_bit(transform: Any) -> Any:
    """`transform` with every posterize of its auto-augmentation keeping at least one bit.

    timm maps the magnitude to the bits posterize keeps; at the top of the scale it asks for
    0 (RandAugment `inc1` at magnitude 10, which `m9-mstd0.5` draws for about 2 % of the ops;
    plain `Posterize` below magnitude 2.5; AutoAugment `v0`). Older Pillow returned a black
    image for 0 bits, Pillow 13 raises ValueError in the DataLoader worker. Keeping 1 bit, the
    fewest Pillow allows, is the strongest posterize there is, so the recipe keeps its strength;
    every other magnitude keeps the bits timm gives it.

    AugmentOp calls its public `aug_fn` with the level's arguments; we replace it on the ops of
    this transform only, not in timm's module tables. Returns the same (modified) transform.
    """
    for op in _augment_ops(transform):
        if op.aug_fn is posterize:
            op.aug_fn = posterize_at_least_one_bit
    return transform


def posterize_at_least_one_bit(img: Image.Image, bits_to_keep: int, **kwargs: Any) -> Image.Image:
    """timm's posterize, keeping 1 bit where the magnitude asks for 0 (or fewer, above mmax)."""
    return posterize(img, max(1, bits_to_keep), **kwargs)


def _augment_ops(transform: Any) -> Iterator[AugmentOp]:
    """The AugmentOps of timm's auto-augment transforms in a Compose (or of one such transform)."""
    for step in getattr(transform, "transforms", [transform]):
        if isinstance(step, RandAugment | AugMixAugment):
            yield from step.ops
        elif isinstance(step, AutoAugment):
            for sub_policy in step.policy:
                yield from sub_policy


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

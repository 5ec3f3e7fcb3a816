"""Training recipes as data: named presets, every field overridable from the command line.

`full` is Table 2 of the NeoNeXt paper (ImageNet-1K). `cifar` is the paper's NeoInit ablation
recipe (section 3.7); the paper gives only the optimiser and schedule, the light augmentation
and weight decay 5e-4 are our choices. `short` is the recipe of short training, which
`search --signal short-training` runs per candidate (neonas/train/short_training.py); it ranks
architectures, it does not aim for the best accuracy. It was named `proxy` before "proxy" came
to mean the zero-cost proxies only; that name is still accepted, with a notice.

SHORT_TRAINING_DEFAULTS holds short training's defaults (epochs, batch, image counts, size): the one
place `short_train`, the `short` preset and `search`'s settings take them from.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import types
import typing
from dataclasses import dataclass
from typing import Any

import yaml

from neonas.errors import UserError


@dataclass(frozen=True)
class Recipe:
    """Everything that decides how a network is trained, independent of where it runs."""

    name: str = "full"
    # optimiser: timm names ('adamw', 'momentum' is SGD with classical momentum, 'sgd' is Nesterov)
    opt: str = "adamw"
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    # LR = base_lr * batch_size / lr_base_batch (linear scaling), unless `lr` is set
    base_lr: float = 4e-3
    lr_base_batch: int = 4096
    lr: float | None = None
    weight_decay: float = (
        0.05  # never on norms, biases (all 1-d tensors) or model.no_weight_decay()
    )
    batch_size: int = 4096  # global: all devices x gradient accumulation
    epochs: int = 300
    sched: str = "cosine"
    warmup_epochs: float = 20.0  # linear, included in `epochs`; the decay spans the rest
    warmup_lr: float = 1e-6
    min_lr: float = 1e-6
    clip_grad: float | None = None
    # data and augmentation (timm create_transform); image_size None = the model's input size
    image_size: int | None = None
    crop_pct: float | None = None  # evaluation centre crop; None = the model's
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (0.75, 4 / 3)
    hflip: float = 0.5
    color_jitter: float = 0.4  # timm turns it off when auto_augment is set
    auto_augment: str | None = "rand-m9-n2-mstd0.5-inc1"  # RandAugment n=2, m=9
    re_prob: float = 0.25
    re_mode: str = "pixel"
    mixup: float = 0.8
    cutmix: float = 1.0
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5
    label_smoothing: float = 0.1
    # regularisation of the model; drop_path None = the rate in the model's config
    drop_path: float | None = None
    ema: bool = False
    ema_decay: float = 0.9999
    seed: int = 0

    def __post_init__(self) -> None:
        positive = ("base_lr", "lr_base_batch", "batch_size", "epochs", "momentum")
        for key in positive:
            if getattr(self, key) <= 0:
                raise UserError(f"recipe {key} must be positive, got {getattr(self, key)}")
        if self.lr is not None and self.lr <= 0:
            raise UserError(f"recipe lr must be positive, got {self.lr}")
        if self.warmup_epochs < 0 or self.weight_decay < 0:
            raise UserError("recipe warmup_epochs and weight_decay must be >= 0")
        if self.warmup_epochs >= self.epochs:
            raise UserError(
                f"recipe warmup_epochs {self.warmup_epochs:g} leaves no epoch of decay in {self.epochs} epochs: "
                "lower --warmup-epochs"
            )
        if self.image_size is not None and self.image_size < 1:
            raise UserError(f"recipe image_size must be positive, got {self.image_size}")
        if not 0 <= self.re_prob <= 1 or not 0 <= self.label_smoothing < 1:
            raise UserError("recipe re_prob must be in [0, 1] and label_smoothing in [0, 1)")
        if self.drop_path is not None and not 0 <= self.drop_path < 1:
            raise UserError(f"recipe drop_path must be in [0, 1), got {self.drop_path}")

    @property
    def peak_lr(self) -> float:
        """The LR after warm-up: `lr` if given, else base_lr scaled linearly to batch_size."""
        if self.lr is not None:
            return self.lr
        return self.base_lr * self.batch_size / self.lr_base_batch

    @property
    def uses_mixup(self) -> bool:
        """Mixup or CutMix is on (then targets are soft and the batch must be even)."""
        return self.mixup_prob > 0 and (self.mixup > 0 or self.cutmix > 0)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples as lists) for YAML files and weights_only checkpoints."""
        return {
            key: list(v) if isinstance(v, tuple) else v
            for key, v in dataclasses.asdict(self).items()
        }

    def to_yaml(self) -> str:
        """YAML text in field order."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """Inverse of `to_dict`; unknown keys and wrong types are UserErrors."""
        return cls(**{key: coerce_field(key, value) for key, value in data.items()})


@dataclass(frozen=True)
class ShortTraining:
    """The defaults of short training: what a search trains each candidate with.

    6 epochs, ASHA's first rung at 3: on digits (benchmarks/search_data_defaults.py) every
    network is at chance after epochs 1-2 and apart from epoch 3 on.
    """

    epochs: int = 6
    batch_size: int = 64
    max_train_images: int = 2000
    max_val_images: int = 500
    max_image_size: int = 64  # images at the network's input size, at most this

    def image_size(self, input_size: int) -> int:
        """The training image size of a network whose input is `input_size` pixels."""
        return min(input_size, self.max_image_size)


SHORT_TRAINING_DEFAULTS = ShortTraining()

# Small images and short runs (cifar, short): random crop and flip only, no RandAugment,
# random erasing, Mixup/CutMix or label smoothing, and no centre crop at evaluation.
LIGHT_AUGMENTATION: dict[str, Any] = dict(
    crop_pct=1.0,
    scale=(0.5, 1.0),
    color_jitter=0.0,
    auto_augment=None,
    re_prob=0.0,
    mixup=0.0,
    cutmix=0.0,
    label_smoothing=0.0,
)

RECIPES: dict[str, Recipe] = {
    "full": Recipe(),
    "cifar": Recipe(
        name="cifar",
        opt="momentum",
        base_lr=0.1,
        lr_base_batch=64,
        weight_decay=5e-4,
        batch_size=64,
        epochs=25,
        warmup_epochs=1.0,
        warmup_lr=0.0,
        min_lr=0.0,
        **LIGHT_AUGMENTATION,
    ),
    "short": Recipe(
        name="short",
        opt="adamw",
        base_lr=2e-3,
        lr_base_batch=64,
        weight_decay=0.05,
        batch_size=SHORT_TRAINING_DEFAULTS.batch_size,
        epochs=SHORT_TRAINING_DEFAULTS.epochs,
        warmup_epochs=0.5,
        warmup_lr=1e-5,
        min_lr=1e-5,
        **LIGHT_AUGMENTATION,
    ),
}
# Old preset names, still accepted (with one notice): recorded runs and configs name them.
ALIASES: dict[str, str] = {"proxy": "short"}
# The run length from which a preset's whole warm-up applies (default: the preset's epochs).
# short: 0.5 epochs of warm-up from 3 epochs on, as when the preset was 3 epochs long.
FULL_WARMUP_FROM: dict[str, int] = {"short": 3}
_noticed: set[str] = set()


def canonical_name(name: str) -> str:
    """A preset's current name (an alias becomes the name it stands for)."""
    return ALIASES.get(name, name)


def get_recipe(name: str = "full", overrides: dict[str, Any] | None = None) -> Recipe:
    """A preset with some fields replaced; a bad name, key or value is one UserError line.

    A run shorter than its preset keeps the preset's share of warm-up (full: 20 of 300
    epochs) unless `warmup_epochs` is given: a fixed 20-epoch warm-up would leave a 10-epoch
    run no decay at all. Longer runs keep the preset's warm-up in epochs. An old name
    (ALIASES) gives the preset it stands for, after one notice on stderr.
    """
    if name in ALIASES:
        _alias_notice(name)
        name = ALIASES[name]
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}")
    preset = RECIPES[name]
    values = {key: coerce_field(key, value) for key, value in (overrides or {}).items()}
    epochs = values.get("epochs", preset.epochs)
    full_from = FULL_WARMUP_FROM.get(name, preset.epochs)
    if "warmup_epochs" not in values and epochs < full_from:
        values["warmup_epochs"] = preset.warmup_epochs * epochs / full_from
    return dataclasses.replace(preset, **values)


def warmup_note(recipe: Recipe, overrides: dict[str, Any]) -> str | None:
    """One line saying `get_recipe` scaled the warm-up to a short run, else None."""
    preset = RECIPES.get(canonical_name(recipe.name))
    if preset is None or "warmup_epochs" in overrides:
        return None
    full_from = FULL_WARMUP_FROM.get(preset.name, preset.epochs)
    if recipe.epochs >= full_from:
        return None
    return (
        f"warm-up {recipe.warmup_epochs:.3g} epochs: the {preset.name} recipe's "
        f"{preset.warmup_epochs:g} of {full_from} epochs, scaled to {recipe.epochs} "
        "(choose another with --warmup-epochs)"
    )


def _alias_notice(name: str) -> None:
    """Once per process, on rank 0 only (torchrun starts the command once per process)."""
    if name in _noticed or os.environ.get("RANK", "0") != "0":
        return
    _noticed.add(name)
    print(
        f"neonas: the recipe {name!r} is now named {ALIASES[name]!r} ({name!r} is accepted "
        'for now; "proxy" means the zero-cost proxies)',
        file=sys.stderr,
        flush=True,
    )


def parse_assignments(items: list[str] | None) -> dict[str, Any]:
    """['epochs=10', 'scale=[0.5, 1]'] -> typed overrides; values are read as YAML."""
    overrides: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UserError(f"bad --set {item!r}: use KEY=VALUE, e.g. --set mixup=0.2")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise UserError(f"bad --set {item!r}: the value is not valid YAML") from None
        overrides[key] = coerce_field(key, value)
    return overrides


def coerce_field(key: str, value: Any) -> Any:
    """Check a value against the Recipe field's type: ints pass as floats, lists become tuples."""
    hints = typing.get_type_hints(Recipe)
    if key not in hints:
        raise UserError(f"unknown recipe field {key!r}: known fields are {', '.join(hints)}")
    expected = hints[key]
    options = typing.get_args(expected) if isinstance(expected, types.UnionType) else (expected,)
    if isinstance(value, str) and value.lower() in ("none", "null") and type(None) in options:
        return None
    for option in options:
        converted = _convert(value, option)
        if converted is not _MISMATCH:
            return converted
    names = " or ".join(getattr(o, "__name__", str(o)).replace("NoneType", "none") for o in options)
    raise UserError(f"recipe field {key!r} takes {names}, got {value!r}")


_MISMATCH = object()


def _convert(value: Any, option: Any) -> Any:
    if option is type(None):
        return None if value is None else _MISMATCH
    if typing.get_origin(option) is tuple:
        kinds = typing.get_args(option)
        if not isinstance(value, list | tuple) or len(value) != len(kinds):
            return _MISMATCH
        items = tuple(_convert(v, kind) for v, kind in zip(value, kinds, strict=True))
        return _MISMATCH if _MISMATCH in items else items
    if option is bool:
        return value if isinstance(value, bool) else _MISMATCH
    if option is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISMATCH
    if option is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok else _MISMATCH
    if option is str:
        return value if isinstance(value, str) else _MISMATCH
    return _MISMATCH

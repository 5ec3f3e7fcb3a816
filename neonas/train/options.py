"""The options of `neonas train` and `neonas supernet train`, each declared once (neonas/options.py).

The options both commands have (data, output, epochs, batch, LR, seed, data subsets, Ray Train)
are declared once, in TRAINING_OPTIONS; each command adds its own. From the declarations come
the argparse options, the flag that names a setting in an error, and the resume rule: an option
that is not `resumable` is recorded with the run, and a resume given another value refuses it
in one line (neonas/options.py, check_resumed). `train` records its recipe options in the
recipe and the others in `run_options` (RESUMED_OPTIONS); `supernet train` records all of its
own in `run_options` (SUPERNET_RUN_OPTIONS).

This module is torch-free so that `--help` stays quick; the supernet's declarations are here
too because importing neonas.supernet loads torch.
"""

from __future__ import annotations

import argparse

from neonas.options import Option, non_negative_int, positive_float, positive_int
from neonas.train.recipe import RECIPES

# --- both commands ----------------------------------------------------------------------------

DATA = Option(
    "--data",
    "data_dir",
    "ImageFolder tree (train/, val/) or CIFAR-10 python folder",
    metavar="DIR",
    resumable=True,  # the folder may move; its classes are checked against the checkpoint's
)
# The output folder names the run: a resume finds the run by it.
OUTPUT = Option(
    "--output", "output_dir", "training folder (default {default})", metavar="DIR", resumable=True
)
EPOCHS = Option("--epochs", "epochs", "epochs (default {default})", type=positive_int)
BATCH_SIZE = Option(
    "--batch-size",
    "batch_size",
    "global batch; the LR scales linearly with it (default {default})",
    type=positive_int,
)
LR = Option(
    "--lr",
    "lr",
    "peak LR, instead of the base LR scaled to the batch (default {default})",
    type=positive_float,
)
SEED = Option("--seed", "seed", "seed (default {default})", type=int)
MAX_TRAIN_IMAGES = Option(
    "--max-train-images",
    "max_train_images",
    "train on a fixed random subset",
    type=positive_int,
)
MAX_VAL_IMAGES = Option(
    "--max-val-images",
    "max_val_images",
    "validate on a fixed random subset",
    type=positive_int,
)
STOP_AFTER = Option(
    "--stop-after",
    "stop_after",
    "stop after N epochs (continue with --resume)",
    type=positive_int,
    metavar="N",
    resumable=True,
)
NO_PROGRESS = Option(
    "--no-progress", "no_progress", "no progress bar", action="store_true", resumable=True
)
ADDRESS = Option(
    "--address",
    "address",
    "train with Ray Train on this Ray cluster (HOST:PORT, auto, ray://host:10001; local: a Ray "
    "of its own); default: RAY_ADDRESS if set, else no Ray",
    resumable=True,
)
RAY_WORKERS = Option(
    "--ray-workers",
    "ray_workers",
    "Ray Train workers with --address or RAY_ADDRESS (default 1)",
    type=positive_int,
    resumable=True,
)

TRAINING_OPTIONS: tuple[Option, ...] = (
    DATA,
    OUTPUT,
    EPOCHS,
    BATCH_SIZE,
    LR,
    SEED,
    MAX_TRAIN_IMAGES,
    MAX_VAL_IMAGES,
    STOP_AFTER,
    NO_PROGRESS,
    ADDRESS,
    RAY_WORKERS,
)

# --- neonas train -----------------------------------------------------------------------------

# Recipe fields set by a named option of `train` (`--set KEY=VALUE` covers the rest); a resume
# checks them against the recorded recipe, the others against `run_options`.
TRAIN_RECIPE_OPTIONS: tuple[Option, ...] = (
    Option("--warmup-epochs", "warmup_epochs", "warm-up epochs (default {default})", type=float),
    Option("--weight-decay", "weight_decay", "weight decay (default {default})", type=float),
    Option(
        "--opt",
        "opt",
        "timm optimiser name: adamw, momentum, sgd, lamb, ... (default {default})",
    ),
    Option(
        "--drop-path",
        "drop_path",
        "stochastic depth rate (default {default})",
        type=float,
    ),
    Option(
        "--image-size",
        "image_size",
        "training resolution (default {default})",
        type=positive_int,
    ),
    Option("--ema", "ema", "model EMA", action=argparse.BooleanOptionalAction),
)
TRAIN_OWN_OPTIONS: tuple[Option, ...] = (
    Option(
        "--init",
        "init_path",
        "start from this checkpoint's weights, e.g. from `neonas supernet extract`",
        metavar="CKPT",
    ),
    Option(
        "--device-batch",
        "device_batch",
        "micro-batch per device; accumulation makes up the batch",
        type=positive_int,
    ),
)
TRAIN_OPTIONS: tuple[Option, ...] = TRAINING_OPTIONS + TRAIN_RECIPE_OPTIONS + TRAIN_OWN_OPTIONS
# What `train`'s help says of a default that the recipe preset decides.
PRESET = "the preset's"
TRAIN_DEFAULTS = {
    "output_dir": "results/train/<model>-<recipe>",
    "epochs": PRESET,
    "batch_size": PRESET,
    "lr": "the preset's base LR scaled to the batch",
    "seed": PRESET,
    "warmup_epochs": PRESET,
    "weight_decay": PRESET,
    "opt": PRESET,
    "drop_path": "the config's",
    "image_size": "the model's",
}
RECIPE_FIELDS = tuple(
    option.setting
    for option in TRAINING_OPTIONS + TRAIN_RECIPE_OPTIONS
    if not option.resumable and option.setting in RECIPES["full"].to_dict()
)
# Options recorded with a run (run_options), which a resume reuses and refuses to change: those
# that decide which images and micro-batches an epoch sees, and the weights it started from.
RESUMED_OPTIONS = tuple(
    option.setting
    for option in TRAIN_OPTIONS
    if not option.resumable and option.setting not in RECIPE_FIELDS
)

# --- neonas supernet train --------------------------------------------------------------------

SAMPLINGS = ("uniform", "sandwich", "fair")  # the first is the default (benchmarks/README.md)
# Random subnets per step: BigNAS samples 2 besides the largest and smallest; uniform draws 4,
# the sandwich's 4 networks per step, as measured; fair draws 4 balanced ones (FairNAS).
RANDOM_SUBNETS = {"sandwich": 2, "uniform": 4, "fair": 4}
SUPERNET_EPOCHS = 10
# Without --epochs, a small data set trains for more epochs, up to this many optimizer steps:
# on digits (500 images) the uniform supernet ranked at tau +0.27 after 70 steps and +0.73
# after 450 (benchmarks/README.md, "Accuracy signals").
MIN_STEPS = 450
SUPERNET_BATCH = 64
# Epochs of each part of `supernet few-shot` (neonas/supernet/few_shot.py): 3 per plan on the
# tiny space's 10 plans ranked digits at tau +0.71, the whole supernet at +0.61.
FEW_SHOT_EPOCHS = 3
SUPERNET_SEED = 0
_SHORT = RECIPES["short"]  # the supernet's recipe: the short preset renamed
SUPERNET_DEFAULTS = {
    "output_dir": "results/supernet/<space>",
    "epochs": f"{SUPERNET_EPOCHS}, more on a small data set: at least {MIN_STEPS} optimizer steps",
    "batch_size": SUPERNET_BATCH,
    "lr": f"{_SHORT.base_lr:g} at batch {_SHORT.lr_base_batch}",
    "seed": SUPERNET_SEED,
    "sampling": SAMPLINGS[0],
}
SUPERNET_OWN_OPTIONS: tuple[Option, ...] = (
    Option(
        "--space",
        "space",
        "search space: tiny, neonext or a YAML file (a resume checks it is the run's space)",
        metavar="NAME|FILE",
    ),
    Option(
        "--sampling",
        "sampling",
        "subnets of a step: uniform = random ones on the labels; sandwich = largest on the "
        "labels, smallest and random ones distilled from it; fair = random ones in which every "
        "choice comes up equally often (FairNAS) (default {default})",
        choices=SAMPLINGS,
    ),
    Option(
        "--init",
        "init_path",
        "start from another supernet's weights, every tensor of the same name (a few-shot "
        "sub-supernet: --space a part of that supernet's space, e.g. one transition plan); "
        "a resume continues from its own",
        metavar="CKPT",
        resumable=True,
    ),
    Option(
        "--random-subnets",
        "random_subnets",
        f"random subnets per step (default {RANDOM_SUBNETS['uniform']} uniform and fair; sandwich: "
        f"{RANDOM_SUBNETS['sandwich']} besides the largest and smallest)",
        type=non_negative_int,
    ),
)
# --space first in the help: it names what is trained.
SUPERNET_TRAIN_OPTIONS: tuple[Option, ...] = (
    SUPERNET_OWN_OPTIONS[:1] + TRAINING_OPTIONS + SUPERNET_OWN_OPTIONS[1:]
)
# SupernetJob fields recorded in the checkpoint: they decide every batch and subnet, so a resume
# uses the recorded ones and refuses others. The space is recorded as the network (checked by
# its spec); calib_images has no option.
SUPERNET_RUN_OPTIONS = tuple(
    option.setting
    for option in SUPERNET_TRAIN_OPTIONS
    if not option.resumable and option.setting != "space"
) + ("calib_images",)

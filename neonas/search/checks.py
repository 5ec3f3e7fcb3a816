"""Input checks of a search, before any file is written: each refuses, in one line, a run that
could not work (a budget no network meets, an unknown target, unreadable images, GPU trials on
a cluster without GPUs) instead of letting every trial fail on it."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from neonas.arch import ArchConfig
from neonas.errors import UserError
from neonas.search.settings import SearchSettings
from neonas.search.trial import screen_candidate
from neonas.si import format_si
from neonas.space import SearchSpace

if TYPE_CHECKING:  # the target registry imports torch; a search loads it only to run
    from evaluators.hardware import HardwareTarget


def check_inputs(space: SearchSpace, settings: SearchSettings) -> None:
    """Fail fast (UserError) on a budget no network meets, an unknown target or a bad data folder."""
    from evaluators import get_hw

    target = get_hw(settings.eval.hw)  # UserError for an unknown target or an absent device
    if settings.eval.data is not None:
        check_images(settings.eval.data)
    if settings.eval.supernet is not None:
        from neonas.supernet.few_shot import check_supernet_for

        check_supernet_for(settings.eval.supernet, space, settings.eval.data)
    smallest = space.smallest()
    screen = screen_candidate(smallest, settings.budget_flops, settings.budget_params)
    if screen.rejected:
        raise UserError(
            f"the smallest network of space {space.name!r} ({format_si(screen.flops)} FLOPs, "
            f"{format_si(screen.params)} params) is already over budget: {screen.reason}; "
            "raise the budget or use a smaller space"
        )
    if settings.eval.latency_budget_ms is not None:
        check_latency_budget(space, smallest, target, settings.eval.latency_budget_ms)


# A measured latency of the smallest network may exceed the budget by this factor before the
# budget is called impossible: timing noise must not refuse a budget that some network meets.
MEASURED_LATENCY_SLACK = 1.25


def check_latency_budget(
    space: SearchSpace, smallest: ArchConfig, target: HardwareTarget, budget_ms: float
) -> None:
    """UserError when even the space's smallest network is slower than the latency budget."""
    from evaluators.metrics import compute_metrics
    from neonas.models import build_model

    shape = (smallest.in_chans, smallest.input_size, smallest.input_size)
    latency = compute_metrics(
        build_model(smallest), shape, ["latency_ms", "latency_source"], target
    )
    source = latency["latency_source"]
    allowed = budget_ms * (MEASURED_LATENCY_SLACK if source == "measured" else 1.0)
    if latency["latency_ms"] > allowed:
        raise UserError(
            f"the smallest network of space {space.name!r} takes {latency['latency_ms']:.3g} ms on "
            f"{target.name} ({source}), over the latency budget of {budget_ms:g} ms: "
            "raise --latency-budget or use a smaller space"
        )


# Images decoded from each split before any trial starts: a folder of unreadable files is
# refused in a second instead of failing every trial.
IMAGES_CHECKED = 3


def check_images(data: str) -> None:
    """UserError unless `data` is a data folder whose first, middle and last images decode."""
    from neonas.train.data import DataError, detect_layout, load_split

    layout = detect_layout(data)  # UserError with what a data folder must look like
    for split in ("train", "val"):
        dataset = load_split(layout, split, lambda image: image)
        count = len(dataset)
        for index in sorted({0, count // 2, count - 1})[:IMAGES_CHECKED]:
            try:
                dataset[index]
            except DataError as err:  # already names the image and the cause
                raise UserError(f"cannot read the images of {data}: {err}") from None
            except Exception as err:  # any decoder error: the trials would all fail on it
                samples = getattr(dataset, "samples", None)
                where = samples[index][0] if samples else f"{split} image {index}"
                first = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise UserError(f"cannot read the images of {data}: {where}: {first}") from None


# Short training with fewer optimizer steps per network than this ranks nothing: on digits'
# 500 training images (48 steps at the defaults) NeoCell-Bench's 100 networks ended at 8-23 %
# top-1 (chance 10 %) and ranked at tau -0.02 against their full training; the same images at
# batch 16 (192 steps) ranked at +0.67 (benchmarks/README.md, "NeoCell-Bench"). On 1,297
# images (21 steps per epoch) networks came apart from the third epoch on
# (benchmarks/search_data_defaults.py).
SHORT_TRAINING_MIN_STEPS = 60


def short_training_note(settings: SearchSettings) -> str | None:
    """A warning when short training would make too few optimizer steps to rank networks
    (a small data set at the default epochs), else None. Not an error: the user may know."""
    if not settings.eval.short_training or settings.eval.data is None:
        return None
    from neonas.train.data import detect_layout, load_split

    images = len(load_split(detect_layout(settings.eval.data), "train", lambda image: image))
    images = min(images, settings.eval.max_train_images)
    steps = math.ceil(images / settings.eval.batch_size) * settings.eval.epochs
    if steps >= SHORT_TRAINING_MIN_STEPS:
        return None
    return (
        f"warning: short training makes {steps} optimizer steps per network ({images} training "
        f"images, batch {settings.eval.batch_size}, {settings.eval.epochs} epochs); below "
        f"{SHORT_TRAINING_MIN_STEPS} the measured networks stayed near chance and did not rank: "
        "raise --epochs, lower --batch-size, or score with a supernet (--supernet)"
    )


def check_gpus(gpus_per_trial: float, resource: str, resuming: bool = False) -> None:
    """UserError when trials would ask for GPUs on a Ray cluster that has none at all (they
    would wait forever)."""
    import ray

    if gpus_per_trial <= 0:
        return
    resources = ray.cluster_resources()
    if resources.get(resource, 0) > 0:
        return
    fix = (
        "give --gpus-per-trial 0 to continue on CPUs, or join a cluster with GPU nodes (--address)"
        if resuming
        else "leave out --gpus-per-trial, or join a cluster with GPU nodes (--address)"
    )
    gpu = "GPU" if resource == "GPU" else f"{resource} resource"
    raise UserError(
        f"--gpus-per-trial {gpus_per_trial:g}: the Ray cluster has no {gpu} "
        f"({sum(n['Alive'] for n in ray.nodes())} node(s), {int(resources.get('CPU', 0))} CPUs); "
        + fix
    )

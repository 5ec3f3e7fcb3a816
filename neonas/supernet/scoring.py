"""Scoring a candidate by its inherited weights: BatchNorm re-estimated, then top-1 on held-out data.

The supernet's BatchNorm statistics are a mixture over every subnet it trained, so they fit
none of them. As in Once-for-All and BigNAS, each candidate is extracted as its stand-alone
network, its BatchNorm statistics are recomputed on a few hundred training images (exact
averages over the batches, no momentum), and it is evaluated on the data folder's validation
split, which the supernet never trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from neonas.arch import ArchConfig
from neonas.signals import SUPERNET, SUPERNET_VAL_IMAGES
from neonas.supernet.checkpoint import load_supernet
from neonas.supernet.few_shot import load_few_shot
from neonas.supernet.network import SuperNet
from neonas.supernet.subnet_weights import extract_subnet
from neonas.train.augment import eval_transform
from neonas.train.data import detect_layout, load_split
from neonas.train.distributed import DistContext
from neonas.train.epoch import validate

CALIB_IMAGES = (
    256  # BatchNorm re-estimation images (OFA uses 2,000 on ImageNet; a few hundred here)
)
VAL_IMAGES = SUPERNET_VAL_IMAGES  # held-out images scored (neonas/signals.py says why)
SIGNAL = SUPERNET  # the accuracy signal's name in search results


@dataclass(frozen=True)
class ScoringData:
    """Calibration batches (training images) and held-out batches (validation images), in memory."""

    calib: list[Tensor]
    val: list[tuple[Tensor, Tensor]]


def load_scoring_data(
    data_dir: str | Path,
    data_config: dict[str, Any],
    *,
    classes: Sequence[str] | None = None,
    calib_images: int = CALIB_IMAGES,
    max_val_images: int | None = VAL_IMAGES,
    batch_size: int = 128,
    seed: int = 0,
) -> ScoringData:
    """A fixed random subset of each split, preprocessed as for evaluation (no augmentation)."""
    layout = detect_layout(data_dir, classes=tuple(classes) if classes is not None else None)
    transform = eval_transform(data_config)
    calib_set = load_split(layout, "train", transform, max_images=calib_images, seed=seed)
    val_set = load_split(layout, "val", transform, max_images=max_val_images, seed=seed)
    calib = [
        images
        for images, _ in DataLoader(calib_set, batch_size=_even_batch(len(calib_set), batch_size))
    ]
    val = list(DataLoader(val_set, batch_size=batch_size))
    return ScoringData(calib=calib, val=val)


def _even_batch(count: int, batch_size: int) -> int:
    """A batch size that leaves no last batch of a single image (BatchNorm needs two)."""
    while batch_size > 2 and count % batch_size == 1:
        batch_size -= 1
    return batch_size


@torch.no_grad()
def reestimate_batchnorm(model: nn.Module, batches: Sequence[Tensor]) -> None:
    """Replace every BatchNorm's running statistics by their average over `batches`."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average: every batch weighs the same
    model.train()
    try:
        for images in batches:
            model(images)
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        model.eval()


def evaluate_subnet(
    supernet: SuperNet, config: ArchConfig, data: ScoringData, device: str | None = None
) -> dict[str, float]:
    """Top-1, top-5 (percent) and loss of `config` with inherited weights and re-estimated BN,
    computed where the supernet's weights are, or on `device` (a search trial given a GPU
    passes "cuda"); the images are moved there batch by batch."""
    model = extract_subnet(supernet, config)
    if device is not None:
        model = model.to(device)
    where = next(model.parameters()).device
    reestimate_batchnorm(model, [images.to(where) for images in data.calib])
    context = DistContext(rank=0, world_size=1, local_rank=0, device=where)
    return validate(model, data.val, context=context)


class SubnetScorer:
    """Scores many candidates against one supernet checkpoint, loading it and the data once.

    Args:
        checkpoint: last.pt (or best.pt) of `neonas supernet train`, or a `neonas supernet
            few-shot` folder (each candidate scored by its plan's part).
        data_dir: the data folder it was trained on (train/ for BN statistics, val/ to score).
        calib_images: training images for BatchNorm re-estimation.
        max_val_images: held-out images scored (None: the whole validation split).
        device: where each candidate is scored ("cpu", "cuda"; None: where the checkpoint
            loads, the CPU); the data stays in CPU memory.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        data_dir: str | Path,
        *,
        calib_images: int = CALIB_IMAGES,
        max_val_images: int | None = VAL_IMAGES,
        batch_size: int = 128,
        seed: int = 0,
        device: str | None = None,
    ) -> None:
        self.device = device
        self.few_shot = load_few_shot(checkpoint)  # None: one supernet
        parts = None if self.few_shot is None else self.few_shot.parts
        first = Path(checkpoint) if parts is None else next(iter(parts.values()))
        supernet, state = load_supernet(first)
        self._supernets = {first: supernet}  # a few-shot supernet's parts load when needed
        self.data = load_scoring_data(
            data_dir,
            state["data_config"],
            classes=state["classes"],
            calib_images=calib_images,
            max_val_images=max_val_images,
            batch_size=batch_size,
            seed=seed,
        )

    def supernet_for(self, config: ArchConfig) -> SuperNet:
        """The supernet that holds `config`: the one, or the few-shot part of its plan."""
        if self.few_shot is None:
            return next(iter(self._supernets.values()))
        path = self.few_shot.checkpoint_for(config)
        if path not in self._supernets:
            self._supernets[path] = load_supernet(path)[0]
        return self._supernets[path]

    def evaluate(self, config: ArchConfig) -> dict[str, float]:
        """Top-1, top-5 (percent), loss and image count of one candidate."""
        return evaluate_subnet(self.supernet_for(config), config, self.data, self.device)

    def score(self, config: ArchConfig) -> float:
        """Top-1 (percent) of one candidate on the held-out images."""
        return self.evaluate(config)["top1"]


def score_subnet(
    checkpoint: str | Path, config: ArchConfig, data_dir: str | Path, **options: Any
) -> float:
    """Top-1 (percent) of one candidate; options as SubnetScorer's. For many, use SubnetScorer."""
    return SubnetScorer(checkpoint, data_dir, **options).score(config)

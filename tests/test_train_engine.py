"""The one training engine computes what the three separate loops computed before it.

REFERENCE was recorded on main at 15cdc74, before `train`, short training and the supernet's
training moved onto neonas/train/engine.py: the same tiny runs (one torch thread) gave these
losses and weight sums there, bit for bit, and give them here. The tolerance only allows for
another CPU's rounding; a changed seed, warm-up, batch order or update differs far more.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_train_fixtures import (
    make_image_folder,
    one_torch_thread,  # noqa: F401 (an autouse fixture: one torch thread per test)
    write_tiny_config,
)

from neonas.models import resolve_model
from neonas.supernet.training import train_supernet
from neonas.train.checkpoint import load_checkpoint
from neonas.train.recipe import get_recipe
from neonas.train.short_training import short_train
from neonas.train.trainer import TrainJob, run_training

REFERENCE = {
    "short": {
        "train_loss": 0.9421306848526001,
        "val_loss": 0.9631617863972982,
        "weights": (497.77448062166184, 818.1484747548752),
    },
    "train": {
        "train_loss": 0.6739456653594971,
        "val_loss": 0.6191864940855238,
        "weights": (524.6136564716744, 848.6358025888976),
    },
    "supernet-uniform": {
        "train_loss": 1.4576561848322551,
        "weights": (9546.668552037489, 17737.629789116432),
    },
    "supernet-sandwich": {
        "train_loss": 1.1599051157633464,
        "weights": (9573.248159437808, 17769.98705779172),
    },
}
CLOSE = {"rel": 1e-6}


def weight_sums(state: dict[str, torch.Tensor]) -> tuple[float, float]:
    """Sum and absolute sum of every floating-point tensor: moves with any weight."""
    tensors = [value.double() for value in state.values() if value.is_floating_point()]
    return float(sum(t.sum() for t in tensors)), float(sum(t.abs().sum() for t in tensors))


def assert_as_before(name: str, losses: dict[str, float], state: dict) -> None:
    expected = REFERENCE[name]
    for key in ("train_loss", "val_loss"):
        if key in expected:
            assert losses[key] == pytest.approx(expected[key], **CLOSE), key
    assert weight_sums(state) == pytest.approx(expected["weights"], **CLOSE)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("engine")
    make_image_folder(root / "images")
    write_tiny_config(root / "tiny.yaml")
    return root


def test_short_training_trains_as_before(folder) -> None:
    torch.manual_seed(0)
    model = resolve_model(config=folder / "tiny.yaml", num_classes=3)[0]
    metrics = short_train(model, folder / "images", epochs=2, image_size=16, batch_size=8, seed=1)
    assert metrics["epochs"] == 2 and metrics["val_top1"] == 100.0
    assert_as_before("short", metrics, model.state_dict())


def test_train_trains_as_before(folder, tmp_path) -> None:
    job = TrainJob(
        output_dir=str(tmp_path / "run"),
        data_dir=str(folder / "images"),
        config_path=str(folder / "tiny.yaml"),
        recipe=get_recipe("short", {"epochs": 2, "batch_size": 8, "lr": 3e-3, "seed": 2}),
        workers=0,
        progress=False,
    )
    summary = run_training(job)
    assert summary["finished"] and summary["val_top1"] == 100.0
    assert_as_before("train", summary, load_checkpoint(tmp_path / "run" / "last.pt")["model"])


@pytest.mark.parametrize("sampling", ["uniform", "sandwich"])
def test_the_supernet_trains_as_before(tmp_path, sampling) -> None:
    data = make_image_folder(
        tmp_path / "images", classes=4, train_per_class=6, val_per_class=4, size=32
    )
    last = train_supernet(
        "tiny",
        data,
        output_dir=tmp_path / "supernet",
        epochs=2,
        batch_size=8,
        random_subnets=1,
        seed=3,
        sampling=sampling,
        workers=0,
    )
    state = load_checkpoint(last)
    assert state["epoch"] == 2
    assert_as_before(f"supernet-{sampling}", state["metrics"], state["model"])

"""The short training the search runs per trial: metrics per epoch, and a clear failure on NaN."""

from __future__ import annotations

import math

import pytest
import torch
from test_train_fixtures import (
    make_cifar_folder,
    make_image_folder,
    one_torch_thread,  # noqa: F401 (an autouse fixture: one torch thread per test)
    write_tiny_config,
)
from torch import nn

from neonas.errors import UserError
from neonas.models import resolve_model
from neonas.train.short_training import DivergedError, short_train


class NaNNet(nn.Module):
    """Trains for a moment, then its logits are NaN."""

    num_classes = 3

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((2, 3))) * float("nan")


def tiny_model(tmp_path, num_classes: int) -> nn.Module:
    torch.manual_seed(0)
    return resolve_model(config=write_tiny_config(tmp_path / "tiny.yaml"), num_classes=num_classes)[
        0
    ]


def test_short_training_reports_every_epoch_and_learns_an_easy_task(tmp_path):
    data = make_image_folder(tmp_path / "images")
    reports = []
    result = short_train(
        tiny_model(tmp_path, 3), data, epochs=3, image_size=16, batch_size=8, lr=1e-2,
        on_epoch=lambda epoch, metrics: reports.append((epoch, metrics)),
    )  # fmt: skip
    assert [epoch for epoch, _ in reports] == [1, 2, 3] and reports[-1][1] == result
    assert {"val_top1", "val_loss", "train_loss", "epochs", "images_per_s"} <= set(result)
    assert result["epochs"] == 3 and result["images_per_s"] > 0
    assert reports[-1][1]["train_loss"] < reports[0][1]["train_loss"]
    assert result["val_top1"] > 100 / 3 + 20  # well above chance on three colours


def test_short_training_reads_a_cifar_folder_subset(tmp_path):
    data = make_cifar_folder(tmp_path)
    result = short_train(
        tiny_model(tmp_path, 10),
        data,
        epochs=1,
        image_size=16,
        max_train_images=16,
        max_val_images=8,
        batch_size=8,
    )
    assert 0 <= result["val_top1"] <= 100 and math.isfinite(result["val_loss"])


def test_nan_loss_raises_a_diverged_error(tmp_path):
    data = make_image_folder(tmp_path / "images")
    with pytest.raises(DivergedError, match="became nan"):
        short_train(NaNNet(), data, epochs=1, image_size=16, batch_size=8)
    assert issubclass(DivergedError, FloatingPointError)


def test_a_head_that_does_not_fit_the_classes_is_a_user_error(tmp_path):
    data = make_image_folder(tmp_path / "images")
    with pytest.raises(UserError, match="has 10 outputs but the data has 3 classes"):
        short_train(tiny_model(tmp_path, 10), data, epochs=1, image_size=16)


def test_a_missing_data_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        short_train(tiny_model(tmp_path, 3), tmp_path / "nowhere")

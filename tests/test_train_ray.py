"""`neonas train --address`: the same training through Ray Train workers on a local Ray."""

from __future__ import annotations

import pytest
import torch
from test_train_fixtures import make_image_folder, write_tiny_config

from neonas.errors import UserError
from neonas.train.recipe import get_recipe
from neonas.train.trainer import TrainJob

pytestmark = pytest.mark.slow  # a local Ray and two workers take 30-60 s on two cores


def make_job(tmp_path, **fields) -> TrainJob:
    return TrainJob(
        output_dir=str(tmp_path / "run"),
        data_dir=str(make_image_folder(tmp_path / "images")),
        config_path=str(write_tiny_config(tmp_path / "tiny.yaml")),
        recipe=get_recipe("short", {"epochs": 2, "batch_size": 8, "lr": 3e-3}),
        device="cpu",
        workers=0,
        **fields,
    )


def test_two_ray_train_workers_train_one_model(ray_session, tmp_path):
    from neonas.train.ray_launch import train_with_ray

    summary = train_with_ray(make_job(tmp_path), address="local", num_workers=2)
    assert summary["world_size"] == 2 and summary["finished"] and summary["device_batch"] == 4
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["world_size"] == 2 and state["epoch"] == 2


def test_a_user_error_inside_a_worker_reaches_the_driver_as_one(ray_session, tmp_path):
    from neonas.train.ray_launch import train_with_ray

    with pytest.raises(UserError, match="does not divide the per-device batch"):
        train_with_ray(make_job(tmp_path, device_batch=3), address="local", num_workers=2)

"""A training run: it learns, records everything in its folder, and resumes exactly."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import yaml
from test_train_fixtures import (
    make_image_folder,
    one_torch_thread,  # noqa: F401 (an autouse fixture: one torch thread per test)
    write_tiny_config,
)

from neonas.cli import main
from neonas.errors import UserError
from neonas.train.augment import data_config, eval_transform, train_loss, train_transform
from neonas.train.data import build_train_loader, build_val_loader, detect_layout, load_split
from neonas.train.distributed import DistContext
from neonas.train.epoch import TrainStep, train_one_epoch, validate
from neonas.train.model_spec import build_training_model
from neonas.train.optim import build_optimizer, build_scheduler
from neonas.train.recipe import get_recipe
from neonas.train.trainer import BatchPlan, TrainJob, plan_batches, run_training

CPU = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


@pytest.fixture
def data(tmp_path):
    return make_image_folder(tmp_path / "images")


@pytest.fixture
def config(tmp_path):
    return write_tiny_config(tmp_path / "tiny.yaml")


def make_job(tmp_path, data, config, output="run", recipe="short", **fields) -> TrainJob:
    overrides = {"epochs": 3, "batch_size": 8, "lr": 3e-3, **fields.pop("recipe_overrides", {})}
    return TrainJob(
        output_dir=str(tmp_path / output),
        data_dir=str(data),
        config_path=str(config),
        recipe=get_recipe(recipe, overrides),
        workers=0,
        progress=False,
        **fields,
    )


def test_one_epoch_lowers_the_loss_on_an_easy_task(data, config):
    torch.manual_seed(0)
    recipe = get_recipe("short", {"epochs": 3, "batch_size": 4, "lr": 1e-2})  # 12 updates
    layout = detect_layout(data)
    model, _ = build_training_model(None, config, num_classes=3)
    inputs = data_config(model, recipe)
    train = build_train_loader(
        load_split(layout, "train", train_transform(recipe, inputs)), batch_size=4, workers=0
    )
    # the training images themselves, unaugmented: the loss the epoch minimises
    fixed = build_val_loader(
        load_split(layout, "train", eval_transform(inputs)), batch_size=48, workers=0
    )
    optimizer = build_optimizer(model, recipe)
    step = TrainStep(
        model=model,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, recipe, len(train)),
        loss_fn=train_loss(recipe),
        scaler=torch.amp.GradScaler("cpu", enabled=False),
    )
    before = validate(model, fixed, context=CPU)["loss"]
    stats = train_one_epoch(step, train, epoch=0, context=CPU)
    after = validate(model, fixed, context=CPU)["loss"]
    assert stats["images_per_s"] > 0 and stats["train_loss"] == pytest.approx(stats["train_loss"])
    assert after < 0.85 * before


def test_a_run_records_recipe_config_checkpoints_csv_tensorboard_and_metrics(
    tmp_path, data, config
):
    summary = run_training(make_job(tmp_path, data, config))
    run = tmp_path / "run"
    assert yaml.safe_load((run / "recipe.yaml").read_text())["epochs"] == 3
    assert yaml.safe_load((run / "config.yaml").read_text())["num_classes"] == 3
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics == summary and metrics["finished"] and metrics["epochs_done"] == 3
    assert metrics["best_val_top1"] == max(float(r["val_top1"]) for r in rows)
    for name in ("last.pt", "best.pt"):
        state = torch.load(run / name, weights_only=True)
        assert {
            "model",
            "optimizer",
            "scheduler",
            "scaler",
            "ema",
            "epoch",
            "model_spec",
            "recipe",
        } <= set(state)
    assert torch.load(run / "best.pt", weights_only=True)["epoch"] == metrics["best_epoch"]


def test_resume_reaches_the_same_state_as_an_uninterrupted_run(tmp_path, data, config):
    run_training(make_job(tmp_path, data, config, output="straight", stop_after=2))
    run_training(make_job(tmp_path, data, config, output="resumed", stop_after=1))
    run_training(
        TrainJob(
            output_dir=str(tmp_path / "resumed"),
            resume=True,
            workers=0,
            progress=False,
            stop_after=1,
        )
    )
    straight = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert straight["epoch"] == resumed["epoch"] == 2
    assert straight["model"].keys() == resumed["model"].keys() and len(straight["model"]) > 10
    for key, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][key]), key
    assert len(straight["optimizer"]["state"]) == len(resumed["optimizer"]["state"]) > 0
    for index, param_state in straight["optimizer"]["state"].items():
        assert torch.equal(param_state["exp_avg"], resumed["optimizer"]["state"][index]["exp_avg"])
    assert straight["scheduler"] == resumed["scheduler"]
    timing = {"images_per_s", "train_time_s"}
    assert {k: v for k, v in straight["metrics"].items() if k not in timing} == {
        k: v for k, v in resumed["metrics"].items() if k not in timing
    }
    rows = list(csv.DictReader(open(tmp_path / "resumed" / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]


def test_the_full_recipe_trains_with_randaugment_mixup_cutmix_erasing_and_ema(
    tmp_path, data, config, capsys
):
    overrides = {"epochs": 2, "warmup_epochs": 1, "batch_size": 8, "ema": True, "ema_decay": 0.9}
    job = make_job(tmp_path, data, config, recipe="full", recipe_overrides=overrides)
    summary = run_training(job)
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["ema"] is not None and "ema_val_top1" in state["metrics"]
    assert summary["finished"] and summary["train_loss"] == pytest.approx(summary["train_loss"])
    # `evaluate --ema` scores the averaged weights the run validated
    capsys.readouterr()
    last = str(tmp_path / "run" / "last.pt")
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                last,
                "--data",
                str(data),
                "--ema",
                "--workers",
                "0",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["top1"] == state["metrics"]["ema_val_top1"]


def test_gradient_accumulation_makes_up_the_global_batch(tmp_path, data, config):
    summary = run_training(
        make_job(
            tmp_path, data, config, device_batch=4, recipe_overrides={"batch_size": 16, "epochs": 1}
        )
    )
    assert (summary["global_batch"], summary["device_batch"], summary["accum_steps"]) == (16, 4, 4)
    assert summary["finished"]


def test_batch_plans_split_the_global_batch_over_devices_and_accumulation():
    assert plan_batches(4096, 8, None, even=True) == BatchPlan(4096, 128, 4)
    assert plan_batches(200, 1, None, even=False) == BatchPlan(200, 100, 2)
    assert plan_batches(64, 2, 8, even=True) == BatchPlan(64, 8, 4)
    with pytest.raises(UserError, match="does not split over 3 processes"):
        plan_batches(64, 3, None, even=False)
    with pytest.raises(UserError, match="--device-batch 48 does not divide"):
        plan_batches(64, 1, 48, even=False)
    with pytest.raises(UserError, match="even per-device batch"):
        plan_batches(6, 2, None, even=True)


def test_a_new_run_refuses_a_folder_that_holds_one_and_resume_needs_one(tmp_path, data, config):
    run_training(
        make_job(tmp_path, data, config, recipe_overrides={"epochs": 1, "warmup_epochs": 0})
    )
    with pytest.raises(UserError, match="pass --resume to continue it"):
        run_training(make_job(tmp_path, data, config))
    with pytest.raises(UserError, match="nothing to resume"):
        run_training(TrainJob(output_dir=str(tmp_path / "empty"), resume=True))
    with pytest.raises(UserError, match="already finished all 1 epochs"):
        run_training(TrainJob(output_dir=str(tmp_path / "run"), resume=True, workers=0))


def test_a_batch_larger_than_the_training_split_is_a_user_error(tmp_path, data, config):
    with pytest.raises(UserError, match="fewer than one batch of 64"):
        run_training(make_job(tmp_path, data, config, recipe_overrides={"batch_size": 64}))


def test_resume_reuses_the_image_subsets_and_refuses_other_ones(tmp_path, data, config):
    run_training(
        make_job(tmp_path, data, config, stop_after=1, max_train_images=8, max_val_images=4)
    )
    summary = run_training(
        TrainJob(
            output_dir=str(tmp_path / "run"), resume=True, workers=0, progress=False, stop_after=1
        )
    )
    first = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert first["run_options"]["max_train_images"] == 8 and summary["epochs_done"] == 2
    with pytest.raises(UserError, match="--max-train-images 16 differs from the 8"):
        run_training(
            TrainJob(output_dir=str(tmp_path / "run"), resume=True, workers=0, max_train_images=16)
        )
    run_training(make_job(tmp_path, data, config, output="whole", stop_after=1))
    with pytest.raises(UserError, match="--device-batch 4 differs from this training, which"):
        run_training(
            TrainJob(output_dir=str(tmp_path / "whole"), resume=True, workers=0, device_batch=4)
        )

"""An image that fails to load, in a DataLoader worker or not, stops a run with one line.

The line names the image and the cause; the checkpoint written so far stays good for --resume.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_train_fixtures import (
    make_cifar_folder,
    make_image_folder,
    one_torch_thread,  # noqa: F401 (an autouse fixture: one torch thread per test)
    write_tiny_config,
)
from timm.data import create_transform

import neonas.train.engine as engine
import neonas.train.trainer as trainer
from neonas.cli import main
from neonas.train.checkpoint import load_checkpoint
from neonas.train.data import (
    DataError,
    build_train_loader,
    build_val_loader,
    detect_layout,
    load_split,
)
from neonas.train.recipe import get_recipe
from neonas.train.trainer import TrainJob, run_training

PLAIN = create_transform(16, is_training=False, crop_pct=1.0)


def corrupt(root: Path) -> Path:
    """Overwrite one training image with bytes that are no image; returns its path."""
    path = root / "train" / "class_1" / "3.png"
    path.write_bytes(b"not an image")
    return path


class FailsOn:
    """A transform that raises on images of one colour (class 2's blue), like a broken op."""

    def __call__(self, image):
        red, green, blue = image.resize((1, 1)).getpixel((0, 0))
        if blue > 150:
            raise ValueError("bits must be between or equal to 1 and 8")
        return PLAIN(image)


@pytest.mark.parametrize("workers", [0, 1])
def test_an_unreadable_image_is_one_line_naming_it(tmp_path, workers):
    root = make_image_folder(tmp_path / "images")
    bad = corrupt(root)
    train = load_split(detect_layout(root), "train", PLAIN)
    loader = build_train_loader(train, batch_size=8, workers=workers)
    with pytest.raises(DataError) as caught:
        list(loader)
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert f"cannot read image {bad}" in message and "UnidentifiedImageError" in message


@pytest.mark.parametrize("workers", [0, 1])
def test_a_transform_that_fails_in_a_worker_is_one_line_naming_the_image(tmp_path, workers):
    root = make_image_folder(tmp_path / "images")
    val = load_split(detect_layout(root), "val", FailsOn())
    with pytest.raises(DataError) as caught:
        list(build_val_loader(val, batch_size=4, workers=workers))
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"transforming image {root / 'val' / 'class_2'}")
    assert "(ValueError: bits must be between or equal to 1 and 8)" in message


def test_a_cifar_image_that_fails_is_named_by_its_index(tmp_path):
    root = make_cifar_folder(tmp_path)
    train = load_split(detect_layout(root), "train", FailsOn())
    with pytest.raises(DataError, match=r"transforming image \d+ of .*cifar-10-batches-py"):
        list(build_train_loader(train, batch_size=4, workers=1))


def test_a_failure_after_the_first_checkpoint_keeps_it_for_resume(tmp_path, monkeypatch):
    """Epoch 1 trains; epoch 2's workers fail; the run stops in one line and resumes later."""
    data = make_image_folder(tmp_path / "images")
    config = write_tiny_config(tmp_path / "tiny.yaml")
    output = tmp_path / "run"
    broken = tmp_path / "broken"  # appears once epoch 1 is saved: the images then fail

    class FailsOnceBroken:
        def __init__(self, transform):
            self.transform = transform

        def __call__(self, image):
            if broken.exists():
                raise OSError("image file is truncated")
            return self.transform(image)

    real_transform, real_save = trainer.train_transform, engine.save_checkpoint
    monkeypatch.setattr(
        trainer, "train_transform", lambda *args: FailsOnceBroken(real_transform(*args))
    )

    def save_then_break(path, state):
        real_save(path, state)
        broken.touch()

    monkeypatch.setattr(engine, "save_checkpoint", save_then_break)  # the run record saves
    recipe = get_recipe("short", {"epochs": 3, "batch_size": 8, "lr": 3e-3})
    job = TrainJob(
        output_dir=str(output),
        data_dir=str(data),
        config_path=str(config),
        recipe=recipe,
        workers=1,
        progress=False,
    )
    with pytest.raises(DataError) as caught:
        run_training(job)
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert "(OSError: image file is truncated)" in message
    assert f"stopped in epoch 2; {output / 'last.pt'} keeps epoch 1: add --resume" in message
    assert load_checkpoint(output / "last.pt")["epoch"] == 1

    broken.unlink()  # the data is fixed
    monkeypatch.undo()
    summary = run_training(TrainJob(output_dir=str(output), resume=True, workers=1, progress=False))
    assert summary["epochs_done"] == 3 and summary["finished"]
    assert load_checkpoint(output / "last.pt")["epoch"] == 3


def test_train_with_a_corrupt_image_exits_2_with_one_line(tmp_path, capsys):
    data = make_image_folder(tmp_path / "images")
    bad = corrupt(data)
    config = write_tiny_config(tmp_path / "tiny.yaml")
    command = ["train", "--config", str(config), "--data", str(data), "--recipe", "short"]
    command += ["--epochs", "2", "--batch-size", "8", "--workers", "1", "--no-progress"]
    assert main([*command, "--output", str(tmp_path / "run")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"neonas train: error: cannot read image {bad}")
    assert lines[0].endswith("stopped in epoch 1, before any checkpoint")
    assert not (tmp_path / "run" / "last.pt").exists()

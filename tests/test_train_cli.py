"""`neonas train` and `neonas evaluate` from the command line: results, and one line per mistake."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from test_train_fixtures import (
    make_cifar_folder,
    make_image_folder,
    one_torch_thread,  # noqa: F401 (an autouse fixture: one torch thread per test)
    write_tiny_config,
)

from neonas.cli import main

FAST = [
    "--recipe",
    "proxy",
    "--epochs",
    "2",
    "--batch-size",
    "8",
    "--lr",
    "3e-3",
    "--workers",
    "0",
    "--no-progress",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small training run shared by the evaluate tests."""
    root = tmp_path_factory.mktemp("trained")
    data = make_image_folder(root / "images")
    config = write_tiny_config(root / "tiny.yaml")
    args = ["train", "--config", str(config), "--data", str(data), "--output", str(root / "run")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module scope: the per-test thread fixture has not started yet
    try:
        assert main([*args, *FAST]) == 0
    finally:
        torch.set_num_threads(threads)
    return root


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_train_prints_json_metrics_and_evaluate_reproduces_the_best_top1(trained, capsys):
    capsys.readouterr()
    best = json.loads((trained / "run" / "metrics.json").read_text())["best_val_top1"]
    checkpoint = trained / "run" / "best.pt"
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(checkpoint),
                "--data",
                str(trained / "images"),
                "--workers",
                "0",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["top1"] == pytest.approx(best)
    assert result["images"] == 18 and 0 <= result["top1"] <= result["top5"] <= 100


def test_evaluate_needs_only_the_val_folder_and_the_checkpoint(trained, tmp_path, capsys):
    shutil.copytree(trained / "images" / "val", tmp_path / "only_val" / "val")
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(trained / "run" / "last.pt"),
                "--data",
                str(tmp_path / "only_val"),
                "--workers",
                "0",
            ]
        )
        == 0
    )
    assert "top1" in capsys.readouterr().out


def test_train_on_a_cifar_python_folder_with_a_timm_model(tmp_path, capsys):
    data = make_cifar_folder(tmp_path)
    args = [
        "train",
        "--model",
        "test_resnet",
        "--data",
        str(data),
        "--output",
        str(tmp_path / "run"),
        "--json",
    ]
    assert (
        main([*args, *FAST, "--epochs", "1", "--set", "warmup_epochs=0", "--image-size", "32"]) == 0
    )
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("{\n") :])  # the JSON follows the per-epoch lines
    assert summary["model"] == "test_resnet" and summary["epochs_done"] == 1
    assert summary == json.loads((tmp_path / "run" / "metrics.json").read_text())


IMAGES = ["--data", "{images}"]
BAD_TRAIN_INPUT = {
    "missing data folder": (
        ["--model", "test_resnet", "--data", "{tmp}/missing"],
        "does not exist",
    ),
    "wrong data layout": (["--model", "test_resnet", "--data", "{tmp}"], "is not a data folder"),
    "missing config": (["--config", "{tmp}/none.yaml", *IMAGES], "config file"),
    "config is not YAML": (["--config", "{not_yaml}", *IMAGES], "not valid YAML"),
    "config is no ArchConfig": (["--config", "{not_arch}", *IMAGES], "not_arch.yaml"),
    "unknown model": (["--model", "no_such_net", *IMAGES], "unknown model 'no_such_net'"),
    "bad --set value": (
        ["--model", "test_resnet", *IMAGES, "--set", "mixup=lots"],
        "'mixup' takes float",
    ),
    "unknown recipe": (
        ["--model", "test_resnet", *IMAGES, "--recipe", "imagenet"],
        "unknown recipe 'imagenet'",
    ),
    "unknown device": (
        ["--model", "test_resnet", *IMAGES, "--device", "tpu"],
        "unknown --device 'tpu'",
    ),
    "no data": (["--model", "test_resnet"], "give --data DIR"),
    "no model": (IMAGES, "give --config FILE"),
    "nothing to resume": (["--resume", "--output", "{tmp}/nothing"], "nothing to resume"),
    "recipe change on resume": (
        ["--resume", "--output", "{tmp}", "--epochs", "5"],
        "leave out --epochs",
    ),
}


@pytest.fixture
def places(tmp_path):
    """Paths the bad inputs refer to: a good image folder and two configs that do not load."""
    return {
        "tmp": tmp_path,
        "images": make_image_folder(tmp_path / "images"),
        "not_yaml": _write(tmp_path / "not_yaml.yaml", "stages: ["),
        "not_arch": _write(tmp_path / "not_arch.yaml", "name: x\nstages: []\n"),
    }


@pytest.mark.parametrize(("args", "message"), BAD_TRAIN_INPUT.values(), ids=BAD_TRAIN_INPUT.keys())
def test_bad_train_input_is_one_line_and_exit_status_2(places, capsys, args, message):
    args = [arg.format(**places) for arg in args]
    output = str(places["tmp"] / "out")
    assert main(["train", *args, "--output", output, "--workers", "0"]) == 2
    line = one_error_line(capsys)
    assert line.startswith("neonas train: error:") and message in line


BAD_EVALUATE_INPUT = {
    "missing checkpoint": ("{tmp}/none.pt", "{run}/../images", "does not exist"),
    "not a checkpoint": ("{junk}", "{run}/../images", "is not a readable checkpoint"),
    "other classes": ("{run}/best.pt", "{cifar}", "has 10 classes, the model was trained on 3"),
}


@pytest.mark.parametrize(
    ("checkpoint", "data", "message"), BAD_EVALUATE_INPUT.values(), ids=BAD_EVALUATE_INPUT.keys()
)
def test_bad_evaluate_input_is_one_line_and_exit_status_2(
    tmp_path, capsys, trained, checkpoint, data, message
):
    places = {
        "tmp": tmp_path,
        "run": trained / "run",
        "junk": _write(tmp_path / "junk.pt", "not a checkpoint"),
        "cifar": make_cifar_folder(tmp_path / "cifar"),
    }
    capsys.readouterr()
    args = ["--checkpoint", checkpoint.format(**places), "--data", data.format(**places)]
    assert main(["evaluate", *args, "--workers", "0"]) == 2
    assert message in one_error_line(capsys)


def _write(path, text):
    path.write_text(text)
    return path

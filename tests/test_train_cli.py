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
from neonas.train.checkpoint import load_checkpoint, save_checkpoint

FAST = [
    "--recipe",
    "short",
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


def test_a_short_full_recipe_run_scales_its_warmup_and_says_so(tmp_path, capsys):
    data = make_image_folder(tmp_path / "images")
    config = write_tiny_config(tmp_path / "tiny.yaml")
    args = ["train", "--config", str(config), "--data", str(data), "--epochs", "1"]
    small = ["--batch-size", "8", "--workers", "0", "--no-progress", "--max-train-images", "16"]
    assert main([*args, *small, "--output", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "warm-up 0.0667 epochs: the full recipe's 20 of 300 epochs, scaled to 1" in out
    recorded = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["recipe"]
    assert recorded["warmup_epochs"] == pytest.approx(20 / 300)
    explicit = [*args, *small, "--warmup-epochs", "0", "--output", str(tmp_path / "explicit")]
    assert main(explicit) == 0
    assert "warm-up" not in capsys.readouterr().out


@pytest.mark.slow  # 4 epochs of 240 images through two DataLoader workers: about 1 min
def test_the_full_recipe_trains_several_epochs_through_dataloader_workers(tmp_path, capsys):
    """The README's retraining step with the paper's recipe, RandAugment in worker processes.

    960 augmented images: before posterize kept a bit, about 1 in 660 raised in a worker.
    """
    data = make_image_folder(tmp_path / "images", train_per_class=80, size=24)
    config = write_tiny_config(tmp_path / "tiny.yaml")
    command = ["train", "--config", str(config), "--data", str(data), "--epochs", "4"]
    command += ["--batch-size", "8", "--workers", "2", "--no-progress", "--json"]
    assert main([*command, "--output", str(tmp_path / "run")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["recipe"] == "full" and summary["epochs_done"] == 4 and summary["finished"]
    assert summary["train_loss"] == pytest.approx(summary["train_loss"])  # not NaN
    recipe = (tmp_path / "run" / "recipe.yaml").read_text()
    assert "auto_augment: rand-m9-n2-mstd0.5-inc1" in recipe and "mixup: 0.8" in recipe


def test_the_same_train_command_with_resume_added_continues_it(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default --output, results/train/<model>-<recipe>
    data = make_image_folder(tmp_path / "images")
    config = write_tiny_config(tmp_path / "tiny.yaml")
    command = ["train", "--config", str(config), "--data", str(data), *FAST, "--stop-after", "1"]
    assert main(command) == 0
    assert main([*command, "--resume"]) == 0
    metrics = json.loads((tmp_path / "results/train/tiny-short/metrics.json").read_text())
    assert metrics["epochs_done"] == 2 and metrics["finished"]
    capsys.readouterr()

    assert main([*command, "--resume", "--epochs", "3"]) == 2
    line = one_error_line(capsys)
    assert "recipe epochs 3 differs from the 2 this training started with" in line
    other = tmp_path / "other.yaml"
    other.write_text(config.read_text().replace("width: 32", "width: 48"))
    changed = [arg if arg != str(config) else str(other) for arg in command]
    assert main([*changed, "--resume", "--output", "results/train/tiny-short"]) == 2
    line = one_error_line(capsys)
    assert f"--config {other} is another network" in line and "differs in stages" in line


def test_a_run_recorded_under_the_old_recipe_name_proxy_resumes(tmp_path, capsys):
    data = make_image_folder(tmp_path / "images")
    config = write_tiny_config(tmp_path / "tiny.yaml")
    output = tmp_path / "run"

    def command(recipe: str) -> list[str]:
        return [
            *("train", "--config", str(config), "--data", str(data), "--recipe", recipe),
            *("--epochs", "3", "--batch-size", "8", "--lr", "3e-3", "--workers", "0"),
            *("--no-progress", "--output", str(output), "--stop-after", "1"),
        ]

    assert main(command("short")) == 0
    state = load_checkpoint(output / "last.pt")
    state["recipe"]["name"] = "proxy"  # as a checkpoint written before the rename
    save_checkpoint(output / "last.pt", state)
    capsys.readouterr()
    for name in ("proxy", "short"):  # the command that started it, or with the new name
        assert main([*command(name), "--resume"]) == 0, capsys.readouterr().err
    summary = json.loads((output / "metrics.json").read_text())
    assert summary["finished"] and summary["recipe"] == "proxy"


def test_a_fine_tuning_resumes_with_its_init_given_again_but_not_another(tmp_path, capsys):
    data = make_image_folder(tmp_path / "images")
    config = write_tiny_config(tmp_path / "tiny.yaml")
    base = ["train", "--config", str(config), "--data", str(data), *FAST, "--stop-after", "1"]
    assert main([*base, "--output", str(tmp_path / "first")]) == 0
    start = str(tmp_path / "first" / "last.pt")
    tune = [*base, "--init", start, "--output", str(tmp_path / "tuned")]
    assert main(tune) == 0
    assert main([*tune, "--resume"]) == 0
    assert json.loads((tmp_path / "tuned" / "metrics.json").read_text())["epochs_done"] == 2
    capsys.readouterr()
    other = [arg if arg != start else str(tmp_path / "tuned" / "last.pt") for arg in tune]
    assert main([*other, "--resume"]) == 2
    assert f"--init {tmp_path / 'tuned' / 'last.pt'} differs from the {start}" in one_error_line(
        capsys
    )


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
    "ray workers without ray": (
        ["--model", "test_resnet", *IMAGES, "--ray-workers", "2"],
        "--ray-workers sets the Ray Train workers: it needs --address",
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

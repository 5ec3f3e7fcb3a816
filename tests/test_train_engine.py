"""The one training engine computes what the three separate loops computed before it.

REFERENCE was recorded on main at 15cdc74, before `train`, short training and the supernet's
training moved onto neonas/train/engine.py: the same tiny runs (one torch thread) gave these
losses and weight sums there, bit for bit, and give them here. The tolerance only allows for
another CPU's rounding; a changed seed, warm-up, batch order or update differs far more.

oneDNN picks its kernels by the CPU's instruction set, and its AVX-512 kernels round otherwise
than the AVX2 ones the reference was recorded with (on an AVX-512 EPYC: validation loss 2e-4
and weight sums 3e-5 apart, training loss equal). So the runs happen in a fresh process with
oneDNN capped at AVX2 (ONEDNN_MAX_CPU_ISA, read once when oneDNN starts), which computes the
reference on either kind of CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

RECORDED_ISA = {"ONEDNN_MAX_CPU_ISA": "AVX2"}  # the instruction set the reference was made with
MARK = "engine-results: "  # the line of the subprocess's output that carries the results

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


def assert_as_before(name: str, result: dict) -> None:
    expected = REFERENCE[name]
    for key in ("train_loss", "val_loss"):
        if key in expected:
            assert result[key] == pytest.approx(expected[key], **CLOSE), key
    assert tuple(result["weights"]) == pytest.approx(expected["weights"], **CLOSE)


def run_cases(root: Path) -> dict[str, dict]:
    """Each REFERENCE run, on one torch thread: its losses and weight sums."""
    from test_train_fixtures import make_image_folder, write_tiny_config

    from neonas.models import resolve_model
    from neonas.supernet.training import train_supernet
    from neonas.train.checkpoint import load_checkpoint
    from neonas.train.recipe import get_recipe
    from neonas.train.short_training import short_train
    from neonas.train.trainer import TrainJob, run_training

    torch.set_num_threads(1)
    make_image_folder(root / "images")
    write_tiny_config(root / "tiny.yaml")
    results: dict[str, dict] = {}

    torch.manual_seed(0)
    model = resolve_model(config=root / "tiny.yaml", num_classes=3)[0]
    metrics = short_train(model, root / "images", epochs=2, image_size=16, batch_size=8, seed=1)
    results["short"] = {**metrics, "weights": weight_sums(model.state_dict())}

    job = TrainJob(
        output_dir=str(root / "run"),
        data_dir=str(root / "images"),
        config_path=str(root / "tiny.yaml"),
        recipe=get_recipe("short", {"epochs": 2, "batch_size": 8, "lr": 3e-3, "seed": 2}),
        workers=0,
        progress=False,
    )
    summary = run_training(job)
    state = load_checkpoint(root / "run" / "last.pt")["model"]
    results["train"] = {**summary, "weights": weight_sums(state)}

    data = make_image_folder(
        root / "supernet-images", classes=4, train_per_class=6, val_per_class=4, size=32
    )
    for sampling in ("uniform", "sandwich"):
        last = train_supernet(
            "tiny",
            data,
            output_dir=root / f"supernet-{sampling}",
            epochs=2,
            batch_size=8,
            random_subnets=1,
            seed=3,
            sampling=sampling,
            workers=0,
        )
        state = load_checkpoint(last)
        results[f"supernet-{sampling}"] = {
            **state["metrics"],
            "epoch": state["epoch"],
            "weights": weight_sums(state["model"]),
        }
    return results


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("engine")
    done = subprocess.run(
        [sys.executable, __file__, str(root)],
        env={**os.environ, **RECORDED_ISA},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith(MARK))
    return json.loads(line.removeprefix(MARK))


def test_short_training_trains_as_before(results) -> None:
    assert results["short"]["epochs"] == 2 and results["short"]["val_top1"] == 100.0
    assert_as_before("short", results["short"])


def test_train_trains_as_before(results) -> None:
    assert results["train"]["finished"] and results["train"]["val_top1"] == 100.0
    assert_as_before("train", results["train"])


@pytest.mark.parametrize("sampling", ["uniform", "sandwich"])
def test_the_supernet_trains_as_before(results, sampling) -> None:
    assert results[f"supernet-{sampling}"]["epoch"] == 2
    assert_as_before(f"supernet-{sampling}", results[f"supernet-{sampling}"])


if __name__ == "__main__":
    found = run_cases(Path(sys.argv[1]))
    print(MARK + json.dumps(found, default=str))

"""`neonas train` under torchrun: two CPU processes (gloo) train one model as DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from test_train_fixtures import make_image_folder, write_tiny_config

from neonas.cli import main

ROOT = Path(__file__).parents[1]


def test_two_cpu_processes_train_with_ddp_and_rank_0_writes_the_folder(tmp_path, capsys):
    data = make_image_folder(tmp_path / "images")
    config = write_tiny_config(tmp_path / "tiny.yaml")
    output = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(ROOT / "cli.py"), "train", "--config", str(config), "--data", str(data), "--output", str(output),
        "--recipe", "short", "--epochs", "2", "--batch-size", "8", "--lr", "3e-3",
        "--device", "cpu", "--workers", "0", "--no-progress", "--json",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)  # with --json, stdout holds the summary alone
    assert summary["world_size"] == 2 and summary["finished"]
    # the global batch 8 is 2 processes x 4 images, one update per 8 of the 48 images
    assert (summary["device_batch"], summary["accum_steps"]) == (4, 1)
    assert result.stderr.count("epoch 2/2") == 1  # only rank 0 speaks (progress on stderr)
    state = torch.load(output / "last.pt", weights_only=True)
    assert state["world_size"] == 2 and state["epoch"] == 2
    assert state["model"] and not any(
        key.startswith("module.") for key in state["model"]
    )  # saved without the DDP wrapper
    # validation counted every image exactly once across the two shards
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(output / "last.pt"),
                "--data",
                str(data),
                "--workers",
                "0",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["top1"] == state["metrics"]["val_top1"]

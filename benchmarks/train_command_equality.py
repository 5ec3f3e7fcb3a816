"""Does `neonas train` compute NeoCell-Bench's recipe? One network, both ways, side by side.

    python benchmarks/train_command_equality.py --cache /work/bench-cache \
        [--config configs/neonext_hand_32px.yaml] [--seeds 0,1]

The table's ground truth and the end-to-end retraining (benchmarks/end_to_end.py) train with
accuracy_signals.truth_job, in process. Issue 18 asks for the retraining to be the `train`
command's, as a user would run it. This script trains the same network on the same images
both ways, one torch thread each, and prints the validation top-1 and loss of each in full
precision, whether the top-1s are equal and how far apart the losses are (the validation
batches differ: 128 images in truth_job, 64 in `train`, so the loss is summed in another
order):

- truth_job: the `short` recipe, 15 epochs, batch 64, 32 px, every training image of the
  `digits` folder of the cache (500), validated on all 1,297, seed S;
- `python cli.py train --config FILE --data DIGITS --recipe short --epochs 15 --batch-size 64
  --image-size 32 --seed S --workers 0 --device cpu --no-progress --json` in a subprocess
  (OMP / torch threads 1), its final `val_top1` / `val_loss` from the printed JSON.

When the top-1s are equal, every retrained network of the end-to-end table has the `train`
command's result: the deviation "retrained with truth_job, not with `train`" is one of code
path only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from accuracy_signals import PROTOCOLS, make_data, truth_job
from exit_status import reports_user_errors
from neocell_bench import for_data

from neonas.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
DATASET = "digits"


def with_train_command(config: Path, data: Path, seed: int, epochs: int) -> dict[str, float]:
    """The final validation top-1 and loss of `neonas train` on `config`, one thread."""
    with tempfile.TemporaryDirectory() as output:
        command = [
            sys.executable,
            str(ROOT / "cli.py"),
            "train",
            "--config",
            str(config),
            "--data",
            str(data),
            "--recipe",
            "short",
            "--epochs",
            str(epochs),
            "--batch-size",
            "64",
            "--image-size",
            "32",
            "--seed",
            str(seed),
            "--workers",
            "0",
            "--device",
            "cpu",
            "--no-progress",
            "--json",
            "--output",
            output,
        ]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
        if done.returncode:
            raise UserError(f"train failed: {done.stderr.strip().splitlines()[-1]}")
        summary = json.loads(done.stdout)
    return {"top1": summary["val_top1"], "loss": summary["val_loss"]}


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="NeoCell-Bench's cache")
    parser.add_argument("--config", type=Path, default=ROOT / "configs/neonext_hand_32px.yaml")
    parser.add_argument("--seeds", default="0,1")
    args = parser.parse_args(argv)
    import torch

    from neonas.arch import ArchConfig

    torch.set_num_threads(1)
    data = make_data(args.cache, DATASET)
    protocol = PROTOCOLS[DATASET]
    config = for_data(ArchConfig.load(args.config).to_dict(), data)
    for seed in (int(s) for s in args.seeds.split(",")):
        truth = truth_job(config, data, protocol, seed)
        command = with_train_command(args.config, data, seed, protocol.truth_epochs)
        loss_gap = abs(truth["loss"] - command["loss"]) / abs(truth["loss"])
        print(
            f"{args.config.name} seed {seed}: truth_job top-1 {truth['top1']!r} loss "
            f"{truth['loss']!r}; train command top-1 {command['top1']!r} loss "
            f"{command['loss']!r}; top-1 equal: {truth['top1'] == command['top1']}, "
            f"loss relative difference {loss_gap:.1e}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Two-process training (torchrun, CPU) by two code versions: the same weights and losses?

Protocol: for each `--root` (a checkout of neonas), generate the same tiny data set (4 colour
classes, 8 training / 4 validation images each, 32 px) and run, with that checkout's code on
PYTHONPATH and one thread per process,

- `supernet train --space tiny --epochs 2 --batch-size 8 --random-subnets 2 --sampling sandwich`
  on 2 processes (gradients all-reduced by the supernet's step, distillation on);
- `train --config <tiny NeoNeXt> --epochs 2 --batch-size 8 --device-batch 2` on 2 processes
  (DDP with 2 accumulation steps);

then print, per run, the sum and absolute sum of the final weights and the last epoch's
losses, and whether all roots agree bit for bit. `--recipe` per root names the recipe preset
(`proxy` for code from before its rename to `short`).

    python benchmarks/distributed_equality.py --root /work/main:proxy --root .:short
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch


def run(root: Path, recipe: str, folder: Path) -> dict[str, tuple]:
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    make_data = (
        f"import sys; sys.path.insert(0, {str(root / 'tests')!r})\n"
        "from pathlib import Path\n"
        "from test_train_fixtures import make_image_folder, write_tiny_config\n"
        f"make_image_folder(Path({str(folder / 'images')!r}), classes=4, train_per_class=8,"
        " val_per_class=4, size=32)\n"
        f"write_tiny_config(Path({str(folder / 'tiny.yaml')!r}))\n"
    )
    subprocess.run([sys.executable, "-c", make_data], env=env, check=True)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    torchrun += ["--nproc_per_node", "2", str(root / "cli.py")]
    data = ["--data", str(folder / "images"), "--device", "cpu", "--no-progress"]
    commands = {
        "supernet": [
            *("supernet", "train", "--space", "tiny", "--output", str(folder / "supernet")),
            *("--epochs", "2", "--batch-size", "8", "--random-subnets", "2"),
            *("--sampling", "sandwich"),
        ],
        "train": [
            *("train", "--config", str(folder / "tiny.yaml"), "--output", str(folder / "train")),
            *("--recipe", recipe, "--epochs", "2", "--batch-size", "8", "--device-batch", "2"),
            *("--lr", "3e-3", "--workers", "0"),
        ],
    }
    results = {}
    for name, command in commands.items():
        done = subprocess.run(
            [*torchrun, *command, *data], env=env, cwd=folder, capture_output=True, text=True
        )
        if done.returncode:
            raise SystemExit(f"{root}: {name} failed:\n{done.stderr[-2000:]}")
        state = torch.load(folder / name / "last.pt", weights_only=True)
        tensors = [v.double() for v in state["model"].values() if v.is_floating_point()]
        sums = (float(sum(t.sum() for t in tensors)), float(sum(t.abs().sum() for t in tensors)))
        losses = tuple(sorted((k, v) for k, v in state["metrics"].items() if "loss" in k))
        results[name] = (sums, losses)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", action="append", required=True, help="CHECKOUT[:RECIPE]")
    args = parser.parse_args()
    outcomes = {}
    for item in args.root:
        root, _, recipe = item.partition(":")
        with tempfile.TemporaryDirectory() as folder:
            outcomes[item] = run(Path(root).resolve(), recipe or "short", Path(folder))
        for name, (sums, losses) in outcomes[item].items():
            print(f"{item} {name}: weight sums {sums[0]!r} {sums[1]!r}; {dict(losses)}")
    print("bit-equal:", len({repr(result) for result in outcomes.values()}) == 1)


if __name__ == "__main__":
    main()

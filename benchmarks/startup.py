"""Start-up time of `python cli.py --help`, now and as it was when `import neonas` loaded torch.

Each round runs, in fresh interpreters and interleaved so that machine load hits both alike:
  help       `python cli.py --help` (what a user types)
  eager      `import neonas.models; import neonas.cli` then --help: what `--help` imported
             before `import neonas` stopped importing models (torch, timm, torchvision)
  python     `python -c pass`, the floor every command pays
It prints min and median wall time per variant and which heavy modules `--help` loaded.

    python benchmarks/startup.py --rounds 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "timm", "torchvision", "ray", "optuna", "numpy", "fvcore", "matplotlib")

VARIANTS = {
    "help": ["cli.py", "--help"],
    "eager": [
        "-c",
        "import sys; import neonas.models; from neonas.cli import main; "
        "sys.argv = ['neonas', '--help']; main()",
    ],
    "python": ["-c", "pass"],
}


def wall_time(args: list[str]) -> float:
    """Seconds one fresh interpreter takes to run `args` from the repository root."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def modules_loaded_by_help() -> list[str]:
    """The HEAVY modules in sys.modules after `neonas --help` has printed."""
    code = (
        "import sys\nfrom neonas.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print('loaded:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()[-1]
    return [name for name in out.removeprefix("loaded:").split(",") if name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for argv in VARIANTS.values():  # one untimed run each: file caches warm
        wall_time(argv)
    for _ in range(args.rounds):
        for name, argv in VARIANTS.items():
            times[name].append(wall_time(argv))
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, {args.rounds} rounds")
    for name, values in times.items():
        print(f"{name:7s} min {min(values):.3f} s  median {statistics.median(values):.3f} s")
    print("heavy modules after --help:", ", ".join(modules_loaded_by_help()) or "none")


if __name__ == "__main__":
    main()

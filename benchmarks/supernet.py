"""Cost of the supernet accuracy signal on the tiny space, on CPU: training once, then per candidate.

Makes a 10-class image folder of 32 px images (class colour + noise, drawn shapes), trains the
tiny space's supernet on it (`train_supernet`, sandwich of largest + smallest + 2 random
subnets per step), then scores random candidates of the space with `SubnetScorer` (extract,
BatchNorm re-estimation on 256 training images, top-1 on the held-out images). For scale, the
same candidates are also trained the way `search --data` does it (`short_train`, 3 epochs on
the same training images), interleaved with the scoring, candidate by candidate.

    python benchmarks/supernet.py                       # about 5 minutes on 1 thread
    python benchmarks/supernet.py --epochs 2 --candidates 4 --train-per-class 20

Prints the supernet's epoch lines, then one JSON object: the protocol, the load average, and
min/median seconds per candidate.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_shapes_folder(root: Path, classes: int, train: int, val: int, size: int = 32) -> Path:
    """train/ and val/ of `classes` classes: a shape per class on a noisy coloured background."""
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("val", val)):
        for label in range(classes):
            folder = root / split / f"c{label}"
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                pixels = rng.integers(0, 120, size=(size, size, 3)).astype(np.uint8)
                image = Image.fromarray(pixels)
                draw = ImageDraw.Draw(image)
                x, y = rng.integers(2, size // 2, size=2)
                extent = int(rng.integers(size // 4, size // 2))
                colour = tuple(int(v) for v in rng.integers(120, 256, size=3))
                if label % 2:
                    draw.ellipse([x, y, x + extent, y + extent], fill=colour)
                else:
                    draw.rectangle([x, y, x + extent, y + extent // (1 + label // 4)], fill=colour)
                draw.line([0, label * 3, size, label * 3], fill=(255, 255, 255), width=1)
                image.save(folder / f"{index}.png")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="supernet epochs")
    parser.add_argument("--candidates", type=int, default=6)
    parser.add_argument("--train-per-class", type=int, default=40)
    parser.add_argument("--val-per-class", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-short-training", action="store_true", help="skip the comparison")
    args = parser.parse_args()

    import torch

    from neonas.models import build_model
    from neonas.space import load_space
    from neonas.supernet import SubnetScorer, train_supernet
    from neonas.train.short_training import short_train

    torch.set_num_threads(args.threads)
    space = load_space("tiny")
    with tempfile.TemporaryDirectory() as tmp:
        data = make_shapes_folder(Path(tmp) / "data", 10, args.train_per_class, args.val_per_class)
        start = time.perf_counter()
        checkpoint = train_supernet(  # the sandwich, as the README's cost figures were taken
            "tiny",
            data,
            output_dir=Path(tmp) / "supernet",
            epochs=args.epochs,
            batch_size=32,
            sampling="sandwich",
        )
        train_s = time.perf_counter() - start
        summary = json.loads((checkpoint.parent / "metrics.json").read_text())
        start = time.perf_counter()
        scorer = SubnetScorer(checkpoint, data)
        load_s = time.perf_counter() - start

        rng = random.Random(0)
        score_s, short_s, rows = [], [], []
        for _ in range(args.candidates):
            config = space.sample(rng)
            start = time.perf_counter()
            top1 = scorer.score(config)
            score_s.append(time.perf_counter() - start)
            row = {"supernet_top1": round(top1, 2)}
            if not args.no_short_training:
                model = build_model(config, num_classes=10)
                start = time.perf_counter()
                metrics = short_train(model, data, epochs=3, image_size=32, max_train_images=None)
                short_s.append(time.perf_counter() - start)
                row["short_training_top1"] = round(metrics["val_top1"], 2)
            rows.append(row)

    def spread(values: list[float]) -> dict[str, float] | None:
        if not values:
            return None
        return {"min": round(min(values), 3), "median": round(statistics.median(values), 3)}

    print(
        json.dumps(
            {
                "protocol": (
                    f"tiny space, 10 classes x {args.train_per_class} train / {args.val_per_class} "
                    f"val images at 32 px, {args.threads} torch thread(s); supernet {args.epochs} "
                    "epochs, batch 32, largest + smallest + 2 random subnets per step; scoring = "
                    "extract + BN re-estimation on 256 train images + top-1 on all val images; "
                    "short training = short_train 3 epochs on all train images (what search --data "
                    "runs); scoring and short training interleaved per candidate"
                ),
                "load_average": [round(v, 2) for v in os.getloadavg()],
                "supernet_train_s": round(train_s, 1),
                "supernet_epoch_s": round(summary["train_time_s"], 1),
                "supernet_largest_val_top1": round(summary["largest_val_top1"], 2),
                "supernet_smallest_val_top1": round(summary["smallest_val_top1"], 2),
                "scorer_load_s": round(load_s, 2),
                "score_s_per_candidate": spread(score_s),
                "short_training_s_per_candidate": spread(short_s),
                "candidates": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

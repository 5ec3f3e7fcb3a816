"""Does short training (`search --signal short-training`) separate networks? Top-1 per epoch.

    python benchmarks/search_data_defaults.py [--networks 4] [--epochs 8] [--train 1297]

scikit-learn's handwritten digits (1797 images, 8x8 upsampled to 32 px, 10 classes; nothing
downloaded): the first `--train` images for training, the rest (500) for validation. A few
tiny-space networks chosen to span the space are trained exactly as a search trial trains them
(`neonas.train.short_training.short_train`, the search's batch size and image counts), and the validation
top-1 after every epoch is printed with the chance level (10 %) and the noise band of a
validation set this size (two binomial standard deviations at chance). Protocol: one process,
one CPU thread, networks one after the other; seconds are wall time on a shared machine.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from accuracy_signals import digits_folder, spanning_networks

from neonas.search.settings import EvalSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train", type=int, default=1297)
    args = parser.parse_args()

    import torch

    from neonas.arch import ArchConfig
    from neonas.models import build_model
    from neonas.train.short_training import short_train

    torch.set_num_threads(1)
    defaults = EvalSettings()
    data = digits_folder(Path(tempfile.mkdtemp()) / "digits", args.train)
    val = 1797 - args.train
    band = 2 * math.sqrt(0.1 * 0.9 / min(val, defaults.max_val_images)) * 100
    print(
        f"digits at 32 px: {args.train} training / {val} validation images; chance 10.0 %, "
        f"noise band +-{band:.1f} % (2 sd); search defaults: {defaults.epochs} epochs, "
        f"batch {defaults.batch_size}, at most {defaults.max_train_images} training images"
    )
    for config in spanning_networks(args.networks):
        top1: list[float] = []
        torch.manual_seed(0)
        model = build_model(ArchConfig.from_dict(config))
        start = time.perf_counter()
        short_train(
            model,
            data,
            epochs=args.epochs,
            image_size=32,
            batch_size=defaults.batch_size,
            max_train_images=defaults.max_train_images,
            max_val_images=defaults.max_val_images,
            on_epoch=lambda epoch, metrics, curve=top1: curve.append(metrics["val_top1"]),
        )
        seconds = time.perf_counter() - start
        curve = " ".join(f"{value:5.1f}" for value in top1)
        print(f"{config['name']}: top-1 by epoch {curve}  ({seconds / args.epochs:.1f} s/epoch)")


if __name__ == "__main__":
    main()

"""Generated data and configs for the training tests: `from test_train_fixtures import ...`.

Importing `one_torch_thread` into a test module makes it autouse there.

Images are easy to learn: each class has its own dominant colour, plus noise.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models train fastest on one thread; on a shared CPU two threads can be 20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


COLOURS = [(220, 30, 30), (30, 200, 40), (40, 50, 230), (230, 220, 30)]

TINY_NEONEXT = """\
name: tiny_neonext
input_size: 16
num_classes: 10
stem_patch: 4
stages:
- {depth: 1, width: 16, cells: [{size: 2, share: 0.5, shift: true}, {size: 4, share: 0.5}]}
- {depth: 1, width: 32, cells: [{size: 2}], sampling: [2, 1]}
drop_path_rate: 0.1
"""


def coloured_image(colour: tuple[int, int, int], size: int, rng: np.random.Generator) -> np.ndarray:
    noise = rng.integers(-40, 41, size=(size, size, 3))
    return np.clip(np.array(colour)[None, None, :] + noise, 0, 255).astype(np.uint8)


def make_image_folder(
    root: Path, classes: int = 3, train_per_class: int = 16, val_per_class: int = 6, size: int = 16
) -> Path:
    """train/<class>/*.png and val/<class>/*.png, one colour per class."""
    rng = np.random.default_rng(0)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for index in range(classes):
            folder = root / split / f"class_{index}"
            folder.mkdir(parents=True)
            for number in range(count):
                Image.fromarray(coloured_image(COLOURS[index], size, rng)).save(
                    folder / f"{number}.png"
                )
    return root


def make_cifar_folder(root: Path, train_per_batch: int = 8, test_images: int = 20) -> Path:
    """A cifar-10-batches-py folder in the real format (pickled dicts with bytes keys)."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def batch(count: int, name: str) -> dict:
        labels = [int(label) for label in rng.integers(0, 4, size=count)]
        images = np.stack([coloured_image(COLOURS[label], 32, rng) for label in labels])
        data = images.transpose(0, 3, 1, 2).reshape(count, 3072)  # rows of R, G, B planes
        return {
            b"batch_label": name.encode(),
            b"labels": labels,
            b"data": data,
            b"filenames": [b"x.png"] * count,
        }

    for index in range(1, 6):
        with open(folder / f"data_batch_{index}", "wb") as handle:
            pickle.dump(batch(train_per_batch, f"training batch {index} of 5"), handle, protocol=2)
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump(batch(test_images, "testing batch 1 of 1"), handle, protocol=2)
    names = [
        b"airplane",
        b"automobile",
        b"bird",
        b"cat",
        b"deer",
        b"dog",
        b"frog",
        b"horse",
        b"ship",
        b"truck",
    ]
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump(
            {b"label_names": names, b"num_cases_per_batch": train_per_batch, b"num_vis": 3072},
            handle,
            protocol=2,
        )
    return root


def write_tiny_config(path: Path) -> Path:
    """An ArchConfig YAML of a two-stage NeoNeXt for 16x16 images."""
    path.write_text(TINY_NEONEXT)
    return path

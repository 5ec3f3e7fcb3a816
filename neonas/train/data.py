"""Image datasets read from disk (ImageFolder tree or CIFAR-10 python folder) and their loaders.

Nothing is downloaded. A wrong or missing layout is a UserError that says what was expected.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset, default_collate
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from neonas.errors import UserError

CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
EXPECTED = (
    "an ImageFolder tree (train/<class>/<image> and val/<class>/<image>) or a CIFAR-10 python "
    f"folder ({CIFAR_FOLDER}/ with data_batch_1..5 and test_batch)"
)

Transform = Callable[[Image.Image], Any]


class DataError(UserError):
    """An image that could not be read or transformed, named in one line; training stops there."""


@dataclass(frozen=True)
class DataLayout:
    """Where a data set lives on disk and what its classes are."""

    kind: str  # "imagefolder" or "cifar10"
    root: Path  # the folder holding train/ and val/, or the cifar-10-batches-py folder
    classes: tuple[str, ...]


@dataclass(frozen=True)
class Datasets:
    """The training and validation splits of one data folder."""

    train: Dataset
    val: Dataset
    layout: DataLayout


def detect_layout(data_dir: str | Path, classes: tuple[str, ...] | None = None) -> DataLayout:
    """Recognise an ImageFolder tree or a CIFAR-10 python folder; UserError for anything else.

    `classes` (a trained model's) fixes the class indices; then an ImageFolder needs only val/.
    """
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise UserError(f"data folder {root} does not exist: pass --data with {EXPECTED}")
    for candidate in (root, root / CIFAR_FOLDER):
        if (candidate / "test_batch").is_file() or list(candidate.glob("data_batch_*")):
            layout = _cifar_layout(candidate)
            break
    else:
        if not ((root / "train").is_dir() or (root / "val").is_dir()):
            raise UserError(f"{root} is not a data folder: expected {EXPECTED}")
        layout = _imagefolder_layout(root, classes)
    if classes is not None and len(layout.classes) != len(classes):
        raise UserError(
            f"{root} has {len(layout.classes)} classes, the model was trained on {len(classes)}"
        )
    return layout


def build_datasets(
    layout: DataLayout,
    train_transform: Transform,
    val_transform: Transform,
    *,
    max_train_images: int | None = None,
    max_val_images: int | None = None,
    seed: int = 0,
) -> Datasets:
    """Both splits of a data folder, each optionally a fixed random subset (same seed, same)."""
    train = load_split(layout, "train", train_transform, max_images=max_train_images, seed=seed)
    val = load_split(layout, "val", val_transform, max_images=max_val_images, seed=seed)
    return Datasets(train=train, val=val, layout=layout)


def load_split(
    layout: DataLayout,
    split: str,
    transform: Transform,
    *,
    max_images: int | None = None,
    seed: int = 0,
) -> Dataset:
    """One split ('train' or 'val'), optionally a fixed random subset of `max_images`."""
    if layout.kind == "cifar10":
        dataset: Dataset = Cifar10Folder(layout.root, split, transform)
    else:
        dataset = _imagefolder_split(layout, split, transform)
    if max_images is not None and max_images < len(dataset):
        generator = torch.Generator().manual_seed(seed)
        keep = torch.randperm(len(dataset), generator=generator)[:max_images].sort().values
        dataset = Subset(dataset, keep.tolist())
    return dataset


class Cifar10Folder(Dataset):
    """The CIFAR-10 python batches (data_batch_*, test_batch) held in memory as uint8 images."""

    def __init__(self, root: str | Path, split: str, transform: Transform | None = None) -> None:
        root = Path(root)
        self.root = root
        files = sorted(root.glob("data_batch_*")) if split == "train" else [root / "test_batch"]
        if not files or not files[0].is_file():
            raise UserError(
                f"{root}: no {'data_batch_*' if split == 'train' else 'test_batch'} file: expected {EXPECTED}"
            )
        images, labels = [], []
        for file in files:
            batch = _read_cifar_batch(file)
            images.append(batch["data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.extend(int(label) for label in batch["labels"])
        self.images = np.ascontiguousarray(np.concatenate(images))
        self.targets = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = Image.fromarray(self.images[index])
        if self.transform is not None:
            image = _transformed(image, self.transform, f"image {index} of {self.root}")
        return image, self.targets[index]


def loader_workers(requested: int) -> int:
    """`requested` worker processes, capped at this process's share of the CPUs it may use.

    More workers than CPUs only compete for them (PyTorch warns about it on every loader);
    the CPU affinity, not os.cpu_count(), is what a container or `taskset` allows. Under
    torchrun, the processes of one machine (LOCAL_WORLD_SIZE) share those CPUs.
    """
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # no CPU affinity on macOS and Windows
        available = os.cpu_count() or 1
    processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(0, min(requested, available // processes))


def build_train_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    workers: int,
    rank: int = 0,
    world_size: int = 1,
    seed: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """Shuffled full batches; each rank reads its own shard, reshuffled by `set_epoch`.

    `workers` is capped at the CPUs available (`loader_workers`).
    """
    # DistributedSampler also for one process: its order depends only on (seed, epoch), which
    # is what makes --resume replay exactly the batches an uninterrupted run would see.
    sampler = DistributedSampler(
        dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True
    )
    return _ReportingLoader(
        _Reporting(dataset),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=loader_workers(workers),
        pin_memory=pin_memory,
        drop_last=True,
        worker_init_fn=_seed_worker,
        persistent_workers=False,
        collate_fn=_collate,
    )


def build_val_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    workers: int,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> DataLoader:
    """Every image exactly once over all ranks (a strided shard, no padding duplicates)."""
    shard = dataset if world_size == 1 else Subset(dataset, range(rank, len(dataset), world_size))
    return _ReportingLoader(
        _Reporting(shard),
        batch_size=batch_size,
        shuffle=False,
        num_workers=loader_workers(workers),
        pin_memory=pin_memory,
        collate_fn=_collate,
    )


# An image that fails in a DataLoader worker would come back as the worker's whole traceback
# re-raised in the main process. Instead the worker hands the one-line reason on as the batch
# (`_Failure`), and the loader raises it as a DataError where the batch is consumed.


@dataclass(frozen=True)
class _Failure:
    message: str


class _Reporting(Dataset):
    """`dataset` whose items that raise become a `_Failure` naming the image and the cause."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except DataError as err:
            return _Failure(str(err))
        except Exception as err:
            return _Failure(f"loading item {index} of the data failed ({_cause(err)})")


def _collate(batch: list[Any]) -> Any:
    failures = [item for item in batch if isinstance(item, _Failure)]
    if failures:
        return failures[0]
    try:
        return default_collate(batch)
    except Exception as err:
        return _Failure(f"the images of a batch do not stack into one tensor ({_cause(err)})")


class _ReportingLoader(DataLoader):
    """A DataLoader that raises a worker's `_Failure` as one DataError line."""

    def __iter__(self) -> Any:
        for batch in super().__iter__():
            if isinstance(batch, _Failure):
                raise DataError(batch.message)
            yield batch


def _cause(err: BaseException, path: str | None = None) -> str:
    """The exception as one line: its type and message, without `path` (the caller names it
    once; PIL repeats it inside the repr of its file object)."""
    message = str(err)
    if path:
        message = re.sub(r"\s*<[^<>]*" + re.escape(str(path)) + r"[^<>]*>", "", message)
        message = message.replace(str(path), "the file")
    return " ".join(f"{type(err).__name__}: {message}".split())


def _transformed(image: Image.Image, transform: Transform, what: str) -> Any:
    try:
        return transform(image)
    except Exception as err:
        raise DataError(f"transforming {what} failed ({_cause(err)})") from None


def _seed_worker(worker_id: int) -> None:
    # torch seeds `random` and itself per worker; numpy (used by timm's RandAugment) it does not.
    np.random.seed(torch.initial_seed() % 2**32)


def _cifar_layout(folder: Path) -> DataLayout:
    missing = [name for name in ("data_batch_1", "test_batch") if not (folder / name).is_file()]
    if missing:
        raise UserError(
            f"{folder}: missing {', '.join(missing)}: expected a CIFAR-10 python folder ({CIFAR_FOLDER}/ with data_batch_1..5 and test_batch)"
        )
    classes = CIFAR_CLASSES
    if (folder / "batches.meta").is_file():
        meta = _read_cifar_batch(folder / "batches.meta")
        names = meta.get("label_names", classes)
        classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    return DataLayout(kind="cifar10", root=folder, classes=classes)


def _imagefolder_layout(root: Path, known: tuple[str, ...] | None) -> DataLayout:
    for split in ("train", "val") if known is None else ("val",):
        if not (root / split).is_dir():
            raise UserError(f"{root} has no {split}/ folder: expected {EXPECTED}")
    classes = list(known) if known is not None else _class_folders(root / "train")
    if not classes:
        raise UserError(f"{root / 'train'} has no class folders: expected train/<class>/<image>")
    unknown = sorted(set(_class_folders(root / "val")) - set(classes))
    if unknown:
        source = "train/" if known is None else "the model"
        raise UserError(f"{root / 'val'} has classes that {source} lacks: {', '.join(unknown[:5])}")
    return DataLayout(kind="imagefolder", root=root, classes=tuple(classes))


def _class_folders(folder: Path) -> list[str]:
    return sorted(
        entry.name
        for entry in folder.iterdir()
        if entry.is_dir() and not entry.name.startswith(".")
    )


class _FixedClassFolder(ImageFolder):
    """ImageFolder whose class indices come from the training split, so val/ may lack some."""

    def __init__(self, root: Path, classes: tuple[str, ...], transform: Transform) -> None:
        self._classes = classes
        super().__init__(str(root), transform=transform, allow_empty=True)

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        return list(self._classes), {name: index for index, name in enumerate(self._classes)}

    def __getitem__(self, index: int) -> tuple[Any, int]:
        """The image and its class; a file that does not read or transform is a DataError."""
        path, target = self.samples[index]
        try:
            image = self.loader(path)
        except Exception as err:
            raise DataError(
                f"cannot read image {path} ({_cause(err, path)}): fix or remove it"
            ) from None
        if self.transform is not None:
            image = _transformed(image, self.transform, f"image {path}")
        return image, target


def _imagefolder_split(layout: DataLayout, split: str, transform: Transform) -> Dataset:
    folder = layout.root / split
    if not folder.is_dir():
        raise UserError(f"{layout.root} has no {split}/ folder: expected {EXPECTED}")
    dataset = _FixedClassFolder(folder, layout.classes, transform)
    if len(dataset) == 0:
        kinds = " ".join(IMG_EXTENSIONS)
        raise UserError(f"{folder} holds no images ({kinds}) in its class folders")
    return dataset


# CIFAR-10 batches are pickles of numpy arrays; allow exactly the globals those need, so a
# crafted file cannot run code (the same intent as torch.load(weights_only=True)).
_CIFAR_PICKLE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _CIFAR_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            raw = _CifarUnpickler(handle, encoding="latin1").load()
    except Exception as err:
        raise UserError(f"{path} is not a CIFAR-10 python batch ({err})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path} is not a CIFAR-10 python batch (no dict inside)")
    # Python 2 pickles give str keys with latin1; Python 3 ones written with bytes keys do not.
    batch = {key.decode() if isinstance(key, bytes) else key: value for key, value in raw.items()}
    if path.name == "batches.meta":
        return batch
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
        raise UserError(f"{path} is not a CIFAR-10 python batch ('data' must be N x 3072 uint8)")
    if not isinstance(labels, list) or len(labels) != len(data):
        raise UserError(f"{path} is not a CIFAR-10 python batch ('labels' must list one per image)")
    return batch

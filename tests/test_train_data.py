"""Data folders: ImageFolder and CIFAR-10 python layouts are found, anything else is explained."""

from __future__ import annotations

import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from test_train_fixtures import COLOURS, make_cifar_folder, make_image_folder
from timm.data import create_transform

from neonas.errors import UserError
from neonas.train.data import (
    build_datasets,
    build_train_loader,
    build_val_loader,
    detect_layout,
    loader_workers,
)


def load_both(root, size: int, **subsets):
    """Both splits of a folder, resized and centre-cropped to `size` (no augmentation)."""
    plain = create_transform(size, is_training=False, crop_pct=1.0)
    return build_datasets(detect_layout(root), plain, plain, **subsets)


def test_image_folder_is_detected_with_sorted_class_names(tmp_path):
    root = make_image_folder(tmp_path, classes=3)
    layout = detect_layout(root)
    assert (layout.kind, layout.classes) == ("imagefolder", ("class_0", "class_1", "class_2"))


def test_image_folder_splits_load_as_tensors_with_labels(tmp_path):
    data = load_both(make_image_folder(tmp_path), 16)
    assert (len(data.train), len(data.val), len(data.layout.classes)) == (48, 18, 3)
    image, label = data.val[0]
    assert image.shape == (3, 16, 16) and label == 0


def test_val_folder_may_lack_a_class_and_keeps_the_train_indices(tmp_path):
    root = make_image_folder(tmp_path, classes=3)
    shutil.rmtree(root / "val" / "class_0")
    data = load_both(root, 16)
    assert len(data.layout.classes) == 3
    assert {label for _, label in data.val.samples} == {1, 2}


def test_cifar_python_folder_is_read_in_its_pickled_format(tmp_path):
    root = make_cifar_folder(tmp_path, train_per_batch=8, test_images=20)
    data = load_both(root, 32)
    assert (
        data.layout.kind == "cifar10"
        and data.layout.classes[0] == "airplane"
        and len(data.layout.classes) == 10
    )
    assert (len(data.train), len(data.val)) == (40, 20)
    # the pixels are the ones written: the class colour dominates each image
    raw = data.train.images[0].reshape(-1, 3).mean(0)
    assert np.abs(raw - np.array(COLOURS[data.train.targets[0]])).max() < 15


def test_cifar_folder_itself_or_its_parent_may_be_given(tmp_path):
    root = make_cifar_folder(tmp_path)
    assert detect_layout(root / "cifar-10-batches-py") == detect_layout(root)


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    root = make_cifar_folder(tmp_path)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(root / "cifar-10-batches-py" / "test_batch", "wb") as handle:
        pickle.dump({"data": Exploit(), "labels": []}, handle)
    with pytest.raises(UserError, match="is not a CIFAR-10 python batch"):
        load_both(root, 32)
    assert not marker.exists()


def test_max_images_takes_the_same_random_subset_for_the_same_seed(tmp_path):
    root = make_image_folder(tmp_path)
    first = load_both(root, 16, max_train_images=10, seed=3)
    again = load_both(root, 16, max_train_images=10, seed=3)
    other = load_both(root, 16, max_train_images=10, seed=4)
    assert len(first.train) == 10 and first.train.indices == again.train.indices
    assert first.train.indices != other.train.indices


def test_two_ranks_read_disjoint_shards_that_together_cover_the_split(tmp_path):
    data = load_both(make_image_folder(tmp_path), 16)
    shards = [
        build_train_loader(data.train, batch_size=4, workers=0, rank=r, world_size=2)
        for r in (0, 1)
    ]
    seen = [set(iter(loader.sampler)) for loader in shards]
    assert not seen[0] & seen[1] and len(seen[0] | seen[1]) == len(data.train)
    val = [
        build_val_loader(data.val, batch_size=4, workers=0, rank=r, world_size=2) for r in (0, 1)
    ]
    assert sum(len(loader.dataset) for loader in val) == len(data.val)


def test_the_shuffle_depends_only_on_seed_and_epoch(tmp_path):
    data = load_both(make_image_folder(tmp_path), 16)
    loader = build_train_loader(data.train, batch_size=4, workers=0, seed=1)
    loader.sampler.set_epoch(2)
    order = list(loader.sampler)
    torch.manual_seed(123)  # the global RNG does not matter
    fresh = build_train_loader(data.train, batch_size=4, workers=0, seed=1)
    fresh.sampler.set_epoch(2)
    assert list(fresh.sampler) == order


@pytest.mark.parametrize(
    ("arrange", "message"),
    [
        (lambda root: None, "does not exist"),
        (lambda root: root.mkdir(), "is not a data folder: expected an ImageFolder tree"),
        (lambda root: (root / "train" / "a").mkdir(parents=True), "has no val/ folder"),
        (
            lambda root: [(root / s).mkdir(parents=True) for s in ("train", "val")],
            "has no class folders",
        ),
    ],
)
def test_missing_or_wrong_layouts_say_what_was_expected(tmp_path, arrange, message):
    root = tmp_path / "data"
    arrange(root)
    with pytest.raises(UserError, match=message):
        detect_layout(root)


def test_val_classes_unknown_to_train_are_a_user_error(tmp_path):
    root = make_image_folder(tmp_path, classes=2)
    (root / "val" / "zebra").mkdir()
    with pytest.raises(UserError, match="classes that train/ lacks: zebra"):
        detect_layout(root)


def test_class_folders_without_images_are_a_user_error(tmp_path):
    for split in ("train", "val"):
        (tmp_path / split / "a").mkdir(parents=True)
        (tmp_path / split / "a" / "notes.txt").write_text("no image")
    with pytest.raises(UserError, match="holds no images"):
        load_both(tmp_path, 16)


def test_cifar_folder_without_test_batch_is_a_user_error(tmp_path):
    root = make_cifar_folder(tmp_path)
    (root / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(UserError, match="missing test_batch"):
        detect_layout(root)


def test_loader_workers_are_capped_at_the_cpus_this_process_may_use(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert [loader_workers(n) for n in (0, 1, 2, 4, 16)] == [0, 1, 2, 2, 2]
    data = load_both(make_image_folder(tmp_path), 16)
    assert build_train_loader(data.train, batch_size=4, workers=4).num_workers == 2
    assert build_val_loader(data.val, batch_size=4, workers=4).num_workers == 2
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # macOS, Windows
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert loader_workers(8) == 3


def test_processes_of_one_machine_share_its_cpus_between_their_loaders(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # torchrun --nproc_per_node 2
    assert [loader_workers(n) for n in (2, 4, 8)] == [2, 4, 4]
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")  # more processes than CPUs: load in each
    assert loader_workers(4) == 0

"""Which accuracy signal a search uses, what it reads, and how a run records it."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from cli import main
from evaluators.proxies import noise_batches, zero_cost_score
from neonas.arch import ArchConfig
from neonas.models import build_model
from neonas.search.settings import EvalSettings
from neonas.search.trial import DATA_BATCHES, score_candidate, zero_cost_signal
from neonas.signals import (
    DEFAULT_WITH_DATA,
    DEFAULT_ZERO_COST,
    SHORT_TRAINING,
    SUPERNET,
    SYNFLOW,
    ZICO,
    ignored_data_note,
)
from neonas.space import load_space
from neonas.train.proxy import data_batches

CLASSES = 3


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """A 3-class ImageFolder with enough training images for DATA_BATCHES."""
    root = tmp_path_factory.mktemp("signals") / "data"
    generator = torch.Generator().manual_seed(0)
    per_class = math.ceil(DATA_BATCHES[0] * DATA_BATCHES[1] / CLASSES)
    for split, count in (("train", per_class), ("val", 4)):
        for label in range(CLASSES):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for index in range(count):
                pixels = torch.rand(32, 32, 3, generator=generator) * 80
                pixels[..., label] += 160
                Image.fromarray(pixels.clamp(0, 255).byte().numpy()).save(folder / f"{index}.png")
    return root


@pytest.fixture(scope="module")
def tiny_config() -> ArchConfig:
    return load_space("tiny").sample(random.Random(3))


def test_the_default_signal_follows_data_and_supernet(tmp_path) -> None:
    assert EvalSettings().signal == DEFAULT_ZERO_COST
    assert EvalSettings(data=str(tmp_path)).signal == DEFAULT_WITH_DATA
    with_supernet = EvalSettings(data=str(tmp_path), supernet=str(tmp_path / "s.pt"))
    assert with_supernet.signal == with_supernet.accuracy_signal == SUPERNET
    short = EvalSettings(data=str(tmp_path), signal=SHORT_TRAINING)
    assert short.short_training and short.accuracy_signal == "short-training top-1"
    # A run records the signal it used, so a later change of the defaults cannot change it.
    assert EvalSettings.model_validate(short.model_dump()).signal == SHORT_TRAINING


def test_a_signal_without_what_it_reads_is_refused(tmp_path) -> None:
    with pytest.raises(ValidationError, match="give --data DIR too"):
        EvalSettings(signal=SHORT_TRAINING)
    with pytest.raises(ValidationError, match="give --supernet CKPT"):
        EvalSettings(data=str(tmp_path), signal=SUPERNET)
    with pytest.raises(ValidationError, match="no other signal"):
        EvalSettings(data=str(tmp_path), supernet=str(tmp_path / "s.pt"), signal=ZICO)


@pytest.mark.parametrize(
    ("legacy", "expected"),
    [
        ({"proxy": "zico"}, ZICO),  # without data the proxy was the signal
        ({"proxy": "naswot", "data": "/d"}, SHORT_TRAINING),  # with data, short training ran
        ({"proxy": "naswot", "data": "/d", "supernet": "/s.pt"}, SUPERNET),
    ],
)
def test_run_json_written_before_the_signal_field_reads_as_what_ran(legacy, expected) -> None:
    assert EvalSettings.model_validate(legacy).signal == expected


def test_a_zero_cost_signal_reads_the_training_images_of_data(images, tiny_config) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config, num_classes=CLASSES)
    shape = (3, 32, 32)
    on_data = zero_cost_signal(model, shape, CLASSES, EvalSettings(data=str(images), signal=ZICO))
    batch, count = DATA_BATCHES
    real = data_batches(model, images, batch_size=batch, count=count, image_size=32)
    assert on_data["accuracy"] == pytest.approx(zero_cost_score(model, ZICO, real))
    noise = zero_cost_signal(model, shape, CLASSES, EvalSettings(signal=ZICO))
    expected = zero_cost_score(model, ZICO, noise_batches(shape, 16, CLASSES))
    assert noise["accuracy"] == pytest.approx(expected)
    assert on_data["accuracy"] != pytest.approx(noise["accuracy"])


def test_a_worker_reads_the_images_once_for_all_its_candidates(
    images, tiny_config, monkeypatch
) -> None:
    import neonas.train.proxy

    loads = []
    original = neonas.train.proxy.data_batches

    def counting(*args, **kwargs):
        loads.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(neonas.train.proxy, "data_batches", counting)
    settings = EvalSettings(data=str(images), signal=ZICO, seed=7)  # a key no other test used
    torch.manual_seed(0)
    model = build_model(tiny_config, num_classes=CLASSES)
    first = zero_cost_signal(model, (3, 32, 32), CLASSES, settings)["accuracy"]
    second = zero_cost_signal(model, (3, 32, 32), CLASSES, settings)["accuracy"]
    other = build_model(load_space("tiny").sample(random.Random(4)), num_classes=CLASSES)
    zero_cost_signal(other, (3, 32, 32), CLASSES, settings)
    assert len(loads) == 1
    assert first == pytest.approx(second)


def test_with_data_a_trial_scores_the_network_with_the_datas_head(images, tiny_config) -> None:
    reports: list[dict] = []
    settings = EvalSettings(data=str(images), signal="params")
    score_candidate(tiny_config, settings, reports.append)
    (report,) = reports
    three_classes = build_model(tiny_config, num_classes=CLASSES)
    params = sum(p.numel() for p in three_classes.parameters())
    assert tiny_config.num_classes != CLASSES
    assert report["accuracy"] == pytest.approx(math.log10(params))
    assert report["accuracy_signal"] == "params" and report["status"] == "completed"


def test_a_run_says_when_its_signal_ignores_the_images() -> None:
    assert "does not read the images" in ignored_data_note(SYNFLOW, has_data=True)
    assert ignored_data_note(SYNFLOW, has_data=False) is None
    for reads in (ZICO, SHORT_TRAINING, SUPERNET):
        assert ignored_data_note(reads, has_data=True) is None


def test_proxy_is_still_accepted_as_the_old_name_of_signal(tmp_path, capsys) -> None:
    status = main(
        ["search", "--space", "tiny", "--proxy", "zico", "--epochs", "2", "--results-dir", "x"]
    )
    assert status == 2
    assert "this run's signal is zico" in capsys.readouterr().err

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
from neonas.canonical import network_key
from neonas.models import build_model
from neonas.search.seeding import noise_seed, seeded_build
from neonas.search.settings import EvalSettings
from neonas.search.trial import DATA_BATCHES, score_candidate, zero_cost_signal
from neonas.signals import (
    DEFAULT_WITH_DATA,
    DEFAULT_ZERO_COST,
    MECO,
    NASWOT,
    PARAMS,
    SHORT_TRAINING,
    SUPERNET,
    SYNFLOW,
    ZICO,
    ignored_data_note,
)
from neonas.space import load_space
from neonas.train.short_training import data_batches

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
    key = network_key(tiny_config)

    def build() -> torch.nn.Module:
        return build_model(tiny_config, num_classes=CLASSES)

    model = seeded_build(build, 0, key)  # the weights the signal scores (run seed 0)
    shape = (3, 32, 32)
    on_data = zero_cost_signal(
        build, key, shape, CLASSES, EvalSettings(data=str(images), signal=ZICO)
    )
    batch, count = DATA_BATCHES
    real = data_batches(model, images, batch_size=batch, count=count, image_size=32)
    assert on_data["accuracy"] == pytest.approx(zero_cost_score(model, ZICO, real))
    noise = zero_cost_signal(build, key, shape, CLASSES, EvalSettings(signal=ZICO))
    expected = zero_cost_score(model, ZICO, noise_batches(shape, 16, CLASSES, seed=noise_seed(0)))
    assert noise["accuracy"] == pytest.approx(expected)
    assert on_data["accuracy"] != pytest.approx(noise["accuracy"])


def test_a_worker_reads_the_images_once_for_all_its_candidates(
    images, tiny_config, monkeypatch
) -> None:
    import neonas.train.short_training

    loads = []
    original = neonas.train.short_training.data_batches

    def counting(*args, **kwargs):
        loads.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(neonas.train.short_training, "data_batches", counting)
    settings = EvalSettings(data=str(images), signal=ZICO, seed=7)  # a key no other test used
    other_config = load_space("tiny").sample(random.Random(4))
    first, second, _ = (
        zero_cost_signal(
            lambda config=config: build_model(config, num_classes=CLASSES),
            network_key(config),
            (3, 32, 32),
            CLASSES,
            settings,
        )["accuracy"]
        for config in (tiny_config, tiny_config, other_config)
    )
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


@pytest.mark.parametrize(
    ("signal", "expected"), [(SYNFLOW, "meta"), (ZICO, "meta"), (PARAMS, "cpu")]
)
def test_a_signal_that_runs_the_network_runs_on_the_trials_device(
    monkeypatch, tiny_config, signal, expected
) -> None:
    """With a GPU share (`--gpus-per-trial`) the network and its batches go to the trial's
    device; the size baselines stay on the CPU. "meta" stands in for cuda on a CPU machine."""
    import evaluators.proxies
    import neonas.search.trial as trial

    seen: list[tuple[str, str]] = []

    def record(model, _signal, batches) -> float:
        seen.append((next(model.parameters()).device.type, batches[0][0].device.type))
        return 1.0

    monkeypatch.setattr(trial, "trial_device", lambda: "meta")
    monkeypatch.setattr(evaluators.proxies, "zero_cost_score", record)
    key = network_key(tiny_config)
    result = zero_cost_signal(
        lambda: build_model(tiny_config), key, (3, 32, 32), 10, EvalSettings(signal=signal)
    )
    assert result["accuracy"] == 1.0
    assert seen == [(expected, expected)]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("signal", [NASWOT, SYNFLOW, ZICO, MECO])
def test_a_signal_scores_the_same_network_alike_on_cuda_and_cpu(tiny_config, signal) -> None:
    model = seeded_build(lambda: build_model(tiny_config), 0, network_key(tiny_config))
    batches = noise_batches((3, 32, 32), 16, 10, seed=noise_seed(0))
    on_cpu = zero_cost_score(model, signal, batches)
    on_cuda = zero_cost_score(model.to("cuda"), signal, [(x.cuda(), y.cuda()) for x, y in batches])
    assert on_cuda == pytest.approx(on_cpu, rel=1e-3, abs=1e-3)

"""A network scores the same in every run, process and worker: its random draws are seeded
from the run's seed and the network (neonas/search/seeding.py), not from the RNG's state."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from rich.console import Console

from evaluators.proxies import noise_batches, zero_cost_score
from neonas.arch import ArchConfig
from neonas.canonical import network_key
from neonas.models import build_model
from neonas.search.seeding import SCORING, draw_seed, noise_seed, seeded, seeded_build
from neonas.search.settings import EvalSettings, SearchSettings
from neonas.search.trial import score_candidate, zero_cost_signal
from neonas.signals import SHORT_TRAINING, SYNFLOW, ZICO
from neonas.space import load_space

SHAPE = (3, 32, 32)


@pytest.fixture(scope="module")
def config() -> ArchConfig:
    return load_space("tiny").smallest()  # the fastest to score


@pytest.fixture(scope="module")
def other(config) -> ArchConfig:
    space = load_space("tiny")
    return next(
        c
        for c in (space.sample(random.Random(n)) for n in range(40))
        if network_key(c) != network_key(config)
    )


@pytest.fixture
def one_thread():
    """One intra-op thread, as each subprocess below: float sums then add up in one order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def trial_accuracy(config: ArchConfig, **fields) -> float:
    reports: list[dict] = []
    score_candidate(config, EvalSettings(proxy_batch=8, **fields), reports.append)
    (report,) = reports
    return report["accuracy"]


def signal(config: ArchConfig, **fields) -> float:
    """The zero-cost signal alone (no latency): as a trial scores it."""
    settings = EvalSettings(proxy_batch=8, **fields)
    build = functools.partial(build_model, config)
    key = network_key(config)
    return zero_cost_signal(build, key, SHAPE, config.num_classes, settings)["accuracy"]


def weights(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_a_network_scores_the_same_whatever_the_global_rng_did_before(config) -> None:
    # ZiCo: the weights and the noise images and labels both count.
    torch.manual_seed(1)
    first = trial_accuracy(config, signal=ZICO, seed=3)
    torch.manual_seed(2)
    torch.rand(1000)  # other work in the same worker between two trials
    assert trial_accuracy(config, signal=ZICO, seed=3) == first


def test_scoring_leaves_the_global_rng_as_it_was(config) -> None:
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    trial_accuracy(config, signal=SYNFLOW, seed=3)
    assert torch.equal(torch.rand(3), expected)


SUBPROCESS = """
import json, sys, torch
torch.manual_seed(int(sys.argv[1]))  # a different RNG state in each process
torch.set_num_threads(1)
from evaluators.proxies import noise_batches, zero_cost_score
from neonas.arch import ArchConfig
from neonas.search.settings import EvalSettings
from neonas.search.trial import score_candidate
reports = []
config = ArchConfig.from_dict(json.loads(sys.argv[2]))
score_candidate(config, EvalSettings(proxy_batch=8, signal=sys.argv[3], seed=3), reports.append)
print(repr(reports[0]["accuracy"]))
"""


def test_a_network_scores_the_same_in_separate_processes(config, one_thread) -> None:
    """Two interpreters (their own hash salts and RNG states) and this one agree exactly."""
    arch = json.dumps(config.to_dict())
    root = Path(__file__).resolve().parents[1]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SUBPROCESS, str(index), arch, ZICO],
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
            env={
                **os.environ,
                "PYTHONPATH": str(root),
                "PYTHONHASHSEED": str(index),
                "OMP_NUM_THREADS": "1",
            },
        )
        for index in (11, 12)
    ]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    assert all(process.returncode == 0 for process in processes)
    here = repr(trial_accuracy(config, signal=ZICO, seed=3))
    assert [line.strip() for line in outputs] == [here, here]


def test_other_networks_seeds_and_draws_get_other_draws(config, other) -> None:
    key = network_key(config)

    def build() -> torch.nn.Module:
        return build_model(config)

    base = weights(seeded_build(build, 3, key))
    assert torch.equal(base, weights(seeded_build(build, 3, key)))
    for run_seed, network, draw in ((4, key, 0), (3, network_key(other), 0), (3, key, 1)):
        assert not torch.equal(base, weights(seeded_build(build, run_seed, network, draw)))
    # and so the scores: another run seed is another draw of the same network
    assert signal(config, signal=SYNFLOW, seed=3) != signal(config, signal=SYNFLOW, seed=4)


def test_seeds_are_a_stable_hash_not_pythons() -> None:
    """Fixed values: a change of the derivation would change every recorded score."""
    assert draw_seed("weights", 3, "k") == draw_seed("weights", 3, "k") < 2**63
    assert len({draw_seed(p, s, k, d) for p in ("weights", "noise") for s in (0, 1)
                for k in ("a", "b") for d in (0, 1)}) == 16  # fmt: skip
    # The documented derivation: SHA-256 of the JSON list, first 8 bytes little-endian, >> 1.
    digest = hashlib.sha256(b'["weights", 0, 0, "a"]').digest()
    assert draw_seed("weights", 0, "a") == int.from_bytes(digest[:8], "little") >> 1


def test_noise_images_are_shared_by_the_networks_of_a_run(config, other) -> None:
    """Every network sees the same noise (as they see the same --data images): per run seed."""
    assert noise_seed(3) == noise_seed(3) != noise_seed(4)
    assert noise_seed(3, draw=1) != noise_seed(3)


def test_the_scoring_itself_is_seeded(config) -> None:
    """Drop path in training mode (ZiCo's BatchNorm on batch statistics) draws per forward."""
    noisy = config.model_copy(update={"drop_path_rate": 0.5})
    first = trial_accuracy(noisy, signal=ZICO, seed=3)
    torch.manual_seed(9)
    assert trial_accuracy(noisy, signal=ZICO, seed=3) == first


@pytest.mark.slow  # builds and scores NeoNeXt-T and ConvNeXt-T (224 px) three times
def test_reference_networks_are_seeded_by_their_name(one_thread) -> None:
    from neonas.search.references import reference_points

    example = load_space("neonext").smallest()

    def points(seed: int) -> list:
        return reference_points(example, SearchSettings(name="x", eval=EvalSettings(seed=seed)))[0]

    torch.manual_seed(1)
    first = points(3)
    torch.manual_seed(2)
    assert points(3) == first and len(first) == 2
    assert [r.accuracy for r in points(4)] != [r.accuracy for r in first]


def test_signal_draws_average_that_many_seeded_draws(config) -> None:
    one, two = (
        signal(config, signal=ZICO, seed=3),
        signal(config, signal=ZICO, seed=3, signal_draws=2),
    )
    assert one == trial_accuracy(config, signal=ZICO, seed=3)  # draw 0 is the single draw
    # Draw 1 on its own: its weights, its scoring and its noise images, each seeded for draw 1.
    key = network_key(config)
    model = seeded_build(functools.partial(build_model, config), 3, key, draw=1)
    noise = noise_batches(SHAPE, 8, config.num_classes, seed=noise_seed(3, draw=1))
    with seeded(SCORING, 3, key, draw=1):
        second = zero_cost_score(model, ZICO, noise)
    assert second != pytest.approx(one)
    assert two == pytest.approx((one + second) / 2)


def test_signal_draws_apply_to_zero_cost_signals_only(tmp_path) -> None:
    with pytest.raises(ValidationError, match="leave them at 1"):
        EvalSettings(data=str(tmp_path), signal=SHORT_TRAINING, signal_draws=2)
    with pytest.raises(ValidationError):
        EvalSettings(signal_draws=0)
    assert EvalSettings().signal_draws == 1
    # run.json written before the field read as one draw
    assert EvalSettings.model_validate({"hw": "ascend", "signal": SYNFLOW}).signal_draws == 1


def test_signal_draws_is_an_option_of_search(tmp_path) -> None:
    from neonas.cli import build_parser
    from neonas.commands.search import settings_from_args

    args = build_parser().parse_args(["search", "--space", "tiny", "--signal-draws", "3"])
    assert settings_from_args(args).eval.signal_draws == 3


def test_signal_draws_with_short_training_is_one_line_and_status_2(tmp_path, capsys) -> None:
    from cli import main

    status = main(
        ["search", "--space", "tiny", "--data", str(tmp_path), "--signal", SHORT_TRAINING,
         "--signal-draws", "2", "--results-dir", str(tmp_path)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2 and "leave them at 1" in err and err.count("\n") == 1, err


# --- end to end: two identical searches -----------------------------------------------------


def search(tmp_path: Path, name: str) -> dict[str, float]:
    """`search --space tiny --hw ascend --trials 2 --seed 3` (one round of two trials at a
    time: they run in either order on either worker): accuracy by network key."""
    from neonas.search import start_run
    from neonas.search.study import load_trials

    settings = SearchSettings(
        name=name,
        results_dir=str(tmp_path),
        space="tiny",
        trials=2,
        concurrency=2,
        eval=EvalSettings(hw="ascend", proxy_batch=8, seed=3),
    )
    outcome = start_run(settings, console=Console(file=open(os.devnull, "w")))  # noqa: SIM115
    rows = load_trials(outcome.run_dir).with_status("completed")
    return {network_key(ArchConfig.from_dict(row.config)): row.metrics["accuracy"] for row in rows}


def test_two_identical_searches_record_the_same_signal_per_network(ray_session, tmp_path) -> None:
    first, second = search(tmp_path, "a"), search(tmp_path, "b")
    shared = set(first) & set(second)
    assert len(shared) >= 2, "the sampler's first (random) points are seeded: the same networks"
    assert {key: first[key] for key in shared} == {key: second[key] for key in shared}
    assert len({first[key] for key in shared}) == len(shared)  # and they are told apart

"""`supernet train`, `supernet extract` and `search --supernet` end to end on the tiny space."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from rich.console import Console
from test_train_fixtures import (
    make_image_folder,
    one_torch_thread,  # noqa: F401 (autouse: one torch thread)
)

from neonas.arch import ArchConfig
from neonas.cli import main
from neonas.errors import UserError
from neonas.space import load_space
from neonas.supernet import SuperNet
from neonas.supernet.layers import ratio_key
from neonas.supernet.scoring import SIGNAL, SubnetScorer
from neonas.supernet.training import SAMPLINGS, default_epochs, step_subnets, train_supernet
from neonas.train.checkpoint import load_checkpoint, save_checkpoint
from neonas.train.options import SAMPLINGS as CLI_SAMPLINGS
from neonas.train.trainer import seed_everything

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 3
TRAIN_OPTIONS = ["--batch-size", "8", "--random-subnets", "1", "--seed", "3", "--workers", "0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("supernet") / "images"
    return make_image_folder(root, classes=4, train_per_class=6, val_per_class=4, size=32)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> Path:
    """An uninterrupted run, the reference for the resumed one."""
    output = tmp_path_factory.mktemp("supernet") / "uninterrupted"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the killed run's process: the same sums in the same order
    try:
        return train_supernet(
            "tiny", data, output_dir=output, epochs=EPOCHS, batch_size=8, random_subnets=1, seed=3
        )
    finally:
        torch.set_num_threads(threads)


def test_training_records_every_epoch_and_its_subnets_learn(trained) -> None:
    state = load_checkpoint(trained)
    assert state["epoch"] == EPOCHS
    rows = (trained.parent / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + EPOCHS
    summary = json.loads((trained.parent / "metrics.json").read_text())
    assert summary["largest_val_top1"] > 25.0  # 4 classes: above chance
    assert list((trained.parent / "tensorboard").iterdir())


def test_a_stopped_training_resumes_to_exactly_the_uninterrupted_weights(data, trained, tmp_path):
    options = {"batch_size": 8, "random_subnets": 1, "seed": 3}
    output = tmp_path / "stopped"  # one torch thread, as the fixture: the same sums, same order
    train_supernet("tiny", data, output_dir=output, epochs=EPOCHS, stop_after=1, **options)
    assert load_checkpoint(output / "last.pt")["epoch"] == 1
    train_supernet("tiny", data, output_dir=output, epochs=EPOCHS, resume=True)
    expected, actual = (
        load_checkpoint(trained)["model"],
        load_checkpoint(output / "last.pt")["model"],
    )
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0, msg=key)


@pytest.mark.slow  # two process start-ups and three trainings: about 40 s on the shared CPU
def test_a_killed_training_resumes_to_exactly_the_uninterrupted_weights(data, trained, tmp_path):
    output = tmp_path / "killed"
    command = [
        sys.executable,
        "cli.py",
        "supernet",
        "train",
        "--space",
        "tiny",
        "--data",
        str(data),
    ]
    command += ["--epochs", str(EPOCHS), "--output", str(output), "--no-progress", *TRAIN_OPTIONS]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (output / "last.pt").exists() and time.monotonic() < deadline:
        assert process.poll() is None, "the training ended before it was killed"
        time.sleep(0.05)
    assert process.poll() is None, "the training ended before it was killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert load_checkpoint(output / "last.pt")["epoch"] < EPOCHS

    resumed = subprocess.run(
        [
            *command[:4],
            "--output",
            str(output),
            "--resume",
            "--data",
            str(data),
            "--no-progress",
            "--workers",
            "0",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch" in resumed.stdout
    expected, actual = (
        load_checkpoint(trained)["model"],
        load_checkpoint(output / "last.pt")["model"],
    )
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0, msg=key)
    columns = ("train_loss", "largest_val_top1", "smallest_val_top1")
    assert _columns(output / "metrics.csv", columns) == _columns(
        trained.parent / "metrics.csv", columns
    )


def test_the_same_command_with_resume_added_continues_it(data, tmp_path, capsys) -> None:
    output = tmp_path / "again"
    command = ["supernet", "train", "--space", "tiny", "--data", str(data), "--epochs", "2"]
    command += ["--output", str(output), "--no-progress", *TRAIN_OPTIONS]
    assert main([*command, "--stop-after", "1"]) == 0
    assert main([*command, "--resume"]) == 0
    assert load_checkpoint(output / "last.pt")["epoch"] == 2
    capsys.readouterr()
    refused = {
        "--epochs": (["--epochs", "3"], "--epochs 3 differs from the 2 this training started"),
        "--batch-size": (["--batch-size", "12"], "--batch-size 12 differs from the 8"),
        "--sampling": (["--sampling", "sandwich"], "--sampling sandwich differs from the uniform"),
        "--space": (["--space", "neonext"], "--space neonext is another space than the"),
    }
    for extra, message in refused.values():
        assert main([*command, *extra, "--resume"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], lines


def test_a_corrupt_image_ends_the_training_with_one_line(tmp_path, capsys) -> None:
    data = make_image_folder(tmp_path / "images", classes=2, train_per_class=4, val_per_class=2)
    bad = data / "train" / "class_1" / "2.png"
    bad.write_bytes(b"not an image")
    command = ["supernet", "train", "--space", "tiny", "--data", str(data), "--epochs", "1"]
    command += ["--output", str(tmp_path / "run"), "--no-progress", *TRAIN_OPTIONS]
    assert main([*command[:-2], "--workers", "1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"cannot read image {bad}" in lines[0], lines


def test_uniform_sampling_trains_only_the_drawn_subnets_on_the_labels(data, tmp_path) -> None:
    output = tmp_path / "uniform"  # 24 images, batch 8: 3 steps of one drawn subnet each
    options = {"batch_size": 8, "random_subnets": 1, "seed": 4, "sampling": "uniform"}
    train_supernet("tiny", data, output_dir=output, epochs=1, **options)
    space = load_space("tiny")
    drawn = [
        config for step in range(3) for config in step_subnets(space, "uniform", 1, 4, 0, step)
    ]
    assert len(drawn) == 3
    seed_everything(4)  # the initial weights, as the training made them
    initial = SuperNet(space, num_classes=4).state_dict()
    trained = load_checkpoint(output / "last.pt")
    assert trained["run_options"]["sampling"] == "uniform"
    changed = {}
    for stage in (1, 2):  # a transition ratio that no drawn subnet took keeps its matrices
        taken = {tuple(config.stages[stage].sampling) for config in drawn}
        for ratio in {plan[stage - 1] for plan in space.plans}:
            key = f"stages.{stage}.downsample.neocell.left.{ratio_key(ratio)}"
            changed[key] = not torch.equal(trained["model"][key], initial[key])
            assert changed[key] == (ratio in taken), key
    assert len(changed) == 7  # 3 ratios into stage 1, 4 into stage 2
    assert 2 <= sum(changed.values()) <= 6  # 3 draws cannot take all 4 ratios of stage 2
    rows = list(csv.DictReader(open(output / "metrics.csv", newline="")))  # noqa: SIM115
    assert len(rows) == 1 and "distill_loss" not in rows[0]  # every subnet on the labels


def test_fair_sampling_draws_every_transition_plan_once_per_step_of_ten(data, tmp_path) -> None:
    space = load_space("tiny")
    for step in range(3):
        drawn = step_subnets(space, "fair", 10, 6, 0, step)
        plans = {tuple(tuple(stage.sampling) for stage in c.stages[1:]) for c in drawn}
        assert len(plans) == len(space.plans) == 10
    assert step_subnets(space, "fair", 10, 6, 0, 1) != step_subnets(space, "fair", 10, 6, 0, 2)
    output = tmp_path / "fair"  # 24 images, batch 8: 3 steps of 2 balanced subnets each
    options = {"batch_size": 8, "random_subnets": 2, "seed": 6, "sampling": "fair"}
    train_supernet("tiny", data, output_dir=output, epochs=1, **options)
    trained = load_checkpoint(output / "last.pt")
    assert trained["run_options"]["sampling"] == "fair" and trained["epoch"] == 1
    rows = list(csv.DictReader(open(output / "metrics.csv", newline="")))  # noqa: SIM115
    assert len(rows) == 1 and "distill_loss" not in rows[0]


def one_plan_space(tmp_path: Path, first: list[int], second: list[int]) -> Path:
    """The tiny space with one transition plan: a few-shot sub-supernet's space."""
    import yaml

    spec = yaml.safe_load((ROOT / "search_spaces" / "tiny.yaml").read_text())
    spec["name"] = "tiny-one-plan"
    spec["stages"][1]["sampling"], spec["stages"][2]["sampling"] = [first], [second]
    path = tmp_path / "one_plan.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_sub_supernet_starts_from_the_shared_weights(trained, data, tmp_path, capsys) -> None:
    from neonas.supernet.training import load_shared_weights

    part = one_plan_space(tmp_path, [4, 3], [1, 1])
    shared = load_checkpoint(trained)["model"]
    fresh = SuperNet(load_space(str(part)), num_classes=4)
    count = len(fresh.state_dict())
    assert count < len(shared)  # the other plans' transition matrices are left behind
    assert load_shared_weights(fresh, trained) == count
    for name, tensor in fresh.state_dict().items():
        assert torch.equal(tensor, shared[name]), name
    output = tmp_path / "part"
    command = ["supernet", "train", "--space", str(part), "--data", str(data), "--epochs", "2"]
    command += ["--init", str(trained), "--output", str(output), "--no-progress", *TRAIN_OPTIONS]
    assert main([*command, "--stop-after", "1"]) == 0
    assert f"initialised {count} of {count} tensors" in capsys.readouterr().out
    after_one = load_checkpoint(output / "last.pt")["model"]
    # A resume continues from its own weights, whatever --init says (as `train --resume`).
    other = [arg if arg != str(trained) else str(output / "last.pt") for arg in command]
    assert main([*other, "--resume"]) == 0
    assert "initialised" not in capsys.readouterr().out
    assert load_checkpoint(output / "last.pt")["epoch"] == 2
    resumed = load_checkpoint(output / "last.pt")["model"]["head.fc.weight"]
    assert not torch.equal(resumed, after_one["head.fc.weight"])


def test_init_from_a_supernet_of_another_space_is_one_line(data, tmp_path, capsys) -> None:
    other = tmp_path / "other"
    options = {"batch_size": 8, "random_subnets": 1, "seed": 4}
    import yaml

    wide = yaml.safe_load((ROOT / "search_spaces" / "tiny.yaml").read_text())
    wide["stages"][0]["width"] = [16, 48]  # the first stage's tensors are wider
    (tmp_path / "wide.yaml").write_text(yaml.safe_dump(wide))
    train_supernet(tmp_path / "wide.yaml", data, output_dir=other, epochs=1, **options)
    command = ["supernet", "train", "--space", "tiny", "--data", str(data), "--epochs", "1"]
    command += ["--output", str(tmp_path / "run"), "--no-progress", *TRAIN_OPTIONS]
    for init, words in ((other / "last.pt", "another space"), (tmp_path / "no.pt", "no such")):
        assert main([*command, "--init", str(init)]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], lines


def test_a_run_from_before_the_sampling_option_resumes_with_the_sandwich(data, tmp_path) -> None:
    output = tmp_path / "older"
    options = {"batch_size": 8, "random_subnets": 1, "seed": 5, "sampling": "sandwich"}
    train_supernet("tiny", data, output_dir=output, epochs=2, stop_after=1, **options)
    state = load_checkpoint(output / "last.pt")
    del state["run_options"]["sampling"]  # as written before --sampling existed
    save_checkpoint(output / "last.pt", state)
    train_supernet("tiny", data, output_dir=output, epochs=2, resume=True, sampling="uniform")
    resumed = load_checkpoint(output / "last.pt")
    assert resumed["epoch"] == 2 and resumed["run_options"]["sampling"] == "sandwich"
    rows = list(csv.DictReader(open(output / "metrics.csv", newline="")))  # noqa: SIM115
    assert [row["distill_loss"] != "" for row in rows] == [True, True]


def test_without_epochs_a_small_data_set_trains_for_the_measured_number_of_steps(data, tmp_path):
    assert default_epochs(1000) == 10 and default_epochs(7) == 65  # MIN_STEPS = 450
    output = tmp_path / "default"  # 24 images, batch 8: 3 steps per epoch
    train_supernet("tiny", data, output_dir=output, batch_size=8, random_subnets=1, stop_after=1)
    state = load_checkpoint(output / "last.pt")
    assert (
        state["epoch"] == 1 and state["run_options"]["epochs"] == 150 == state["recipe"]["epochs"]
    )


def test_the_cli_offers_the_sampling_rules_the_training_knows() -> None:
    from neonas.cli import build_parser

    assert CLI_SAMPLINGS == SAMPLINGS
    for rule in SAMPLINGS:
        assert build_parser().parse_args(["supernet", "train", "--sampling", rule]).sampling == rule


def _columns(path: Path, names: tuple[str, ...]) -> list[tuple[str, ...]]:
    with open(path, newline="") as handle:
        return [tuple(row[name] for name in names) for row in csv.DictReader(handle)]


def test_extract_writes_a_checkpoint_that_evaluate_reads_and_train_init_fine_tunes(
    data, trained, tmp_path, capsys
) -> None:
    config = load_space("tiny").sample(random.Random(5))
    config_file = config.save(tmp_path / "subnet.yaml")
    out = tmp_path / "subnet.pt"
    assert (
        main(
            [
                "supernet",
                "extract",
                str(trained),
                "--config",
                str(config_file),
                "--out",
                str(out),
                "--data",
                str(data),
            ]
        )
        == 0
    )
    assert (
        main(
            ["evaluate", "--checkpoint", str(out), "--data", str(data), "--workers", "0", "--json"]
        )
        == 0
    )
    evaluated = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    # The same BatchNorm re-estimation and held-out images as the search's supernet score.
    assert evaluated["top1"] == pytest.approx(SubnetScorer(trained, data).score(config))
    assert evaluated["images"] == 16

    finetuned = tmp_path / "finetune"
    code = main(
        [
            "train",
            "--config",
            str(config_file),
            "--init",
            str(out),
            "--data",
            str(data),
            "--output",
            str(finetuned),
            "--recipe",
            "short",
            "--epochs",
            "1",
            "--lr",
            "1e-12",
            "--warmup-epochs",
            "0",
            "--set",
            "min_lr=1.0e-12",
            "--set",
            "warmup_lr=1.0e-12",
            "--batch-size",
            "8",
            "--workers",
            "0",
            "--no-progress",
        ]
    )
    assert code == 0
    start = load_checkpoint(out)["model"]
    after = load_checkpoint(finetuned / "last.pt")["model"]
    weights = [key for key in start if key.endswith("weight")]
    assert len(weights) > 10
    for key in weights:  # an LR of 1e-12 leaves the inherited weights in place
        torch.testing.assert_close(after[key], start[key], rtol=1e-5, atol=1e-7, msg=key)


def test_bad_supernet_input_is_one_line_and_status_2(data, trained, tmp_path, capsys) -> None:
    assert (
        main(
            [
                "supernet",
                "train",
                "--space",
                "tiny",
                "--data",
                str(data),
                "--output",
                str(trained.parent),
            ]
        )
        == 2
    )
    assert "--resume" in capsys.readouterr().err
    big = ArchConfig.from_dict({**load_space("tiny").smallest().to_dict(), "stem_patch": 4})
    big_file = big.save(tmp_path / "big.yaml")
    code = main(
        [
            "supernet",
            "extract",
            str(trained),
            "--config",
            str(big_file),
            "--out",
            str(tmp_path / "x.pt"),
        ]
    )
    assert code == 2
    assert "stem_patch" in capsys.readouterr().err


@pytest.mark.slow  # a Ray search of three trials: about 35 s on the shared CPU
def test_search_scores_each_trial_by_its_supernet_top1(ray_session, data, trained, tmp_path):
    from neonas.search import SearchSettings, start_run
    from neonas.search.settings import EvalSettings
    from neonas.search.study import load_trials

    evaluation = EvalSettings(hw="ascend", data=str(data), supernet=str(trained))
    settings = SearchSettings(
        name="supernet", results_dir=str(tmp_path), space="tiny", trials=3, concurrency=2,
        eval=evaluation,
    )  # fmt: skip
    outcome = start_run(settings, console=Console(file=open(os.devnull, "w")))  # noqa: SIM115
    rows = load_trials(outcome.run_dir).with_status("completed")
    assert len(rows) == 3
    scorer = SubnetScorer(trained, data)
    for row in rows:
        assert row.metrics["accuracy_signal"] == SIGNAL == "supernet top-1"
        config = ArchConfig.from_dict(row.config)
        assert row.metrics["accuracy"] == pytest.approx(scorer.score(config))


def test_search_refuses_a_supernet_of_another_space(data, trained, tmp_path, capsys) -> None:
    code = main(
        ["search", "--space", "neonext", "--data", str(data), "--supernet", str(trained),
         "--results-dir", str(tmp_path)]
    )  # fmt: skip
    assert code == 2
    assert "the supernet" in capsys.readouterr().err


@pytest.mark.slow  # two torchrun processes: about 40 s on the shared CPU
def test_two_cpu_processes_train_one_supernet_and_rank_0_writes_it(data, tmp_path) -> None:
    output = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(ROOT / "cli.py"), "supernet", "train", "--space", "tiny", "--data", str(data),
        "--output", str(output), "--epochs", "1", "--batch-size", "8", "--device", "cpu",
        "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("epoch 1/1") == 1  # only rank 0 speaks
    assert "on 2 process(es)" in result.stdout
    state = load_checkpoint(output / "last.pt")
    assert state["world_size"] == 2 and state["epoch"] == 1
    resumed = main(["supernet", "train", "--output", str(output), "--resume", "--data", str(data)])
    assert resumed == 2  # finished, and trained on 2 processes: refused with one line


@pytest.mark.slow  # a local Ray and two Ray Train workers: about a minute on the shared CPU
def test_two_ray_train_workers_train_one_supernet(ray_session, data, tmp_path) -> None:
    from neonas.supernet.training import SupernetJob, preflight_supernet, run_supernet_training
    from neonas.train.ray_launch import train_with_ray

    job = SupernetJob(
        output_dir=str(tmp_path / "ray"), space="tiny", data_dir=str(data), epochs=1,
        batch_size=8, device="cpu",
    )  # fmt: skip
    summary = train_with_ray(
        job, address="local", num_workers=2, run=run_supernet_training, check=preflight_supernet
    )
    assert summary["space"] == "tiny" and summary["epochs"] == 1
    state = load_checkpoint(tmp_path / "ray" / "last.pt")
    assert state["world_size"] == 2 and state["epoch"] == 1


def test_a_search_trial_reports_the_supernet_top1_of_its_network(data, trained) -> None:
    from neonas.search.settings import EvalSettings
    from neonas.search.trial import score_candidate

    config = load_space("tiny").sample(random.Random(11))
    reports = []
    settings = EvalSettings(hw="ascend", data=str(data), supernet=str(trained))
    score_candidate(config, settings, reports.append)
    assert len(reports) == 1 and reports[0]["status"] == "completed"
    assert reports[0]["accuracy_signal"] == SIGNAL == "supernet top-1"
    assert reports[0]["accuracy"] == pytest.approx(SubnetScorer(trained, data).score(config))
    assert reports[0]["signal_s"] > 0 and "latency_ms" in reports[0]


def test_search_refuses_short_training_options_with_a_supernet(data, trained, capsys) -> None:
    code = main(
        [
            "search",
            "--space",
            "tiny",
            "--data",
            str(data),
            "--supernet",
            str(trained),
            "--epochs",
            "3",
        ]
    )
    assert code == 2
    assert (
        "with --supernet each trial is scored by its inherited weights" in capsys.readouterr().err
    )


# --- few-shot supernets -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def few_shot(trained, tmp_path_factory) -> Path:
    """`supernet few-shot` of the trained supernet: one part per plan, one epoch each."""
    output = tmp_path_factory.mktemp("few-shot") / "parts"
    command = ["supernet", "few-shot", str(trained), "--output", str(output), "--epochs", "1"]
    assert main([*command, "--workers", "0", "--no-progress"]) == 0
    return output


def test_few_shot_trains_one_part_per_plan_from_the_supernet(trained, few_shot) -> None:
    from neonas.supernet.few_shot import load_few_shot

    parts = load_few_shot(few_shot)
    space = load_space("tiny")
    assert parts is not None and list(parts.parts) == space.plan_names
    shared = load_checkpoint(trained)
    for plan, checkpoint in parts.parts.items():
        state = load_checkpoint(checkpoint)
        assert state["epoch"] == 1
        # Trained like the whole supernet, on its own plan's networks only.
        assert state["run_options"]["batch_size"] == shared["run_options"]["batch_size"] == 8
        part_space = load_space(str(checkpoint.parent / "space.yaml"))
        assert part_space.plan_names == [plan]
        assert not torch.equal(state["model"]["head.fc.weight"], shared["model"]["head.fc.weight"])
    assert load_few_shot(parts.folder / "few_shot.json") == parts
    # Run again, it has nothing to do; with other epochs, it refuses the folder in one line.
    again = ["supernet", "few-shot", str(trained), "--output", str(few_shot), "--workers", "0"]
    assert main([*again, "--epochs", "1", "--no-progress"]) == 0
    assert main([*again, "--epochs", "2", "--no-progress"]) == 2


def test_few_shot_scores_extracts_and_checks_by_each_networks_plan(
    data, trained, few_shot, tmp_path, capsys
) -> None:
    from neonas.search.settings import EvalSettings
    from neonas.search.trial import score_candidate
    from neonas.supernet.few_shot import check_supernet_for, load_few_shot

    space = load_space("tiny")
    check_supernet_for(few_shot, space, data)  # every plan has a part holding it
    scorer = SubnetScorer(few_shot, data)
    parts = load_few_shot(few_shot)
    rng = random.Random(2)
    configs = [space.sample(rng) for _ in range(3)]
    for config in configs:
        part = parts.checkpoint_for(config)
        assert scorer.score(config) == pytest.approx(SubnetScorer(part, data).score(config))
    reports = []
    settings = EvalSettings(hw="ascend", data=str(data), supernet=str(few_shot))
    score_candidate(configs[0], settings, reports.append)
    assert reports[0]["accuracy"] == pytest.approx(scorer.score(configs[0]))
    net = tmp_path / "net.yaml"
    net.write_text(configs[0].to_yaml())
    out = tmp_path / "net.pt"
    assert (
        main(["supernet", "extract", str(few_shot), "--config", str(net), "--out", str(out)]) == 0
    )
    extracted = load_checkpoint(out)["extracted_from"]["checkpoint"]
    assert extracted == str(parts.checkpoint_for(configs[0]).resolve())
    # A folder that is not a finished few-shot run, and a space with plans it lacks: one line.
    (tmp_path / "unfinished").mkdir()
    command = ["supernet", "score", str(tmp_path / "unfinished"), "--config", str(net)]
    assert main([*command, "--data", str(data)]) == 2
    assert "few_shot.json" in capsys.readouterr().err
    wide = load_space("tiny-wide")
    with pytest.raises(UserError, match="no part for transition plan|holds"):
        check_supernet_for(few_shot, wide, data)

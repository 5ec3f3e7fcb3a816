"""NeoCell-Bench: the committed tables and their loader, the rank metrics, report and train."""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from neonas.bench import BenchRow, SeedResult, datasets, load_table, metrics, provenance
from neonas.bench.report import DEFAULT_SUPERNET, dataset_report, plan_means
from neonas.bench.table import row_to_dict
from neonas.errors import UserError

CONTRACT_FIGURES = {"tau", "se", "spearman", "top10_recall", "band_tau", "band_se"}


@pytest.fixture
def bench(benchmark_module, monkeypatch):
    neocell_bench = benchmark_module("neocell_bench")
    # The committed tables choose from 3000 drawn networks; tests from fewer, for speed.
    monkeypatch.setattr(neocell_bench, "SPANNING_POOL", 100)
    return neocell_bench


# --- the committed tables ----------------------------------------------------------------------


def test_committed_digits_table_loads_with_provenance():
    assert "digits" in datasets()
    rows = load_table("digits")
    meta = provenance("digits")
    assert len(rows) == meta["networks"] >= 3
    assert meta["recipe"]["epochs"] == 15 and meta["recipe"]["train_images"] == 500
    assert meta["commits"] and meta["machines"] and meta["command"].startswith("python ")
    names = [row.name for row in rows]
    assert len(set(names)) == len(names)
    for row in rows:
        assert [r.seed for r in row.truth] == meta["seeds"] == [0, 1]
        assert all(0.0 <= r.top1 <= 100.0 and r.seconds > 0 for r in row.truth)
        assert row.top1 == pytest.approx((row.truth[0].top1 + row.truth[1].top1) / 2)
        assert set(row.latency_ms) == {1, 16} and row.latency_ms[16] >= row.latency_ms[1] > 0
        assert len(row.signals["synflow"]) == meta["signal_weight_draws"] == 3
        assert len(row.signals["params"]) == 1
        assert row.signals["params"][0] == pytest.approx(math.log10(row.params))
        assert row.arch().name == row.name


def test_committed_networks_are_distinct_and_from_both_sources():
    from neonas.space import load_space

    space = load_space("tiny")
    rows = load_table("digits")
    keys = {space.key(row.arch()) for row in rows}
    assert len(keys) == len(rows)
    assert all(space.contains(row.arch()) for row in rows)
    assert {row.origin for row in rows} == {"spanning", "sampled"}


def test_unknown_table_is_a_user_error():
    with pytest.raises(UserError, match="no NeoCell-Bench table"):
        load_table("no-such-data")


# --- metrics on known inputs -----------------------------------------------------------------------


def test_kendall_tau_b_known_values():
    assert metrics.kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert metrics.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert metrics.kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    # A tie in x: one pair tied in x only, two concordant -> 2 / sqrt(3 * 2).
    assert metrics.kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
    assert math.isnan(metrics.kendall_tau([1, 1, 1], [1, 2, 3]))


def test_spearman_and_top_recall_known_values():
    assert metrics.spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert metrics.spearman([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    # Ties get their mean rank: ranks (1.5, 1.5, 3) against (1, 2, 3).
    assert metrics.spearman([5, 5, 9], [1, 2, 3]) == pytest.approx(math.sqrt(3) / 2)
    truth = list(range(20))  # the best 10 % are networks 19 and 18
    signal = [100.0 if i in (19, 0) else float(i) for i in range(20)]
    assert metrics.top_recall(signal, truth) == 0.5
    assert metrics.top_recall(truth, truth) == 1.0
    assert metrics.top_recall([-t for t in truth], truth) == 0.0


def test_paired_tau_difference_and_its_standard_error():
    rng = np.random.default_rng(1)
    truth = list(range(40))
    latency = [1.0 + 0.01 * (i % 5) for i in range(40)]  # five close latencies: one band
    noisy = [t + rng.normal(0, 8) for t in truth]
    difference, se = metrics.paired_tau_difference(truth, noisy, truth, latency, draws=200)
    expected = metrics.band_tau(truth, truth, latency) - metrics.band_tau(noisy, truth, latency)
    assert difference == pytest.approx(expected) and difference > 0 and se > 0
    back, back_se = metrics.paired_tau_difference(noisy, truth, truth, latency, draws=200)
    assert back == pytest.approx(-difference) and back_se == pytest.approx(se)
    same, same_se = metrics.paired_tau_difference(noisy, noisy, truth, latency, draws=200)
    assert same == 0.0 and same_se == 0.0  # a signal against itself differs on no resample
    whole, _ = metrics.paired_tau_difference(truth, noisy, truth)  # every pair, not bands
    assert whole == pytest.approx(1.0 - metrics.kendall_tau(noisy, truth))


def test_band_tau_counts_only_pairs_of_similar_latency():
    latency = [1.0, 1.05, 2.0, 2.1, 5.0]  # bands: (0, 1) and (2, 3); 2.1 / 2.0 is within 10 %
    truth = [1, 2, 3, 4, 5]
    assert metrics.band_pairs(latency) == 2
    assert metrics.band_tau([2, 1, 3, 4, 0], truth, latency) == 0.0  # one pair each way
    assert metrics.band_tau([1, 2, 3, 4, 0], truth, latency) == 1.0  # network 4 is alone
    # A signal that only tells latency bands apart ranks well overall and nothing in a band.
    coarse = [0, 0, 1, 1, 2]
    assert metrics.kendall_tau(coarse, truth) > 0.8
    assert math.isnan(metrics.band_tau(coarse, truth, latency))
    assert math.isnan(metrics.band_tau([1, 2, 3], [1, 2, 3], [1.0, 2.0, 4.0]))


def _loop_bootstrap(x, y, draws, seed, band=None):
    """The plain loop the vectorised bootstrap must equal."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        pick = rng.integers(0, len(x), len(x))
        c = d = tx = ty = 0
        for i, j in itertools.combinations(range(len(pick)), 2):
            a, b = pick[i], pick[j]
            if band is not None and not band[a, b]:
                continue
            dx, dy = np.sign(x[a] - x[b]), np.sign(y[a] - y[b])
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                tx += 1
            elif dy == 0:
                ty += 1
            elif dx == dy:
                c += 1
            else:
                d += 1
        denominator = math.sqrt((c + d + tx) * (c + d + ty))
        if denominator:
            values.append((c - d) / denominator)
    return float(np.std(values, ddof=1))


def test_bootstrap_se_equals_the_plain_loop():
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 4, 15).astype(float), rng.normal(size=15)
    latency = rng.uniform(1.0, 1.5, 15)
    assert metrics.bootstrap_se(x, y, draws=100, seed=1) == pytest.approx(
        _loop_bootstrap(x, y, 100, 1)
    )
    band = metrics.latency_bands(latency)
    assert metrics.band_bootstrap_se(x, y, latency, draws=100, seed=1) == pytest.approx(
        _loop_bootstrap(x, y, 100, 1, band)
    )
    assert metrics.bootstrap_se([1, 2, 3, 4], [1, 2, 3, 4], draws=50) == 0.0


# --- report on a hand-made table ---------------------------------------------------------------------


def _hand_table(folder: Path, count: int = 20) -> list[BenchRow]:
    """A table where `perfect` ranks like the truth, `reversed` against it, `size` by latency."""
    rows = []
    for i in range(count):
        truth = tuple(
            SeedResult(seed, 50.0 + i + 0.1 * seed, 1.0, 2.0, "abc", "test machine", "2026-01-01")
            for seed in (0, 1)
        )
        latency = 1.0 + 0.01 * i  # consecutive networks within 10 % of each other
        rows.append(
            BenchRow(
                index=i,
                name=f"net{i:03d}",
                origin="spanning" if i % 2 == 0 else "sampled",
                config={"name": f"net{i:03d}"},
                params=1000 + i,
                flops=10_000 + i,
                latency_ms={1: latency, 16: 4 * latency},
                recipe={"recipe": "proxy", "epochs": 1, "train_images": 8, "val_images": 8},
                truth=truth,
                signals={
                    "perfect": (float(i), float(i), float(i)),
                    "reversed": (-float(i), float(i), -float(i)),
                    "params": (math.log10(1000 + i),),
                },
                signal_seconds={"perfect": 0.5, "reversed": 0.5, "params": 0.001},
            )
        )
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(row_to_dict(row)) + "\n" for row in rows)
    (folder / "tiny-hand.jsonl").write_text(lines)
    meta = {
        "networks": count,
        "networks_planned": 30,
        "seeds": [0, 1],
        "recipe": rows[0].recipe,
        "machines": ["test machine"],
        "first_finished": "2026-01-01",
        "last_finished": "2026-01-01",
    }
    (folder / "tiny-hand.meta.json").write_text(json.dumps(meta))
    return rows


def test_report_json_follows_the_contract(bench, tmp_path, capsys):
    _hand_table(tmp_path)
    assert bench.main(["report", "--json", "--tables", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"datasets", "samplers", "samplers_synflow", "end_to_end"}
    entry = result["datasets"]["hand"]
    assert entry["networks"] == 20 and entry["seeds"] == 2
    assert entry["ceiling"]["tau"] == 1.0 and entry["ceiling"]["se"] == 0.0
    signals = entry["signals"]
    for figures in signals.values():
        assert CONTRACT_FIGURES <= set(figures)
    perfect, reverse = signals["perfect"], signals["reversed"]
    assert perfect["tau"] == perfect["spearman"] == perfect["top10_recall"] == 1.0
    assert perfect["band_tau"] == 1.0 and perfect["draw_tau"] == 1.0
    assert reverse["tau"] == -1.0 and reverse["top10_recall"] == 0.0
    assert reverse["draw_tau"] == -1.0  # draw 0 against draw 1
    # Mean of the 3 draws: (-i + i - i) / 3 = -i / 3, still reversed.
    assert signals["reversed, mean of 3 draws"]["tau"] == -1.0
    assert "draw_tau" not in signals["params"] and "params, mean of 3 draws" not in signals
    assert bench.main(["report", "--tables", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "| perfect | +1.00 | 0.00 |" in text and "20 of 30 networks" in text
    assert entry["band_over_zero_cost"] == {}  # no supernet or short-training column


def test_a_trained_signal_is_compared_with_the_best_zero_cost_proxy(bench, tmp_path):
    rows = _hand_table(tmp_path)
    for i, row in enumerate(rows):  # a supernet column ranking the truth in reverse
        row.signals["supernet, test"] = (-float(i),)
        row.signal_seconds["supernet, test"] = 1.0
    entry = dataset_report(rows)
    over = entry["band_over_zero_cost"]["supernet, test"]
    assert over["versus"] in ("perfect", "params")  # both rank perfectly: band tau +1
    assert over["difference"] == -2.0  # -1 against +1
    assert entry["supernet_recipes"] == {}  # no default recipe's column to compare with
    for i, row in enumerate(rows):
        row.signals[DEFAULT_SUPERNET] = (float(i),)
        row.signal_seconds[DEFAULT_SUPERNET] = 1.0
    recipes = dataset_report(rows)["supernet_recipes"]
    assert set(recipes) == {"supernet, test"}
    assert recipes["supernet, test"]["tau_difference"] == -2.0
    assert recipes["supernet, test"]["band_difference"] == -2.0


# --- train and collect -----------------------------------------------------------------------------


def test_bench_networks_alternate_sources_and_are_stable(bench):
    four = bench.bench_networks(4)
    assert [n["origin"] for n in four] == ["spanning", "sampled", "spanning", "sampled"]
    assert bench.bench_networks(6)[:4] == four  # a longer table extends a shorter one


def test_bad_dataset_exits_2(bench, tmp_path, capsys):
    assert bench.main(["train", "--cache", str(tmp_path), "--dataset", "imagenet"]) == 2
    assert "unknown data set 'imagenet'" in capsys.readouterr().err
    code = bench.main(["train", "--cache", str(tmp_path), "--dataset", f"x={tmp_path}/none"])
    assert code == 2


def test_generated_data_is_the_same_every_time_and_leaves_no_partial_file(bench, tmp_path):
    """Shards started together each write the built-in data: files must be whole and equal."""
    from accuracy_signals import shapes_folder

    from neonas.train.data import detect_layout, load_split

    first = shapes_folder(tmp_path / "a", train=20, val=10)
    again = shapes_folder(tmp_path / "b", train=20, val=10)
    names = sorted(p.name for p in first.iterdir())
    assert names == ["batches.meta", "data_batch_1", "test_batch"]  # no .partial files left
    for name in names:
        assert (first / name).read_bytes() == (again / name).read_bytes()
    layout = detect_layout(first)
    assert len(load_split(layout, "train", None)) == 20
    assert len(load_split(layout, "val", None)) == 10


def test_train_collect_report_round_trip(bench, tmp_path, capsys):
    from accuracy_signals import shapes_folder

    data = shapes_folder(tmp_path / "data", train=64, val=32)  # zico: 2 batches of 32
    cache, tables = tmp_path / "cache", tmp_path / "tables"
    command = ["train", "--cache", str(cache), "--dataset", f"toy={data}", "--networks", "2"]
    assert bench.main([*command, "--epochs", "1", "--draws", "2", "--shard", "1/2"]) == 0
    assert sorted(p.name for p in (cache / "toy" / "truth").glob("*.json")) == [
        "net001-seed0.json",
        "net001-seed1.json",
    ]  # the second of two processes sharing the table
    assert bench.main([*command, "--epochs", "1", "--draws", "2", "--shard", "0/2"]) == 0
    assert len(list((cache / "toy" / "truth").glob("*.json"))) == 4
    assert bench.main([*command, "--shard", "2/2"]) == 2
    assert "--shard 2/2" in capsys.readouterr().err
    assert bench.main(["collect", "--cache", str(cache), "--out", str(tables)]) == 0
    rows = load_table("toy", tables)
    assert [row.name for row in rows] == ["net000", "net001"]
    assert all(len(row.truth) == 2 and len(row.signals["zico"]) == 2 for row in rows)
    meta = provenance("toy", tables)
    assert meta["networks"] == 2 and meta["recipe"]["epochs"] == 1 and meta["data"] == str(data)
    # A fresh machine continues the committed table: its networks are restored, not trained.
    fresh = tmp_path / "fresh-cache"
    before = (cache / "toy" / "truth" / "net001-seed1.json").read_text()
    restore = ["train", "--cache", str(fresh), "--dataset", f"toy={data}", "--networks", "2"]
    restore += ["--epochs", "1", "--draws", "2", "--tables", str(tables)]
    assert bench.main(restore) == 0
    assert "2 networks restored" in capsys.readouterr().out
    assert (fresh / "toy" / "truth" / "net001-seed1.json").read_text() == before
    bench.collect(fresh, None, tmp_path / "again")
    assert load_table("toy", tmp_path / "again") == rows
    # A row committed before a config field existed lacks it and is the same network.
    lines = (tables / "tiny-toy.jsonl").read_text().splitlines()
    older = [json.loads(line) for line in lines]
    for row in older:
        del row["config"]["rounding"]  # as the digits table was committed
    (tables / "tiny-toy.jsonl").write_text("".join(json.dumps(row) + "\n" for row in older))
    older_cache = tmp_path / "older-cache"
    assert bench.main([*restore[:2], str(older_cache), *restore[3:]]) == 0
    assert "2 networks restored" in capsys.readouterr().out
    assert (older_cache / "toy" / "truth" / "net001-seed1.json").read_text() == before
    # ... but not into a run that trains another way (more epochs, fewer weight draws).
    other = tmp_path / "other-cache"
    networks = bench.load_networks(other, 2)
    for epochs, draws in ((2, 2), (1, 1)):
        toy = bench.parse_dataset(f"toy={data}", 2, epochs)
        assert bench.restore_from_table(other, toy, networks, [0, 1], draws, tables) == 0
    assert not (other / "toy").exists()
    # Resuming with another recipe under the same name is refused, not mixed in.
    assert bench.main([*command, "--epochs", "2", "--draws", "2"]) == 2
    capsys.readouterr()
    assert bench.main(["report", "--json", "--tables", str(tables)]) == 0
    assert json.loads(capsys.readouterr().out)["datasets"]["toy"]["networks"] == 2
    # A supernet's scores join the table as a signal once every network has one.
    record = {"top1": 61.5, "seconds": 0.5, "finished": "2026-01-01"}
    bench._write(bench.supernet_path(cache, "toy", "recipe-a", 0), record)
    bench.collect(cache, None, tables)
    assert all("supernet, recipe-a" not in row.signals for row in load_table("toy", tables))
    bench._write(bench.supernet_path(cache, "toy", "recipe-a", 1), {**record, "top1": 70.0})
    bench.collect(cache, None, tables)
    rows = load_table("toy", tables)
    assert [row.signals["supernet, recipe-a"] for row in rows] == [(61.5,), (70.0,)]
    assert rows[1].signal_seconds["supernet, recipe-a"] == 0.5
    # Collected on a fresh machine that restored the table, the supernet column is kept.
    assert bench.main([*restore[:2], str(tmp_path / "third"), *restore[3:]]) == 0
    bench.collect(tmp_path / "third", None, tables)
    assert [row.signals["supernet, recipe-a"] for row in load_table("toy", tables)] == [
        (61.5,),
        (70.0,),
    ]
    # Short training (the search's trial) joins as a signal, with its ASHA form.
    short = ["short", "--cache", str(cache), "--dataset", "toy", "--batch-size", "32"]
    assert bench.main(short) == 0
    assert len(list((cache / "toy" / "short-b32").glob("net*.json"))) == 2
    bench.collect(cache, None, tables)
    signals = load_table("toy", tables)[0].signals
    assert {"short training, batch 32, 3 epochs", "short training, batch 32, 6 epochs"} < set(
        signals
    )
    assert "short training, batch 32, 6 epochs, ASHA" in signals
    # Only built-in data sets have a supernet recipe.
    assert bench.main(["supernet", "--cache", str(cache), "--dataset", "toy"]) == 2


def test_a_copy_without_git_takes_its_commit_from_the_environment(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "ROOT", tmp_path)  # a folder that is not a git checkout
    monkeypatch.delenv("NEONAS_CODE_COMMIT", raising=False)
    assert bench.code_commit.__wrapped__() == "unknown"
    monkeypatch.setenv("NEONAS_CODE_COMMIT", "e98ae43")
    assert bench.code_commit.__wrapped__() == "e98ae43"


@pytest.mark.cuda
def test_train_on_cuda_records_the_device(bench, tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from accuracy_signals import shapes_folder

    data = shapes_folder(tmp_path / "data", train=64, val=32)
    command = ["train", "--cache", str(tmp_path / "cache"), "--dataset", f"toy={data}"]
    assert bench.main([*command, "--networks", "1", "--epochs", "1", "--device", "cuda"]) == 0
    record = json.loads((tmp_path / "cache" / "toy" / "truth" / "net000-seed0.json").read_text())
    assert record["machine"] == bench.machine("cuda") and 0.0 <= record["top1"] <= 100.0


def test_report_reads_the_committed_tables(bench, capsys):
    assert bench.main(["report", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["datasets"]) == set(datasets())
    digits = result["datasets"]["digits"]
    assert digits["networks"] == len(load_table("digits"))
    assert "synflow" in digits["signals"] and "zico, noise, mean of 3 draws" in digits["signals"]


def test_few_shot_trains_one_sub_supernet_per_plan_from_the_shared_one(
    bench, monkeypatch, tmp_path
):
    import accuracy_signals
    import torch
    from test_train_fixtures import make_image_folder

    from neonas.space import load_space, space_from_yaml
    from neonas.train.checkpoint import load_checkpoint

    data = make_image_folder(tmp_path / "images", classes=4, train_per_class=4, size=32)
    for module in (accuracy_signals, bench):
        monkeypatch.setattr(module, "make_data", lambda cache, name: data)
    recipe = accuracy_signals.SupernetRecipe(batch_size=8, epochs=1, random_subnets=1)
    cache = tmp_path / "cache"
    accuracy_signals.train_supernets(cache, ["digits"], recipe)
    shared = load_checkpoint(cache / recipe.training / "digits" / "last.pt")["model"]
    parts = bench.train_few_shot(cache, "digits", recipe, epochs=1)
    assert list(parts) == load_space("tiny").plan_names  # one per transition plan
    for plan, checkpoint in parts.items():
        state = load_checkpoint(checkpoint)
        info = state["model_spec"]["supernet"]
        assert space_from_yaml(info["space_text"]).plan_names == [plan]
        assert state["epoch"] == 1
        stem = "stem.conv.weight"  # trained on from the shared weights: close, not equal
        assert not torch.equal(state["model"][stem], shared[stem])
        assert torch.allclose(state["model"][stem], shared[stem], atol=0.05)
    again = bench.train_few_shot(cache, "digits", recipe, epochs=1)  # resumed: nothing to do
    assert again == parts


def test_scoring_cost_times_each_count_of_validation_images(
    bench, benchmark_module, monkeypatch, tmp_path, capsys
):
    import accuracy_signals
    from test_train_fixtures import make_image_folder

    cost = benchmark_module("scoring_cost")
    assert cost.main(["--cache", str(tmp_path / "empty")]) == 2  # no supernet: one line
    assert "no supernet at" in capsys.readouterr().err
    data = make_image_folder(tmp_path / "images", classes=4, train_per_class=4, size=32)
    for module in (accuracy_signals, cost):
        monkeypatch.setattr(module, "make_data", lambda cache, name: data)
    recipe = accuracy_signals.SupernetRecipe(batch_size=8, epochs=1, random_subnets=1)
    accuracy_signals.train_supernets(tmp_path / "cache", ["digits"], recipe)
    supernet = tmp_path / "cache" / recipe.training / "digits" / "last.pt"
    capsys.readouterr()  # the supernet's training lines
    line = ["--cache", str(tmp_path), "--supernet", str(supernet), "--dataset", "digits"]
    assert cost.main([*line, "--networks", "2", "--val-images", "4,8"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result["seconds_per_candidate"]) == ["4", "8"]
    assert all(entry["min"] > 0 for entry in result["seconds_per_candidate"].values())


def test_supernet_signal_names_say_how_the_networks_were_scored(bench):
    from accuracy_signals import SupernetRecipe

    from neonas.supernet.scoring import CALIB_IMAGES, VAL_IMAGES

    recipe = SupernetRecipe()
    # the tables' first scoring (256 / 500 images) is the name without a suffix
    assert bench.supernet_signal(recipe, 256, 500) == "supernet-uniform4-b32-e30-lr0.002"
    # the search's default now validates on more images: its own name, never the old one's
    assert bench.supernet_signal(recipe, CALIB_IMAGES, VAL_IMAGES).endswith("-c256-v2000")
    named = bench.supernet_signal(recipe, 64, 0, parts=(10, 3))
    assert named == "supernet-uniform4-b32-e30-lr0.002-fewshot10x3-c64-vall"
    # another learning rate is another supernet: its own folder and signal name
    faster = SupernetRecipe(lr=4e-3)
    assert faster.training == "supernet-uniform4-b32-e30-lr0.004"
    assert bench.supernet_signal(faster, 64, 0) == "supernet-uniform4-b32-e30-lr0.004-c64-vall"


def test_supernet_learning_rate_must_be_positive(bench, tmp_path, capsys):
    code = bench.main(["supernet", "--cache", str(tmp_path), "--lr", "0"])
    assert code == 2
    assert "--lr 0.0: the learning rate must be positive" in capsys.readouterr().err


def test_plan_means_group_the_table_by_transition_plan(bench, capsys):
    from neonas.arch import ArchConfig
    from neonas.space import plan_of

    rows = load_table("digits")
    means = plan_means(rows)
    assert sum(entry["networks"] for entry in means.values()) == len(rows)
    tops = [entry["top1"] for entry in means.values()]
    assert tops == sorted(tops, reverse=True)  # best plan first
    plan = next(iter(means))
    members = [r for r in rows if plan_of(ArchConfig.from_dict(r.config)) == plan]
    signal = "supernet, supernet-uniform4-b32-e30-lr0.002"
    expected = sum(r.signals[signal][0] for r in members) / len(members)
    assert means[plan][signal] == pytest.approx(expected)
    assert bench.main(["plans", "--dataset", "digits"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("| tau over the plans |") and "+" in last


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_compare_prints_the_paired_differences_of_two_signals(bench, capsys):
    parts = "supernet, supernet-uniform4-b32-e30-lr0.002-fewshot10x3"
    assert bench.main(["compare", parts, "supernet, supernet-uniform4-b32-e30-lr0.002"]) == 0
    shown = capsys.readouterr().out
    recipe = dataset_report(load_table("digits"))["supernet_recipes"][parts]  # the same pairs
    assert f"tau {recipe['tau_difference']:+.3f} (SE {recipe['tau_se']:.3f})" in shown
    assert bench.main(["compare", "synflow", "synflow"]) == 0
    assert "tau +0.000 (SE 0.000), band tau +0.000 (SE 0.000)" in capsys.readouterr().out
    assert bench.main(["compare", "supernet, none", "synflow"]) == 2
    assert "no signal 'supernet, none'" in capsys.readouterr().err

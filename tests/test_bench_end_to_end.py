"""The end-to-end benchmark: its groups, its resumable retraining and the committed figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neonas.arch import ArchConfig
from neonas.bench import load_table
from neonas.bench.end_to_end import end_to_end_figures, group_figures
from neonas.bench.report import report
from neonas.bench.table import row_to_dict


@pytest.fixture
def e2e(benchmark_module):
    return benchmark_module("end_to_end")


def test_the_hand_design_is_within_the_budget(e2e):
    hand = ArchConfig.load(e2e.HAND)
    assert e2e.predicted_latency(hand) <= e2e.BUDGET_MS
    # and it is NeoNeXt's plan: 4x4 and 7x7 matrices on half the channels each, shifted.
    cells = [(c.size, c.share, c.shift) for c in hand.stages[0].cells]
    assert cells == [(4, 0.5, True), (7, 0.5, True)]


def test_random_networks_are_seeded_distinct_and_within_budget(e2e):
    first = e2e.random_networks(2, e2e.BUDGET_MS)
    assert first == e2e.random_networks(2, e2e.BUDGET_MS)
    configs = [ArchConfig.from_dict(c) for c in first]
    assert len({c.canonical().model_copy(update={"name": "x"}) for c in configs}) == 2
    assert all(e2e.predicted_latency(c) <= e2e.BUDGET_MS for c in configs)
    assert e2e.random_networks(1, e2e.BUDGET_MS, seed=1) != first[:1]


def test_group_figures_mean_and_standard_error():
    three = [{"top1": {"0": t, "1": t + 2.0}, "latency_ms": 0.4} for t in (60.0, 70.0, 80.0)]
    figures = group_figures(three)  # network means 61, 71, 81: SE = 10 / sqrt(3)
    assert figures["top1_mean"] == 71.0 and figures["top1_se"] == pytest.approx(5.77, abs=0.01)
    one = group_figures([{"top1": {"0": 60.0, "1": 64.0}, "latency_ms": 0.47}])
    assert one["top1_mean"] == 62.0 and one["top1_se"] == 2.0  # over the two seeds


@pytest.fixture
def trained(e2e, monkeypatch, tmp_path) -> list[tuple[str, int]]:
    """Runs of end_to_end on tiny data whose search and retraining are stand-ins: the list of
    (network, seed) retrained, in order."""
    from accuracy_signals import shapes_folder

    data = shapes_folder(tmp_path / "data", train=16, val=16)
    monkeypatch.setattr(e2e, "make_data", lambda cache, name: data)
    small = ArchConfig.load(e2e.HAND).to_dict()
    searched = [dict(small, name=f"s{i}") for i in range(3)]
    monkeypatch.setattr(e2e, "search_step", lambda cache, dataset, setup: searched)
    done: list[tuple[str, int]] = []

    def fake_truth(config, data, protocol, seed):
        done.append((config["name"], seed))
        return {"top1": 50.0 + 10 * seed + len(done), "loss": 1.0, "seconds": 0.1}

    monkeypatch.setattr(e2e, "truth_job", fake_truth)

    def fake_signals(cache, dataset, setup, networks):  # searched 90-92, random 80-82
        scores = {group: [None] * len(configs) for group, configs in networks.items()}
        scores.update(searched=[90.0, 91.0, 92.0], random=[80.0, 81.0, 82.0])
        e2e._write(e2e.signals_file(cache, dataset, setup), scores)
        return scores

    monkeypatch.setattr(e2e, "signal_step", fake_signals)
    return done


def test_run_retrains_each_group_once_and_collects(e2e, trained, tmp_path, capsys):
    folder = e2e.folder_of(tmp_path, "digits")
    folder.mkdir(parents=True)
    e2e._write(folder / "search.json", {"supernet_seconds": 100.0, "search_seconds": 20.0,
                                        "val_images": 2000})  # fmt: skip
    e2e.run(tmp_path, "digits")
    assert len(trained) == 2 * (3 + 3 + 1)  # 3 searched, 3 random, the hand design; 2 seeds
    assert "the search's signal: hand - (-); random 81.0 (80.00, 81.00, 82.00)" in (
        capsys.readouterr().out
    )
    e2e.run(tmp_path, "digits")  # resumed: nothing left to train
    assert len(trained) == 14
    e2e.collect(tmp_path, "digits", tmp_path)
    figures = end_to_end_figures("digits", tmp_path)
    assert set(figures) == {
        "space",
        "supernet",
        "budget_ms",
        "search_cost_seconds",
        "val_images",
        "searched",
        "random",
        "hand",
    }
    assert figures["space"] == "tiny"
    assert figures["search_cost_seconds"] == 120.0 and figures["val_images"] == 2000
    assert figures["hand"]["networks"] == 1 and figures["searched"]["networks"] == 3
    # the search's signal beside the retrained top-1, where every network of a group has one
    assert figures["searched"]["signal_mean"] == 91.0 and figures["random"]["signal_mean"] == 81.0
    assert "signal_mean" not in figures["hand"]
    assert report(tmp_path)["end_to_end"]["digits"]["random"]["networks"] == 3
    # Scored by few-shot parts: only the searched networks are new; the random and hand
    # retrainings are the same networks and seeds, reused.
    few_shot = e2e.Setup(few_shot=True)
    e2e._write(e2e.folder_of(tmp_path, "digits", few_shot) / "search.json", {
        "supernet_seconds": 150.0, "search_seconds": 20.0, "supernet": "x-few-shot"
    })  # fmt: skip
    e2e.run(tmp_path, "digits", few_shot)
    assert len(trained) == 14 + 2 * 3
    e2e.collect(tmp_path, "digits", tmp_path, few_shot)
    both = report(tmp_path)["end_to_end"]
    assert both["digits, tiny-few-shot"]["supernet"] == "x-few-shot"
    assert both["digits, tiny-few-shot"]["val_images"] == 500  # recorded before the field
    assert both["digits, tiny-few-shot"]["hand"] == both["digits"]["hand"]
    assert e2e.main(["report", "--folder", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "| hand | 1 |" in shown and "| 0.471 | - |" in shown and "| 91.0 |" in shown
    # With a table beside it, its drawn networks within the budget come as context.
    rows = [row for row in load_table("digits") if row.origin == "sampled"]
    within = [row for row in rows if row.latency_ms[1] <= e2e.BUDGET_MS]
    lines = "".join(json.dumps(row_to_dict(row)) + "\n" for row in rows)
    (tmp_path / "tiny-digits.jsonl").write_text(lines)
    figures = end_to_end_figures("digits", tmp_path)
    context = figures["table_sampled_within_budget"]
    assert context["networks"] == len(within) and 0.0 < context["top1_mean"] < 100.0
    best = figures["table_best_within_budget"]
    assert best["networks"] == 1 and best["top1_mean"] >= context["top1_mean"]


def test_the_signal_scores_each_network_as_the_search_scored_its_trials(e2e, monkeypatch, tmp_path):
    from test_train_fixtures import make_image_folder

    from neonas.supernet.scoring import SubnetScorer
    from neonas.supernet.training import train_supernet

    data = make_image_folder(tmp_path / "images", classes=4, train_per_class=4, size=32)
    monkeypatch.setattr(e2e, "make_data", lambda cache, name: data)
    setup = e2e.Setup()
    checkpoint = e2e.scorer_path(tmp_path, "digits", setup)
    train_supernet(
        "tiny", data, epochs=1, output_dir=checkpoint.parent, batch_size=8, random_subnets=1
    )
    e2e._write(e2e.search_file(tmp_path, "digits", setup), {"val_images": 8})
    networks = {
        "hand": [ArchConfig.load(e2e.HAND).to_dict()],
        "random": e2e.random_networks(2, e2e.BUDGET_MS),
    }
    scores = e2e.signal_step(tmp_path, "digits", setup, networks)
    assert scores["hand"] == [None]  # the hand design is outside the tiny space
    same = SubnetScorer(checkpoint, data, max_val_images=8, seed=0)  # as the search's trials
    assert scores["random"] == [
        same.score(ArchConfig.from_dict(e2e.for_data(config, data)))
        for config in networks["random"]
    ]
    checkpoint.unlink()  # resumed: read back, not scored again
    assert e2e.signal_step(tmp_path, "digits", setup, networks) == scores


def test_the_wide_space_holds_the_hand_design_and_its_result_has_its_own_key(e2e, tmp_path):
    from neonas.bench.end_to_end import end_to_end_results
    from neonas.space import load_space

    hand = ArchConfig.load(e2e.HAND)
    assert load_space("tiny-wide").contains(hand) and not load_space("tiny").contains(hand)
    drawn = e2e.random_networks(1, e2e.BUDGET_MS, space_name="tiny-wide")
    assert load_space("tiny-wide").contains(ArchConfig.from_dict(drawn[0]))
    wide, few_shot = e2e.Setup("tiny-wide"), e2e.Setup("tiny-wide", few_shot=True)
    folders = {e2e.folder_of(tmp_path, "digits", s) for s in (wide, few_shot, e2e.Setup())}
    assert len(folders) == 3 and few_shot.label == "tiny-wide-few-shot"
    path = e2e.summary_path("digits", tmp_path, "tiny-wide")
    path.write_text(json.dumps(_hand_only_summary("tiny-wide", 80.0, 82.0)))
    results = end_to_end_results(tmp_path)
    assert list(results) == ["digits, tiny-wide"]  # no table context for another space
    assert results["digits, tiny-wide"]["hand"]["top1_mean"] == 81.0
    assert "table_sampled_within_budget" not in results["digits, tiny-wide"]


def test_the_whole_supernet_run_reuses_a_few_shot_runs_random_and_hand(e2e, trained, tmp_path):
    e2e.run(tmp_path, "shapes-large", e2e.Setup(few_shot=True))
    assert len(trained) == 2 * 7
    e2e.run(tmp_path, "shapes-large")
    assert len(trained) == 2 * 7 + 2 * 3  # only its own searched networks
    assert all(name.startswith("s") for name, _ in trained[14:])


def test_the_benchmark_and_the_end_to_end_search_share_few_shot_parts(e2e):
    import neocell_bench
    from accuracy_signals import SupernetRecipe

    recipe, cache = SupernetRecipe(), Path("/cache")
    bench = neocell_bench.few_shot_folder(cache, "digits", recipe, 3)
    assert bench == cache / f"{recipe.training}-fewshot-e3" / "digits"  # the cached digits parts
    wide = neocell_bench.few_shot_folder(cache, "digits", recipe, 3, "tiny-wide")
    assert wide != bench and wide.parent.name.startswith(f"{recipe.training}-tiny-wide")


def test_results_of_every_data_set_are_read(e2e, tmp_path):
    from neonas.bench.end_to_end import DATASETS, end_to_end_results

    assert "shapes-large" in DATASETS and set(DATASETS) <= set(e2e.PROTOCOLS)
    summary = _hand_only_summary("tiny", 93.0, 95.0)
    e2e.summary_path("shapes-large", tmp_path, "tiny-few-shot").write_text(json.dumps(summary))
    results = end_to_end_results(tmp_path)
    assert results["shapes-large, tiny-few-shot"]["hand"]["top1_mean"] == 94.0


def _hand_only_summary(space: str, *top1: float) -> dict:
    """A committed end-to-end summary with only the hand design, top-1 per seed."""
    return {
        "space": space,
        "budget_ms": 0.48,
        "search_cost_seconds": 1.0,
        "seeds": list(range(len(top1))),
        "networks": [
            {
                "group": "hand",
                "index": 0,
                "latency_ms": 0.47,
                "top1": {str(seed): value for seed, value in enumerate(top1)},
            }
        ],
    }


def test_shards_share_the_retraining_and_only_shard_0_searches(
    e2e, trained, tmp_path, capsys, monkeypatch
):
    searches: list[int] = []
    searched = e2e.search_step(tmp_path, "digits", e2e.Setup())  # the stand-in's networks

    def search_once(cache, dataset, setup):  # as search_step: a finished search is read back
        done = e2e.folder_of(cache, dataset, setup) / "search.json"
        if not done.is_file():
            searches.append(1)
            e2e._write(done, {"configs": searched})
        return json.loads(done.read_text())["configs"]

    monkeypatch.setattr(e2e, "search_step", search_once)
    e2e.run(tmp_path, "digits", shard=(1, 2))  # before the search: hand and random only
    assert not searches and "has not finished" in capsys.readouterr().out
    assert sorted(trained) == [("neonext_hand_32px", 1), *[(f"random{i}", 1) for i in range(3)]]
    e2e.run(tmp_path, "digits", shard=(0, 2))
    assert len(searches) == 1 and len(trained) == 4 + 7  # seed 0 of all seven
    e2e.run(tmp_path, "digits", shard=(1, 2))  # again, after the search: its searched share
    assert len(trained) == 14 and len(set(trained)) == 14 and len(searches) == 1
    assert e2e.main(["run", "--cache", str(tmp_path), "--shard", "2/2"]) == 2


def test_the_hand_design_is_retrained_once_per_data_set(e2e, trained, tmp_path):
    e2e.run(tmp_path, "shapes-large", e2e.Setup(few_shot=True))
    assert len(trained) == 14
    e2e.run(tmp_path, "shapes-large", e2e.Setup("tiny-wide", few_shot=True))
    # another space draws other random networks, but the hand design is the same network
    assert len(trained) == 14 + 2 * 3 + 2 * 3
    assert not any(name.startswith("neonext_hand") for name, _ in trained[14:])


def test_a_scalar_objective_run_has_its_own_searched_networks_and_reuses_random_and_hand(
    e2e, trained, tmp_path
):
    scalar = e2e.Setup(few_shot=True, objective="scalar")
    assert scalar.label == "tiny-few-shot-scalar"
    assert scalar.objective_args() == ["--objective", "scalar", "--latency-weight", "0"]
    assert e2e.Setup(few_shot=True).objective_args() == []
    e2e.run(tmp_path, "shapes-large", e2e.Setup(few_shot=True))
    assert len(trained) == 14
    e2e.run(tmp_path, "shapes-large", scalar)
    assert len(trained) == 14 + 2 * 3  # only its own searched networks
    assert (
        e2e.folder_of(tmp_path, "shapes-large", scalar).name == "shapes-large-tiny-few-shot-scalar"
    )


def test_neonas_commands_run_on_one_torch_thread(e2e, monkeypatch):
    """As the benchmark's own processes: two threads beside other shards oversubscribe."""
    seen = {}
    monkeypatch.setattr(e2e.subprocess, "run", lambda command, **options: seen.update(options))
    e2e._cli("supernet", "few-shot", "x.pt")
    assert seen["env"]["OMP_NUM_THREADS"] == "1" and seen["check"] is True

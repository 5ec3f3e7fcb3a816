"""The sampler comparison: hypervolume, one seeded search, collect and the committed figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from neonas.bench import metrics
from neonas.bench.report import report
from neonas.bench.samplers import sampler_figures


@pytest.fixture
def samplers(benchmark_module):
    return benchmark_module("sampler_search")


def test_hypervolume_2d_known_areas():
    ref = (10.0, 0.0)
    assert metrics.hypervolume_2d([], ref) == 0.0
    assert metrics.hypervolume_2d([(4.0, 5.0)], ref) == 30.0  # (10 - 4) x (5 - 0)
    # A second point, slower and better, adds its strip above the first: 30 + 2 x 3.
    assert metrics.hypervolume_2d([(8.0, 8.0), (4.0, 5.0)], ref) == 36.0
    # A dominated point, and points beyond the reference, add nothing.
    points = [(4.0, 5.0), (8.0, 8.0), (9.0, 7.0), (11.0, 20.0), (1.0, -1.0)]
    assert metrics.hypervolume_2d(points, ref) == 36.0


class FakeOracle:
    """A landscape without a supernet: latency grows with width, top-1 with width and depth."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.widths: list[int] = []

    def __call__(self, key, config):
        self.calls.append(key)
        width = sum(stage.width for stage in config.stages)
        self.widths.append(width)
        depth = sum(stage.depth for stage in config.stages)
        return 0.3 + width / 1000.0, 50.0 + width / 8.0 + depth


@pytest.mark.parametrize("name", ["tpe", "random", "nsga2"])
def test_a_search_is_seeded_and_scores_distinct_networks(samplers, name):
    oracle = FakeOracle()
    first = samplers.search(name, seed=3, trials=12, oracle=oracle)
    assert len(first["points"]) == 12 and first["asks"] >= 12
    assert len(set(oracle.calls)) == 12  # a repeated proposal is asked again, not scored
    again = samplers.search(name, seed=3, trials=12, oracle=FakeOracle())
    assert again["points"] == first["points"]
    other = samplers.search(name, seed=4, trials=12, oracle=FakeOracle())
    assert other["points"] != first["points"]


def test_the_default_sampler_is_the_supernet_search_default(samplers):
    from neonas.search.settings import SearchSettings

    searched = SearchSettings(name="x", eval={"supernet": "last.pt", "data": "data"})
    assert samplers.DEFAULT_SAMPLER == searched.sampler == "gp"


def _fake_run(cache: Path, name: str, seed: int, points: list[list[float]]) -> None:
    path = cache / "samplers" / "runs" / f"{name}-t{len(points)}-s{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"sampler": name, "seed": seed, "points": points, "asks": len(points)}
    record.update(seconds=1.0, commit="abc", machine="test", finished="2026-01-01")
    path.write_text(json.dumps(record))


def test_collect_and_figures_follow_the_contract(samplers, tmp_path, capsys):
    cache, out = tmp_path / "cache", tmp_path / "out"
    slow_bad = [[0.59, 55.0]] * 256
    # random: one good network at trial 200; tpe finds a better one at trial 40.
    random_points = [list(p) for p in slow_bad]
    random_points[199] = [0.40, 80.0]
    tpe_points = [list(p) for p in slow_bad]
    tpe_points[39] = [0.40, 85.0]
    for seed in range(3):
        _fake_run(cache, "random", seed, random_points)
        _fake_run(cache, "tpe", seed, tpe_points)
        _fake_run(cache, "gp", seed, tpe_points)
    _fake_run(cache, "tpe", 9, tpe_points[:8])  # a run of another length is left out
    samplers.collect(cache, out)
    figures = sampler_figures("digits", out)
    assert set(figures) == {"random", "tpe", "gp"}
    tpe, random = figures["tpe"], figures["random"]
    assert figures["gp"]["default"] and not tpe["default"] and not random["default"]
    assert tpe["seeds"] == 3
    assert tpe["hv_at_64"] > random["hv_at_64"]
    assert tpe["trials_to_random_256_hv"] == 40  # reached at trial 40, kept every 4th
    assert random["trials_to_random_256_hv"] == 200  # random reaches its own, by definition
    assert tpe["best_within_budget_at_64"] == 85.0
    assert random["best_within_budget_at_64"] is None  # none within 0.48 ms by trial 64
    assert samplers.main(["report", "--folder", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| gp (default) | 3 |" in text and "| tpe | 3 |" in text and "| 40 |" in text


def test_random_reaches_its_own_256_trial_hypervolume_at_256(samplers, tmp_path):
    # A last-trial hypervolume whose fifth decimal rounds up: the target is not rounded.
    points = [[0.59, 55.0]] * 255 + [[0.45, 80.1265]]
    _fake_run(tmp_path / "cache", "random", 0, points)
    samplers.collect(tmp_path / "cache", tmp_path)
    assert sampler_figures("digits", tmp_path)["random"]["trials_to_random_256_hv"] == 256


def test_neocell_bench_report_carries_the_samplers(samplers, monkeypatch, tmp_path, capsys):
    cache = tmp_path / "cache"
    _fake_run(cache, "random", 0, [[0.4, 70.0]] * 64)
    samplers.collect(cache, tmp_path, trials=64)
    assert report(tmp_path)["samplers"]["random"]["hv_at_64"] > 0


def test_synflow_landscape_scores_as_the_search_and_is_kept_apart(samplers, tmp_path, capsys):
    from neonas.canonical import network_key
    from neonas.search.settings import EvalSettings
    from neonas.search.trial import score_candidate
    from neonas.space import load_space

    config = load_space("tiny").smallest()
    reports = []
    score_candidate(config, EvalSettings(signal="synflow", seed=0), reports.append)
    oracle = samplers.Oracle(tmp_path / "cache", "synflow")
    latency, score = oracle(network_key(config), config)
    assert score == reports[-1]["accuracy"]  # the score a search trial gives this network
    assert latency == pytest.approx(reports[-1]["latency_ms"])
    assert (tmp_path / "cache" / "samplers" / "oracle-synflow.jsonl").is_file()
    assert not (tmp_path / "cache" / "samplers" / "oracle.jsonl").exists()
    # Runs, summaries and the report keep the two landscapes apart.
    assert samplers.main(["run", "--cache", str(tmp_path / "cache"), "--signal", "synflow",
                          "--samplers", "random", "--seeds", "1", "--trials", "4"]) == 0  # fmt: skip
    assert samplers.run_path(tmp_path / "cache", "random", 0, 4, "synflow").is_file()
    samplers.collect(tmp_path / "cache", tmp_path, trials=4, landscape="synflow")
    assert (tmp_path / "tiny-digits-samplers-synflow.json").is_file()
    result = report(tmp_path)
    assert result["samplers"] == {} and result["samplers_synflow"]["random"]["seeds"] == 1
    assert not result["samplers_synflow"]["random"]["default"]  # tpe is, for zero-cost signals
    capsys.readouterr()
    assert samplers.main(["report", "--signal", "synflow", "--folder", str(tmp_path)]) == 0
    assert "SynFlow" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        samplers.main(["run", "--cache", str(tmp_path), "--signal", "params"])
    assert refused.value.code == 2 and "invalid choice: 'params'" in capsys.readouterr().err


def test_a_budgeted_search_refuses_points_over_budget_as_the_searcher_does(samplers):
    oracle = FakeOracle()
    result = samplers.search("tpe", seed=0, trials=8, oracle=oracle, budget_ms=0.40)
    assert len(result["points"]) == 8
    assert all(latency <= 0.40 for latency, _ in result["points"])
    latencies = [0.3 + w / 1000.0 for w in oracle.widths]
    assert result["refused"] == sum(latency > 0.40 for latency in latencies) > 0
    assert result["asks"] >= 8 + result["refused"]
    assert 1 <= result["longest_refusal_run"] <= result["asks"] - 8


def test_the_budget_table_counts_the_searches_the_searcher_would_stop(samplers):
    from neonas.search.searcher import MAX_REFUSED_IN_A_ROW

    run = {"asks": 40, "refused": 30, "longest_refusal_run": 3, "points": [[0.3, 60.0]]}
    stopped = {**run, "longest_refusal_run": MAX_REFUSED_IN_A_ROW}
    text = samplers.budget_text({"gp": [run, stopped], "tpe": [run]}, 1, 0.37, "synflow")
    assert "| gp | 2 | 40 (40-40) | 30 (30-30) |" in text
    assert text.splitlines()[-2].split("|")[6].strip() == "1"  # gp: one would stop
    assert text.splitlines()[-1].split("|")[6].strip() == "0"


def test_budget_must_be_positive(samplers, tmp_path, capsys):
    code = samplers.main(["budget", "--cache", str(tmp_path), "--budget-ms", "0"])
    assert code == 2 and "--budget-ms" in capsys.readouterr().err


def test_ask_cost_times_each_sampler(samplers):
    costs = samplers.ask_cost("tiny", ["tpe", "random"], trials=4)
    assert set(costs) == {"tpe", "random"}
    assert all(0.0 < c["median_s"] <= c["max_s"] for c in costs.values())


def test_bad_sampler_exits_2(samplers, tmp_path, capsys):
    code = samplers.main(["run", "--cache", str(tmp_path), "--samplers", "tpe,annealing"])
    assert code == 2
    assert "choose from" in capsys.readouterr().err


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))

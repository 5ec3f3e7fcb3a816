"""benchmarks/main_job_sampler.py: the main job per sampler, compared on one reference point."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import main_job_sampler  # noqa: E402


def run(sampler: str, front: list[tuple[float, float]]) -> dict:
    points = [{"latency_ms": lat, "accuracy": value} for lat, value in front]
    return {
        "sampler": sampler,
        "seed": 0,
        "seconds": 1.0,
        "load": 0.5,
        "pareto": {"completed": 32, "front": points},
    }


def test_a_front_that_dominates_another_has_the_larger_hypervolume_on_the_shared_reference():
    better = run("gp", [(1.0, 8.0), (2.0, 9.0), (3.0, 9.1)])
    worse = run("tpe", [(1.5, 7.5), (2.5, 8.5)])
    rows = {row["sampler"]: row for row in main_job_sampler.summarise([worse, better])}
    assert rows["gp"]["hypervolume"] > rows["tpe"]["hypervolume"] > 0
    assert rows["gp"]["best_synflow"] == 9.1 and rows["tpe"]["front"] == 2
    # the reference is shared: the worse run alone would span a different area
    alone = main_job_sampler.summarise([worse])[0]["hypervolume"]
    assert alone != rows["tpe"]["hypervolume"]


def test_an_unknown_sampler_is_a_one_line_error():
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "main_job_sampler.py"),
            "--samplers",
            "tpe,cmaes",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1


def test_a_sampler_may_carry_its_own_trial_count():
    assert main_job_sampler.parse_samplers("tpe, gp,tpe:64") == [
        ("tpe", 32),
        ("gp", 32),
        ("tpe", 64),
    ]


def test_main_runs_each_sampler_and_seed_in_alternating_order(monkeypatch, capsys, tmp_path):
    calls = []

    def fake(sampler, trials, seed, results):
        calls.append((sampler, trials, seed))
        front = [(1.0, 7.0 + seed), (2.0, 8.0 + trials / 100)]
        return {**run(f"{sampler}:{trials}", front), "seed": seed}

    monkeypatch.setattr(main_job_sampler, "run_main_job", fake)
    argv = [
        "main_job_sampler.py",
        "--seeds",
        "2",
        "--samplers",
        "tpe,gp:16",
        "--out",
        str(tmp_path),
    ]
    monkeypatch.setattr(sys, "argv", argv)
    main_job_sampler.main()
    assert calls == [("tpe", 32, 0), ("gp", 16, 0), ("gp", 16, 1), ("tpe", 32, 1)]
    printed = capsys.readouterr().out
    assert printed.count("| tpe:32 |") == 2 and "gp:16: median" in printed

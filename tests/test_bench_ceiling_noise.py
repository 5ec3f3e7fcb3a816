"""benchmarks/ceiling_noise.py: the image-sampling variance and the ceiling simulation."""

from __future__ import annotations

import pytest


@pytest.fixture
def noise(benchmark_module):
    return benchmark_module("ceiling_noise")


def test_difference_variance_is_the_per_image_variance_over_n(noise):
    # Differences +1, 0, 0, -1: variance 0.5, over 4 images, in points squared.
    assert noise.difference_variance([1, 1, 0, 0], [0, 1, 0, 1]) == pytest.approx(0.5 / 4 * 1e4)
    assert noise.difference_variance([1, 0, 1], [1, 0, 1]) == 0.0  # the same errors: no noise


def test_the_simulated_ceiling_falls_with_noise_and_the_bisection_finds_a_target(noise):
    means = [70.0 + 0.5 * i for i in range(30)]
    quiet, loud = noise.simulated_ceiling(means, 0.1, 200), noise.simulated_ceiling(means, 4.0, 200)
    assert 0.9 < quiet <= 1.0 and loud < quiet
    variance = noise.variance_for(means, 0.8)
    assert noise.simulated_ceiling(means, variance / 2, 400) == pytest.approx(0.8, abs=0.03)


def test_project_reads_the_committed_table_and_training_needs_a_cache(noise, capsys):
    assert noise.main(["--project", "--dataset", "shapes-large", "--target", "0.9"]) == 0
    assert "a ceiling of +0.90 needs" in capsys.readouterr().out
    assert noise.main([]) == 2
    assert "--cache is required" in capsys.readouterr().err


def test_compare_puts_two_recipes_side_by_side_on_their_shared_networks(noise, tmp_path, capsys):
    import dataclasses
    import json

    from neonas.bench import SeedResult, load_table
    from neonas.bench.table import row_to_dict

    rows = load_table("shapes-large")[:8]
    quiet = []  # the same networks, both seeds 0.01 points apart: a ceiling of 1
    for row in rows:
        first = row.truth[0]
        second = SeedResult(**{**dataclasses.asdict(row.truth[1]), "top1": first.top1 + 0.01})
        quiet.append(dataclasses.replace(row, truth=(first, second)))
    for name, table in (("loud", rows), ("quiet", quiet[:6])):
        lines = [json.dumps(row_to_dict(row)) for row in table]
        (tmp_path / f"tiny-{name}.jsonl").write_text("\n".join(lines) + "\n")
    command = ["--compare", "loud,quiet", "--tables", str(tmp_path)]
    assert noise.main(command) == 0
    out = capsys.readouterr().out
    assert "6 networks in every table" in out
    assert "quiet: ceiling +1.00" in out and "noise / spread 0.0000" in out
    other = dataclasses.replace(rows[0], config={**rows[0].config, "stages": []})
    (tmp_path / "tiny-other.jsonl").write_text(json.dumps(row_to_dict(other)) + "\n")
    assert noise.main(["--compare", "loud,other", "--tables", str(tmp_path)]) == 2
    assert "differs between the tables" in capsys.readouterr().err

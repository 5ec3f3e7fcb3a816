"""How much of a search space repeats networks it already holds (NeoCell groups in another order).

    python benchmarks/space_duplicates.py [SPACE ...]     (default: every shipped space)

For each space: the number of points its params describe, the number of distinct networks
among them (`SearchSpace.count_networks`, exact: per stage, every NeoCell choice at every width
grouped by channel signature, see neonas/canonical.py), and the share of points that repeat a
network. Since canonical forms, every way of getting a point returns one ArchConfig per network.
"""

from __future__ import annotations

import sys

from neonas.space import available_spaces, load_space


def main() -> None:
    names = sys.argv[1:] or available_spaces()
    for name in names:
        counted = load_space(name).count_networks()
        points, networks = counted["points"], counted["networks"]
        print(
            f"{name}: {points:.4g} points, {networks:.4g} distinct networks, "
            f"{1 - networks / points:.1%} of points repeat a network "
            f"({points / networks:.1f} points per network)"
        )
        for index, stage in enumerate(counted["stages"]):
            repeated = 1 - stage["distinct"] / stage["cell_choices"]
            print(
                f"  stage {index}: {stage['cell_choices']} NeoCell choices (all widths), "
                f"{stage['distinct']} distinct, {repeated:.1%} repeats"
            )


if __name__ == "__main__":
    main()

import pytest

from neonas.errors import UserError
from neonas.ops.tiling import tile_rows


@pytest.mark.parametrize(
    ("block", "target", "rows"),
    [(7, 16, 14), (4, 16, 16), (5, 16, 15), (3, 16, 15), (16, 16, 16), (32, 16, 32), (7, 32, 28)],
)
def test_tile_packs_whole_patches_up_to_the_target(block: int, target: int, rows: int) -> None:
    assert tile_rows(block, target) == rows


def test_tile_rule_refuses_a_zero_block() -> None:
    with pytest.raises(UserError):
        tile_rows(0)

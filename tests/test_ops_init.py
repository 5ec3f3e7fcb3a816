"""Specification of NeoInit (paper Algorithm 1) and the random-normal baseline init."""

import math

import pytest
import torch

from neonas.ops import CellGroup, NeoCell, neoinit_


def algorithm_1_without_noise(h: int, w: int) -> torch.Tensor:
    """Algorithm 1 of the paper, line by line, without the final noise term."""
    W0 = torch.zeros(h, w, dtype=torch.float64)
    if h < w:
        step = round(w / h)
        for i in range(h):
            start = i * step
            end = min((i + 1) * step, w)
            for j in range(start, end):
                W0[i, j] = 1 / (end - start)
    elif h > w:
        step = round(h / w)
        for i in range(w):
            start = i * step
            end = min((i + 1) * step, h)
            for j in range(start, end):
                W0[j, i] = 1 / (end - start)
    else:
        W0 = torch.eye(h, dtype=torch.float64)
    return W0


@pytest.mark.parametrize(
    "shape", [(4, 4), (7, 7), (1, 2), (2, 1), (2, 4), (3, 7), (7, 2), (2, 3), (3, 2), (5, 12)]
)
def test_neoinit_is_algorithm_1_plus_noise_of_std_one_over_sqrt_hw(shape):
    h, w = shape
    weight = torch.empty(4000, h, w, dtype=torch.float64)
    neoinit_(weight, generator=torch.Generator().manual_seed(0))
    base = algorithm_1_without_noise(h, w)
    noise = weight - base
    # The noise is zero-mean with std 1/sqrt(h w): the mean over 4000 matrices recovers the base.
    torch.testing.assert_close(weight.mean(0), base, rtol=0, atol=6 / math.sqrt(4000 * h * w))
    assert noise.std().item() == pytest.approx(1 / math.sqrt(h * w), rel=0.05)


def test_neoinit_draws_fresh_noise_for_every_matrix_and_works_in_place():
    weight = torch.empty(3, 4, 4)
    out = neoinit_(weight)
    assert out is weight
    assert not torch.equal(weight[0], weight[1])


def test_neocell_uses_neoinit_by_default():
    torch.manual_seed(0)
    cell = NeoCell(2000, CellGroup(2, out=1))
    left_mean = cell.left[0].mean(0)
    right_mean = cell.right[0].mean(0)
    torch.testing.assert_close(left_mean, torch.tensor([[0.5, 0.5]]), rtol=0, atol=0.05)  # pooling
    torch.testing.assert_close(right_mean, torch.tensor([[0.5], [0.5]]), rtol=0, atol=0.05)


def test_neoinit_cell_starts_close_to_identity_and_normal_init_does_not():
    torch.manual_seed(0)
    x = torch.randn(4, 64, 14, 14)
    neo = NeoCell(64, 7)
    normal = NeoCell(64, 7, init="normal")
    assert torch.nn.functional.cosine_similarity(neo(x).flatten(), x.flatten(), dim=0) > 0.7
    assert abs(torch.nn.functional.cosine_similarity(normal(x).flatten(), x.flatten(), dim=0)) < 0.2


def test_normal_init_draws_std_one_over_sqrt_of_the_contracted_size():
    torch.manual_seed(0)
    cell = NeoCell(3000, CellGroup((4, 9), out=(2, 3)), init="normal")  # L [2, 4], R [9, 3]
    assert cell.left[0].std().item() == pytest.approx(1 / math.sqrt(4), rel=0.05)  # 1/sqrt(h)
    assert cell.right[0].std().item() == pytest.approx(1 / math.sqrt(9), rel=0.05)  # 1/sqrt(w)
    assert abs(cell.left[0].mean().item()) < 0.01

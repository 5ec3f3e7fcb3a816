"""Zero-cost accuracy proxies (evaluators/proxies.py): hand-computed cases and real networks."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn

from evaluators.proxies import (
    NASWOT_SINGULAR,
    PROXIES,
    meco_score,
    naswot_kernel,
    naswot_score,
    noise_batches,
    synflow_score,
    zero_cost_score,
    zico_score,
)
from neonas.models import build_model
from neonas.signals import ZERO_COST
from neonas.space import load_space


@pytest.fixture(scope="module")
def tiny_model() -> nn.Module:
    return build_model(load_space("tiny").sample(random.Random(0)))


def _linear(weight: list[list[float]], bias: list[float] | None = None) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight), bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        if bias is not None:
            layer.bias.copy_(torch.tensor(bias))
    return layer


# --- NASWOT --------------------------------------------------------------------------------------


def test_naswot_kernel_counts_agreements_of_both_codes() -> None:
    # Two ReLU units with pre-activations x1 and x2 - x1: codes per image by hand.
    net = nn.Sequential(_linear([[1.0, 0.0], [-1.0, 1.0]]), nn.ReLU())
    images = torch.tensor([[1.0, 3.0], [1.0, 0.0], [-1.0, -2.0]])
    # codes: image 0 -> (1, 1), image 1 -> (1, 0), image 2 -> (0, 0)
    # K = c c^T + (1 - c)(1 - c)^T: agreements (both on + both off) out of 2 units.
    expected = torch.tensor(
        [[2.0, 1.0, 0.0], [1.0, 2.0, 1.0], [0.0, 1.0, 2.0]], dtype=torch.float64
    )
    assert torch.equal(naswot_kernel(net, images), expected)
    # det K = 2 * (4 - 1) - 1 * (2 - 0) + 0 = 4
    assert naswot_score(net, images) == pytest.approx(math.log(4.0))


def test_naswot_dropping_the_off_term_would_change_the_score() -> None:
    # With c c^T alone, image 2 (all units off) would give a zero row: the (1-c) term matters.
    net = nn.Sequential(_linear([[1.0, 0.0], [-1.0, 1.0]]), nn.ReLU())
    images = torch.tensor([[1.0, 3.0], [1.0, 0.0], [-1.0, -2.0]])
    codes = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    assert torch.linalg.det(codes @ codes.T) == 0
    assert naswot_score(net, images) > 0


def test_a_singular_naswot_kernel_scores_lowest_instead_of_failing() -> None:
    # Two identical images: identical codes, K has two equal rows (det 0).
    net = nn.Sequential(_linear([[1.0, 0.0], [-1.0, 1.0]]), nn.ReLU())
    images = torch.tensor([[1.0, 3.0], [1.0, 3.0], [-1.0, -2.0]])
    score = naswot_score(net, images)
    assert score == NASWOT_SINGULAR
    assert math.isfinite(score)
    distinct = torch.tensor([[1.0, 3.0], [1.0, 0.0], [-1.0, -2.0]])
    assert naswot_score(net, distinct) > score  # any non-singular kernel scores >= 0


def test_naswot_is_finite_and_deterministic(tiny_model: nn.Module) -> None:
    images = noise_batches((3, 32, 32), 8, 10)[0][0]
    first = naswot_score(tiny_model, images)
    assert math.isfinite(first) and first > 0
    assert naswot_score(tiny_model, images) == first


def test_naswot_leaves_the_model_as_it_found_it(tiny_model: nn.Module) -> None:
    tiny_model.train()
    state = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    naswot_score(tiny_model, torch.randn(4, 3, 32, 32))
    assert tiny_model.training
    after = tiny_model.state_dict()
    assert len(after) == len(state)
    assert all(torch.equal(after[key], value) for key, value in state.items())


# --- SynFlow -------------------------------------------------------------------------------------


def test_synflow_of_a_linear_chain_is_its_depth_times_the_path_sum() -> None:
    # R = 1^T |W2| |W1| 1 = 31 here (ReLU passes everything: all inputs and weights positive);
    # each layer's sum of theta * dR/dtheta equals R (synaptic flow is conserved): score log10(2R).
    # The BatchNorm in between must be removed (it would rescale the flow), signs dropped.
    w1 = [[1.0, -2.0], [0.5, 3.0]]
    w2 = [[-2.0, 3.0]]
    net = nn.Sequential(_linear(w1), nn.BatchNorm1d(2), nn.ReLU(), _linear(w2))
    with torch.no_grad():
        net[1].weight.fill_(7.0)
        net[1].running_var.fill_(9.0)
    path_sum = float(torch.tensor(w2).abs() @ torch.tensor(w1).abs() @ torch.ones(2))
    assert path_sum == pytest.approx(2 * 3 + 3 * 3.5)
    assert synflow_score(net, (2,)) == pytest.approx(math.log10(2 * path_sum))


def test_synflow_restores_weights_dtype_and_mode(tiny_model: nn.Module) -> None:
    tiny_model.eval()
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    score = synflow_score(tiny_model, (3, 32, 32))
    assert math.isfinite(score)
    assert not tiny_model.training
    after = tiny_model.state_dict()
    assert len(after) == len(before)
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())


# --- ZiCo and MeCo -------------------------------------------------------------------------------


def test_zico_of_one_layer_by_hand() -> None:
    # One linear layer, loss = CE; two batches of one image each give gradients g1, g2 per
    # weight; ZiCo = log sum_w mean(|g|) / std(g) over the weights whose gradient varies.
    layer = _linear([[0.5, -1.0], [2.0, 0.0]])
    batches = [
        (torch.tensor([[1.0, 2.0]]), torch.tensor([0])),
        (torch.tensor([[-1.0, 0.5]]), torch.tensor([1])),
    ]
    grads = []
    for images, labels in batches:
        layer.zero_grad()
        nn.functional.cross_entropy(layer(images), labels).backward()
        grads.append(layer.weight.grad.clone().double().reshape(-1))
    g = torch.stack(grads)
    expected = math.log(float((g.abs().mean(0) / g.std(0, unbiased=False)).sum()))
    assert zico_score(layer, batches) == pytest.approx(expected)


def test_zico_puts_back_running_statistics_and_leaves_weights_and_mode(
    tiny_model: nn.Module,
) -> None:
    tiny_model.eval()
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    assert math.isfinite(zico_score(tiny_model, noise_batches((3, 32, 32), 4, 10, count=2)))
    assert not tiny_model.training
    assert all(p.grad is None for p in tiny_model.parameters())
    after = tiny_model.state_dict()
    assert len(after) == len(before)
    assert any("running_mean" in k for k in after)  # the forward in train mode moved them
    assert all(torch.equal(after[k], v) for k, v in before.items())


def test_zico_needs_two_batches(tiny_model: nn.Module) -> None:
    with pytest.raises(ValueError, match="at least two batches"):
        zico_score(tiny_model, noise_batches((3, 32, 32), 4, 10, count=1))


def test_meco_is_the_smallest_eigenvalue_of_channel_correlation() -> None:
    # One conv layer with 2 output channels; its map's channel correlation [[1, r], [r, 1]] has
    # smallest eigenvalue 1 - |r|.
    conv = nn.Conv2d(1, 2, kernel_size=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0]]], [[[-2.0]]]]))
    image = torch.tensor([[[[1.0, 2.0], [3.0, 5.0]]]])
    # Both channels are multiples of the input: correlation -1, eigenvalues 0 and 2.
    assert meco_score(conv, image) == pytest.approx(0.0, abs=1e-9)
    net = nn.Sequential(conv, nn.ReLU(), nn.Conv2d(2, 2, kernel_size=1))
    features = net(image)[0].detach().reshape(2, -1).double()
    r = float(torch.corrcoef(features)[0, 1])
    assert meco_score(net, image) == pytest.approx(0.0 + (1 - abs(r)))


# --- every proxy on a real network ----------------------------------------------------------------


def test_every_zero_cost_signal_scores_a_tiny_network_on_a_data_batch(
    tiny_model: nn.Module,
) -> None:
    batches = noise_batches((3, 32, 32), 8, 10, count=2)
    scores = {name: zero_cost_score(tiny_model, name, batches) for name in PROXIES}
    assert set(scores) == set(ZERO_COST)
    assert len(scores) == 6
    assert all(math.isfinite(score) for score in scores.values()), scores


def test_unknown_proxy_is_refused(tiny_model: nn.Module) -> None:
    with pytest.raises(ValueError, match="use one of naswot, synflow, zico, meco, params, flops"):
        zero_cost_score(tiny_model, "snip", noise_batches((3, 32, 32), 4, 10))

"""The supernet: it holds every network of a space, and a subnet is exactly its stand-alone network."""

from __future__ import annotations

import random

import pytest
import torch
from test_train_fixtures import one_torch_thread  # noqa: F401 (autouse: one torch thread)

from neonas.arch import ArchConfig
from neonas.errors import UserError
from neonas.models import build_model
from neonas.space import SearchSpace, load_space
from neonas.supernet import SpaceCoverage, SuperNet, extract_subnet, largest_subnet, sandwich
from neonas.supernet.scoring import reestimate_batchnorm


@pytest.fixture(scope="module")
def space():
    return load_space("tiny")


@pytest.fixture(scope="module")
def supernet(space):
    """A supernet whose every weight and BatchNorm statistic differs from its initial value."""
    torch.manual_seed(0)
    net = SuperNet(space, num_classes=5)
    with torch.no_grad():
        for name, param in net.named_parameters():
            if name.endswith("gamma"):  # layer scale 1e-6 would hide the blocks' outputs
                param.uniform_(0.5, 1.5)
            elif param.ndim == 1:
                param.normal_(0.0, 0.3).add_(1.0 if "norm.weight" in name else 0.0)
            else:
                param.add_(0.1 * torch.randn_like(param))
        for module in net.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.normal_(0.0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return net.eval()


def test_blocks_hold_a_matrix_of_every_candidate_size_on_every_channel(supernet) -> None:
    cell = supernet.stages[2].blocks[1].neocell
    assert {key: tuple(p.shape) for key, p in cell.left.items()} == {
        "k2": (96, 2, 2),
        "k3": (96, 3, 3),
        "k4": (96, 4, 4),
    }
    transition = supernet.stages[1].downsample.neocell
    # Stage 1 sees a 16x16 map: one pair per ratio that keeps it integral (3:2 does not).
    assert sorted(transition.left) == ["r1_1_1_1", "r2_2_1_1", "r4_4_3_3"]
    assert tuple(transition.left["r4_4_3_3"].shape) == (32, 3, 4)
    assert tuple(transition.right["r4_4_3_3"].shape) == (32, 4, 3)
    assert (
        len(supernet.stages[0].blocks) == 2 and supernet.stages[0].blocks[0].fc1.out_channels == 128
    )


def test_extracted_subnets_compute_exactly_what_the_supernet_computes(space, supernet) -> None:
    configs = sandwich(space, random.Random(1), 10)
    assert len(configs) == 12
    assert any(cell.shift for config in configs for stage in config.stages for cell in stage.cells)
    assert len({config.stages[1].sampling for config in configs}) > 1  # several plans
    images = torch.randn(6, 3, 32, 32)
    for config in configs:
        with torch.no_grad():
            expected = supernet(images, config)
            actual = extract_subnet(supernet, config).eval()(images)
        assert actual.shape == (6, 5)
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6)
        assert expected.std() > 0.05  # the outputs depend on the input (not a constant)


def test_a_subnet_trains_only_its_own_slices(space) -> None:
    torch.manual_seed(0)
    net = SuperNet(space, num_classes=3)
    smallest = space.smallest()  # width 16 / 32 / 48, depth 1, 2x2 matrices
    net(torch.randn(2, 3, 32, 32), smallest).sum().backward()
    block = net.stages[0].blocks[0]
    assert block.neocell.left["k2"].grad[:16].abs().sum() > 0
    assert block.neocell.left["k2"].grad[16:].abs().sum() == 0
    assert block.neocell.left["k4"].grad is None  # no weights of sizes it does not use
    assert net.stages[0].blocks[1].fc1.weight.grad is None  # depth 1: the second block idles
    assert block.fc1.weight.grad[32:].abs().sum() == 0  # mlp 2 x 16 = 32 hidden units
    assert net.head.fc.weight.grad[:, 48:].abs().sum() == 0


def test_largest_subnet_is_a_network_of_the_space_with_its_largest_choices(space) -> None:
    largest = largest_subnet(space)
    assert space.contains(largest)
    assert [stage.width for stage in largest.stages] == [32, 64, 96]
    assert [stage.depth for stage in largest.stages] == [2, 2, 2]
    assert all(cell.size == 4 for stage in largest.stages for cell in stage.cells)


def test_configs_outside_the_supernet_are_refused_naming_the_field(space) -> None:
    coverage = SpaceCoverage.of(space)
    data = space.smallest().to_dict()
    data["stages"][2]["width"] = 112
    with pytest.raises(
        UserError, match=r"stages.2.width: 112 is more than the supernet holds \(96\)"
    ):
        coverage.check(ArchConfig.from_dict(data))
    data = space.smallest().to_dict()
    data["stages"][0]["cells"] = [{"size": 5}]
    data["input_size"] = 64
    with pytest.raises(UserError, match="stages.0.cells.0.size: 5 is not one of"):
        coverage.check(ArchConfig.from_dict(data))


def test_batchnorm_reestimation_gives_the_average_batch_statistics(space) -> None:
    model = build_model(space.smallest()).eval()
    batches = [torch.randn(8, 3, 32, 32) + shift for shift in (0.0, 1.0)]
    reestimate_batchnorm(model, batches)
    assert not model.training
    with torch.no_grad():
        stem = [model.stem.conv(torch.nn.functional.pixel_unshuffle(b, 2)) for b in batches]
    expected = torch.stack([s.mean((0, 2, 3)) for s in stem]).mean(0)
    torch.testing.assert_close(model.stem.norm.running_mean, expected, rtol=1e-4, atol=1e-5)
    assert model.stem.norm.momentum == 0.1  # restored


def test_the_authors_transition_and_bias_free_layers_extract_exactly_too(space) -> None:
    # Spaces do not list these fields yet; a spec built directly carries them to every network.
    fixed = {
        **space.spec.fixed,
        "transition": "pointwise_first",
        "mlp_bias": False,
        "stem_bias": False,
    }
    spec = space.spec.model_copy(update={"fixed": fixed})
    variant = SearchSpace(spec, space.text, "tiny, authors' layers")
    torch.manual_seed(0)
    net = SuperNet(variant, num_classes=4).eval()
    assert net.stem.conv.bias is None and net.stages[1].blocks[0].fc1.bias is None
    configs = sandwich(variant, random.Random(2), 3)
    assert all(config.transition == "pointwise_first" for config in configs)
    images = torch.randn(3, 3, 32, 32)
    for config in configs:
        with torch.no_grad():
            torch.testing.assert_close(
                extract_subnet(net, config).eval()(images),
                net(images, config),
                rtol=1e-5,
                atol=1e-6,
            )

"""Unit layout: NeoNeXt/ConvNeXt run as a chain of units keyed by structure and input shape."""

import timm
import torch

from evaluators.segments import model_units, stage_of, structure_key, unit_key, walk_units
from neonas.models import build_model
from neonas.models.family import neonext_config


def tiny_neonext(depths=(2, 2), widths=(16, 32), drop_path_rate=0.1):
    config = neonext_config(
        "t", depths, widths, drop_path_rate=drop_path_rate, input_size=64, num_classes=10
    )
    return build_model(config)


def test_neonext_units_are_stem_transitions_blocks_head_in_order() -> None:
    paths = [path for path, _ in model_units(tiny_neonext())]
    assert paths == [
        "stem",
        "stages.0.blocks.0",
        "stages.0.blocks.1",
        "stages.1.downsample",
        "stages.1.blocks.0",
        "stages.1.blocks.1",
        "head",
    ]


def test_models_of_other_shapes_have_no_units() -> None:
    assert model_units(timm.create_model("resnet18")) is None


def test_blocks_differing_only_in_drop_path_rate_share_a_key() -> None:
    blocks = tiny_neonext(drop_path_rate=0.3).stages[0].blocks
    assert structure_key(blocks[0]) == structure_key(blocks[1])


def test_keys_differ_for_other_widths_and_input_shapes() -> None:
    a, b = tiny_neonext(widths=(16, 32)), tiny_neonext(widths=(32, 32))
    assert structure_key(a.stages[0].blocks[0]) != structure_key(b.stages[0].blocks[0])
    block = a.stages[0].blocks[0]
    assert unit_key(block, (1, 16, 16, 16)) != unit_key(block, (2, 16, 16, 16))


def test_walk_evaluates_each_distinct_unit_once_and_propagates_shapes() -> None:
    seen = []

    def evaluate(unit, shape):
        seen.append(shape)
        with torch.no_grad():
            return shape, tuple(unit(torch.zeros(shape)).shape)

    units = walk_units(tiny_neonext().eval(), (1, 3, 64, 64), evaluate)
    assert len(units) == 7 and len(seen) == 5
    assert units[4].input_shape == (1, 32, 8, 8)  # after the 2:1 transition
    assert units[-1].path == "head"


def test_stage_of_groups_modules_by_stage() -> None:
    assert stage_of("stages.2.blocks.0.fc1") == "stages.2"
    assert stage_of("stem.conv") == "stem"
    assert stage_of("layer3.1.conv2") == "layer3"
    assert stage_of("") == "(top)"

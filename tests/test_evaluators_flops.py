"""FLOPs and parameters: fvcore's convention, NeoCell counted densely and patch-wise, unit reuse."""

import timm
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn

import evaluators.flops as flops_module
from evaluators.flops import batched_shape, count_flops
from neonas.models import build_model
from neonas.models.family import neonext_config
from neonas.ops import NeoCell, flop_handles


def tiny_neonext(depths=(2, 2), widths=(16, 32), input_size=64) -> nn.Module:
    torch.manual_seed(0)
    config = neonext_config(
        "t", depths, widths, drop_path_rate=0.1, input_size=input_size, num_classes=10
    )
    return build_model(config)


def fvcore_whole_model(model: nn.Module, shape: tuple[int, ...]) -> int:
    model.eval()
    analysis = FlopCountAnalysis(model, torch.zeros(shape)).set_op_handle(**flop_handles())
    return analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).total()


def test_convnext_tiny_matches_fvcore_reference_count() -> None:
    count = count_flops(timm.create_model("convnext_tiny"), (1, 3, 224, 224))
    assert count.flops == 4_470_437_376
    assert count.params == 28_589_128


def test_unit_by_unit_count_equals_whole_model_trace() -> None:
    model = tiny_neonext()
    count = count_flops(model, (2, 3, 64, 64))
    assert count.flops == fvcore_whole_model(model, (2, 3, 64, 64))
    assert count.by_module[""] == count.flops
    assert count.by_module["stages.1"] == sum(
        count.by_module[name]
        for name in ("stages.1.downsample", "stages.1.blocks.0", "stages.1.blocks.1")
    )


def test_by_module_has_fvcore_names_down_to_layers() -> None:
    model = tiny_neonext()
    count = count_flops(model, (1, 3, 64, 64))
    fc1 = model.stages[0].blocks[1].fc1
    assert count.by_module["stages.0.blocks.1.fc1"] == fc1.in_channels * fc1.out_channels * 16 * 16


def test_neocell_counts_dense_as_executed_and_patchwise_by_formula() -> None:
    cell = NeoCell(16, 4)
    count = count_flops(cell, (3, 16, 8, 8))
    assert count.flops == 3 * cell.macs(8, 8, form="dense")
    assert count.flops_patchwise == 3 * cell.macs(8, 8, form="patch")


def test_tiled_count_replaces_each_neocells_share_by_its_tiled_macs() -> None:
    model = tiny_neonext()
    count = count_flops(model, (2, 3, 64, 64))
    cells = [m for m in model.modules() if isinstance(m, NeoCell)]
    sizes = {16: 0, 8: 0}  # stage 0 runs at 16 x 16, stage 1 (and its down-sampling) at 8 x 8
    dense = tiled = 0
    for name, cell in model.named_modules():
        if isinstance(cell, NeoCell):
            size = 16 if name.startswith(("stages.0", "stages.1.downsample")) else 8
            sizes[size] += 1
            dense += 2 * cell.macs(size, size, form="dense")
            tiled += 2 * cell.macs(size, size, form="tiled")
    assert sizes == {16: 3, 8: 2} and len(cells) == 5
    assert count.flops_tiled - count.flops == tiled - dense


def test_counts_scale_with_batch() -> None:
    model = tiny_neonext()
    one, four = count_flops(model, (1, 3, 64, 64)), count_flops(model, (4, 3, 64, 64))
    assert four.flops == 4 * one.flops
    assert four.flops_patchwise == 4 * one.flops_patchwise
    assert four.flops_tiled == 4 * one.flops_tiled


def test_identical_blocks_are_traced_once(monkeypatch) -> None:
    flops_module.clear_cache()
    traced = []
    real_trace = flops_module._trace
    monkeypatch.setattr(
        flops_module, "_trace", lambda m, s: traced.append(type(m).__name__) or real_trace(m, s)
    )
    model = tiny_neonext(depths=(3, 2))
    count_flops(model, (1, 3, 64, 64))
    # stem, 1 block of stage 0 (3 identical), transition, 1 block of stage 1 (2 identical), head
    assert sorted(traced) == sorted(
        ["SpaceToDepthStem", "NeoNeXtBlock", "Transition", "NeoNeXtBlock", "NormMlpClassifierHead"]
    )
    traced.clear()
    count_flops(tiny_neonext(depths=(1, 1)), (1, 3, 64, 64))  # same units, other depths
    assert traced == []


def test_models_without_units_are_traced_whole() -> None:
    model = timm.create_model("resnet18", num_classes=10)
    count = count_flops(model, (1, 3, 64, 64))
    assert count.flops == fvcore_whole_model(model, (1, 3, 64, 64))
    assert count.params == sum(p.numel() for p in model.parameters())


def test_counting_leaves_the_training_flag_alone() -> None:
    model = tiny_neonext().train()
    count_flops(model, (1, 3, 64, 64))
    assert model.training


def test_batched_shape_accepts_chw_with_batch_or_nchw() -> None:
    assert batched_shape((3, 32, 32), 4) == (4, 3, 32, 32)
    assert batched_shape((2, 3, 32, 32)) == (2, 3, 32, 32)

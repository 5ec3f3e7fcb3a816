"""NeoNeXt models: build from any config, timm conventions, BatchNorm folding, ONNX, Table 1."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from timm.optim import param_groups_layer_decay
from torch import nn

import neonas.models.neonext as neonext_module
from neonas.arch import ArchConfig
from neonas.errors import UserError
from neonas.models import NeoNeXt, build_model, fold_for_inference, resolve_model, variant_config
from neonas.models.neonext import NeoNeXtBlock
from neonas.ops import CellGroup, NeoCell

ROOT = Path(__file__).parents[1]
SMALL = ROOT / "configs" / "fractional_example.yaml"


def small_model(**overrides: object) -> NeoNeXt:
    torch.manual_seed(0)
    return build_model(ArchConfig.from_yaml(SMALL), **overrides)


def randomize_norms(model: nn.Module) -> None:
    """Give every norm, bias and layer scale non-trivial values, as a trained model has."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                for tensor in (module.weight, module.bias, module.running_mean):
                    tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.5)
                module.running_var.copy_(
                    torch.rand(module.running_var.shape, generator=generator) + 0.5
                )
            if isinstance(module, nn.LayerNorm):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator))
            if hasattr(module, "gamma"):
                module.gamma.copy_(torch.rand(module.gamma.shape, generator=generator) + 0.5)
            if isinstance(module, nn.Conv2d | nn.Linear) and module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator))


def test_every_example_config_builds_and_gives_logits() -> None:
    config = ArchConfig.from_yaml(SMALL)
    model = build_model(config).eval()
    assert model(torch.randn(2, 3, 48, 48)).shape == (2, 10)
    assert model.config == config


def test_feature_maps_have_the_sizes_the_config_promises() -> None:
    model = small_model().eval()
    x = model.stem(torch.randn(1, 3, 48, 48))
    for stage, size, spec in zip(
        model.stages, model.config.feature_sizes(), model.config.stages, strict=True
    ):
        x = stage(x)
        assert x.shape[1:] == (spec.width, *size)


def test_blocks_use_the_configured_neocell_groups() -> None:
    model = small_model()
    cell = model.stages[1].blocks[0].neocell
    assert isinstance(cell, NeoCell) and cell.channels == 64
    assert [(g.patch, g.share, g.shift) for g in cell.groups] == [
        ((3, 3), 0.75, True),
        ((5, 5), 0.25, False),
    ]


def test_timm_creates_registered_variants_with_num_classes() -> None:
    model = timm.create_model("neonext_tiny", num_classes=10)
    assert isinstance(model, NeoNeXt)
    assert model.num_classes == 10 and model.get_classifier().out_features == 10
    assert model.pretrained_cfg["input_size"] == (3, 224, 224)
    assert model.config.to_yaml() == variant_config("neonext_tiny", num_classes=10).to_yaml()


def test_timm_features_only_returns_each_stage() -> None:
    features = timm.create_model("neonext_tiny", features_only=True, out_indices=(1, 3))
    outputs = features(torch.randn(1, 3, 224, 224))
    assert [o.shape[1:] for o in outputs] == [(192, 28, 28), (768, 7, 7)]
    assert features.feature_info.reduction() == [8, 32]


@pytest.mark.parametrize("name", ["neonext_tiny", "neonext_tiny_ref"])
def test_features_only_and_forward_intermediates_agree_per_stage(name: str) -> None:
    """As timm tests its models: every feature level, its channels and its reduction."""
    torch.manual_seed(0)
    model = timm.create_model(name).eval()
    features = timm.create_model(name, features_only=True).eval()
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        levels = features(x)
        final, intermediates = model.forward_intermediates(x)
    channels, reductions = features.feature_info.channels(), features.feature_info.reduction()
    assert len(levels) == len(intermediates) == len(channels) == 4
    for level, inter, c, r in zip(levels, intermediates, channels, reductions, strict=True):
        assert level.shape == inter.shape == (1, c, math.ceil(96 / r), math.ceil(96 / r))
    assert torch.equal(final, intermediates[-1])


def test_forward_head_and_reset_classifier() -> None:
    model = small_model().eval()
    features = model.forward_features(torch.randn(2, 3, 48, 48))
    assert model.forward_head(features, pre_logits=True).shape == (2, 128)
    model.reset_classifier(3)
    assert model(torch.randn(2, 3, 48, 48)).shape == (2, 3)
    assert model.config.num_classes == 3


def test_no_weight_decay_covers_norms_biases_and_layer_scale_only() -> None:
    model = small_model()
    skipped = model.no_weight_decay()
    assert "stages.1.blocks.0.layer_scale.gamma" in skipped
    assert "stages.1.blocks.0.norm.weight" in skipped and "stages.1.blocks.0.fc1.bias" in skipped
    assert "stages.1.blocks.0.fc1.weight" not in skipped
    assert "stages.1.blocks.0.neocell.left.0" not in skipped


@pytest.mark.parametrize(
    "fields",
    [
        {"layer_scale_init": 0.5},
        {
            "transition": "pointwise_first",
            "mlp_bias": False,
            "stem_bias": False,
            "layer_scale_init": 0.5,
        },
    ],
    ids=["paper", "reference-layout"],
)
def test_folded_model_matches_eval_outputs(fields: dict) -> None:
    model = small_model(**fields)
    randomize_norms(model)
    model.eval()
    x = torch.randn(4, 3, 48, 48)
    with torch.no_grad():
        expected = model(x)
        folded = fold_for_inference(model)
        actual = folded(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert not any(hasattr(m, "gamma") for m in folded.modules())
    head_norm = folded.head.norm
    assert isinstance(head_norm, nn.LayerNorm) and not head_norm.elementwise_affine
    assert torch.allclose(actual, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())


def test_folding_moves_the_batchnorm_shift_of_block_neocells_into_fc1() -> None:
    # reference-layout blocks have no MLP bias: fc1 must gain one to carry the shift
    model = small_model(mlp_bias=False)
    randomize_norms(model)
    folded = fold_for_inference(model.eval())
    blocks = [m for m in folded.modules() if isinstance(m, NeoNeXtBlock)]
    assert len(blocks) > 1
    assert all(b.neocell.bias is None and b.fc1.bias is not None for b in blocks)
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), rtol=1e-5, atol=1e-5)


def test_folding_keeps_a_learned_neocell_bias_in_the_neocell() -> None:
    model = small_model()
    block = model.stages[0].blocks[0]
    torch.manual_seed(2)
    block.neocell = NeoCell(block.neocell.channels, block.neocell.groups, bias=True)
    with torch.no_grad():
        for bias in block.neocell.bias:
            bias.normal_()  # varies over the patch: cannot move past the NeoCell
    randomize_norms(model)
    folded = fold_for_inference(model.eval())
    assert folded.stages[0].blocks[0].neocell.bias is not None
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), rtol=1e-5, atol=1e-5)


def test_folding_test_model_has_biases_the_layer_scale_must_scale() -> None:
    model = small_model(layer_scale_init=0.5)
    randomize_norms(model)
    block = model.stages[0].blocks[0]
    assert block.fc2.bias.abs().min() > 0 and not torch.allclose(
        block.layer_scale.gamma, torch.ones(1)
    )


def test_the_old_name_fuse_for_inference_still_folds_and_warns() -> None:
    from neonas.models import fuse_for_inference

    model = small_model()
    randomize_norms(model)
    x = torch.randn(2, 3, 48, 48)
    with pytest.warns(DeprecationWarning, match="fold_for_inference"):
        old = fuse_for_inference(model.eval())
    with torch.no_grad():
        assert torch.equal(old(x), fold_for_inference(model)(x))


@pytest.mark.parametrize("flag", ["--fold", "--fuse"])
def test_export_onnx_folds_by_fold_and_by_its_old_name_fuse(
    flag: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    import neonas.models
    from neonas.cli import main

    folded = []
    real = neonas.models.fold_for_inference
    monkeypatch.setattr(neonas.models, "fold_for_inference", lambda m: folded.append(1) or real(m))
    out = tmp_path / "folded.onnx"
    argv = ["export-onnx", "--config", str(SMALL), "--out", str(out), "--res", "96", flag]
    assert main([*argv, "--no-check"]) == 0
    err = capsys.readouterr().err
    assert folded == [1] and out.is_file()
    assert ("--fuse is deprecated, use --fold" in err) == (flag == "--fuse")


def test_head_is_pool_layernorm_linear() -> None:
    head = small_model().head
    assert isinstance(head.norm, nn.LayerNorm) and head.norm.eps == 1e-6
    assert isinstance(head.fc, nn.Linear)


def test_block_takes_plain_arguments() -> None:
    block = NeoNeXtBlock(
        8, [CellGroup(4, shift=True)], mlp_ratio=2.0, layer_scale_init=None, mlp_bias=False
    )
    assert block.fc1.out_channels == 16 and block.fc1.bias is None
    assert isinstance(block.layer_scale, nn.Identity)
    assert block(torch.randn(2, 8, 8, 8)).shape == (2, 8, 8, 8)


def test_grad_checkpointing_runs_through_checkpoint_seq_with_same_results(monkeypatch) -> None:
    calls = []
    real = neonext_module.checkpoint_seq
    monkeypatch.setattr(
        neonext_module, "checkpoint_seq", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    model = small_model().train()
    x = torch.randn(2, 3, 48, 48)
    plain = model(x)
    plain.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.set_grad_checkpointing(True)
    checkpointed = model(x)
    checkpointed.sum().backward()
    assert len(calls) == len(model.stages) == 3
    assert torch.allclose(checkpointed, plain, atol=1e-6)
    for grad, param in zip(grads, model.parameters(), strict=True):
        assert torch.allclose(param.grad, grad, atol=1e-5)
    model.set_grad_checkpointing(False)
    model(x)
    assert len(calls) == 3


def test_group_matcher_gives_layer_decay_groups_in_depth_order() -> None:
    model = small_model()
    groups = param_groups_layer_decay(model, weight_decay=0.05, layer_decay=0.5)
    name_of = {id(param): name for name, param in model.named_parameters()}
    scale = {name_of[id(p)]: group["lr_scale"] for group in groups for p in group["params"]}
    assert len(scale) == len(name_of)
    # stem first, a stage's transition with its first block, blocks in order, the head last
    assert scale["stem.conv.weight"] < scale["stages.0.blocks.0.fc1.weight"]
    assert scale["stages.0.blocks.0.fc1.weight"] < scale["stages.1.downsample.conv.weight"]
    assert scale["stages.1.downsample.conv.weight"] <= scale["stages.1.blocks.0.fc1.weight"]
    assert scale["stages.1.blocks.0.fc1.weight"] < scale["stages.1.blocks.1.fc1.weight"]
    assert scale["stages.2.blocks.0.fc1.weight"] < scale["head.fc.weight"] == 1.0
    coarse = model.group_matcher(coarse=True)
    assert set(coarse) == {"stem", "blocks"}


def test_forward_intermediates_follow_timm_semantics() -> None:
    model = small_model().eval()
    x = torch.randn(2, 3, 48, 48)
    info = model.feature_info
    with torch.no_grad():
        final, intermediates = model.forward_intermediates(x)
        features = model.forward_features(x)
        assert torch.allclose(final, features)
        assert len(intermediates) == len(info) == 3
        for meta, out in zip(info, intermediates, strict=True):
            assert out.shape[:2] == (2, meta["num_chs"])
            assert out.shape[-1] <= math.ceil(48 / meta["reduction"]) + 1
        last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
        assert [o.shape[1] for o in last_two] == [64, 128]
        first = model.forward_intermediates(
            x, indices=[0], stop_early=True, intermediates_only=True
        )
        assert len(first) == 1 and torch.allclose(first[0], intermediates[0])
    with pytest.raises(ValueError):
        model.forward_intermediates(x, output_fmt="NHWC")
    kept = model.prune_intermediate_layers(indices=[1])
    assert kept == [1] and len(model.stages) == 2 and model.num_classes == 0


def test_default_cfgs_come_from_timm_registry_and_match_the_model() -> None:
    for name in timm.list_models("neonext_*"):
        cfg = timm.models.get_pretrained_cfg(name)
        assert cfg is not None and cfg.input_size == (3, 224, 224)
    assert len(timm.list_models("neonext_*")) == 6
    model = timm.create_model("neonext_tiny_ref").eval()
    assert model.pretrained_cfg["architecture"] == "neonext_tiny_ref"
    x = torch.randn(1, 3, 224, 224)
    state = model.state_dict()
    assert f"{model.pretrained_cfg['classifier']}.weight" in state
    assert f"{model.pretrained_cfg['first_conv']}.weight" in state
    with torch.no_grad():
        assert model.forward_features(x).shape[-2:] == model.pretrained_cfg["pool_size"]
        model.reset_classifier(0)
        assert model(x).shape == (1, model.num_features)
        model.reset_classifier(0, "")
        assert model(x).shape == (1, model.num_features, 7, 7)


@pytest.mark.parametrize("name", timm.list_models("neonext_*"))
def test_every_registered_variant_trains_at_batch_one(name: str) -> None:
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=5).train()
    loss = model(torch.randn(1, 3, 64, 64)).logsumexp(1).sum()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing[:3]}"  # timm's test_model_backward
    assert model.stem.conv.weight.grad.abs().sum() > 0


def test_onnx_export_runs_under_onnxruntime_with_same_outputs(tmp_path: Path) -> None:
    out = tmp_path / "small.onnx"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "cli.py"),
            "export-onnx",
            "--config",
            str(SMALL),
            "--out",
            str(out),
            "--batch",
            "2",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    error = float(result.stdout.strip().rsplit(" ", 1)[-1])
    assert out.is_file() and error < 1e-4


def test_resolve_model_refuses_unknown_names_and_ambiguous_requests() -> None:
    with pytest.raises(UserError, match="unknown model"):
        resolve_model("no_such_net")
    with pytest.raises(UserError, match="exactly one"):
        resolve_model()
    model, config = resolve_model("resnet10t", num_classes=5)
    assert config is None and model.num_classes == 5


def test_resolve_model_rebuilds_neonext_at_another_resolution() -> None:
    model, config = resolve_model("neonext_tiny", input_size=384)
    assert config.input_size == 384 and model.pretrained_cfg["input_size"] == (3, 384, 384)


def test_resolve_model_builds_names_through_timm(monkeypatch) -> None:
    built = []
    real = timm.create_model
    monkeypatch.setattr(
        timm, "create_model", lambda name, **kw: built.append(name) or real(name, **kw)
    )
    model, config = resolve_model("neonext_tiny_ref", num_classes=3, drop_path_rate=0.2)
    assert built == ["neonext_tiny_ref"]
    assert config.num_classes == 3 and config.drop_path_rate == 0.2
    assert config.transition == "pointwise_first" and not config.mlp_bias

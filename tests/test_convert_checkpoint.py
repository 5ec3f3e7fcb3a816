"""convert-checkpoint: the authors' state dicts (their key names and layouts) as neonas models.

The reference side of these tests is written here from the reference code's semantics
(ptvision/models/neonext: neonext.py, neonext_utils.py, csrc/neocell.cpp), independently of
neonas: its state-dict layout, its block-diagonal matrices and its forward pass.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import Tensor

from neonas.arch import ArchConfig
from neonas.cli import main
from neonas.errors import UserError
from neonas.models.neonext import NeoNeXt
from neonas.models.reference_checkpoint import infer_reference_config, load_reference_weights
from neonas.ops import NeoCell
from neonas.train.checkpoint import load_checkpoint
from neonas.train.model_spec import load_initial_weights, rebuild_model

# --- the reference network, from its code's semantics ------------------------------------------


def split_like_reference(channels: int, parts: int) -> list[int]:
    """get_kernel_spec and the shift split: channels // parts each, the last the rest."""
    sizes = [channels // parts] * parts
    sizes[-1] = channels - (parts - 1) * (channels // parts)
    return sizes


def reference_state_dict(
    depths: tuple[int, ...],
    widths: tuple[int, ...],
    kernels: tuple[tuple[int, ...], ...],
    *,
    layer_scale: bool,
    linear_bias: bool,
    num_classes: int = 10,
    seed: int = 0,
) -> dict[str, Tensor]:
    """Random tensors under the names and shapes the reference NeoNeXt's state_dict() has."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int, scale: float = 0.2) -> Tensor:
        return torch.randn(*shape, generator=g) * scale

    def batchnorm(prefix: str, c: int) -> dict[str, Tensor]:
        return {
            f"{prefix}.weight": 1 + rand(c),
            f"{prefix}.bias": rand(c),
            f"{prefix}.running_mean": rand(c),
            f"{prefix}.running_var": torch.rand(c, generator=g) + 0.5,
            f"{prefix}.num_batches_tracked": torch.tensor(7),
        }

    state = {"stem.conv.weight": rand(widths[0], 48, 1, 1), **batchnorm("stem.norm", widths[0])}
    for n, (depth, c, ks) in enumerate(zip(depths, widths, kernels, strict=True), start=1):
        for i in range(depth):
            p = f"stage_{n}.{i}.ops.content"
            for j, (k, ch) in enumerate(zip(ks, split_like_reference(c, len(ks)), strict=True)):
                state[f"{p}.neocell.weight_a.{j}"] = torch.eye(k) + rand(ch, k, k)
                state[f"{p}.neocell.weight_b.{j}"] = torch.eye(k) + rand(ch, k, k)
            state.update(batchnorm(f"{p}.norm", c))
            state[f"{p}.fc_1.weight"] = rand(4 * c, c, scale=0.02)
            if linear_bias:
                state[f"{p}.fc_1.bias"] = rand(4 * c)
            state[f"{p}.fc_2.weight"] = rand(c, 4 * c, scale=0.02)
            if linear_bias:
                state[f"{p}.fc_2.bias"] = rand(c)
            if layer_scale:
                state[f"{p}.layer_scale.gamma"] = 0.5 + rand(c)
        if n < len(depths):
            out = widths[n]
            state[f"downsample_{n}.conv.weight"] = rand(out, c, 1, 1)
            state[f"downsample_{n}.neocell.weight_a.0"] = 0.5 + rand(out, 1, 2)
            state[f"downsample_{n}.neocell.weight_b.0"] = 0.5 + rand(out, 2, 1)
            state.update(batchnorm(f"downsample_{n}.norm_1", out))
    state["head.ln.weight"] = 1 + rand(widths[-1])
    state["head.ln.bias"] = rand(widths[-1])
    state["head.fc.weight"] = rand(num_classes, widths[-1])
    state["head.fc.bias"] = rand(num_classes)
    return state


def assign_blocks(matrix: Tensor, weight: Tensor, shift: int) -> None:
    """assign_blocks_forward: corner from the weight's lower-right part, then blocks from `shift`."""
    rows, cols = matrix.shape[1:]
    k_h, k_w = weight.shape[1:]
    if shift:
        matrix[:, :shift, :shift] = weight[:, k_h - shift :, k_w - shift :]
    repeats = max(math.ceil((rows - shift) / k_h), math.ceil((cols - shift) / k_w))
    for i in range(repeats):
        r0, c0 = shift + i * k_h, shift + i * k_w
        rem_h, rem_w = min(k_h, rows - r0), min(k_w, cols - c0)
        if rem_h > 0 and rem_w > 0:
            matrix[:, r0 : r0 + rem_h, c0 : c0 + rem_w] = weight[:, :rem_h, :rem_w]


def reference_matrices(weights: list[Tensor], shift_step: int, rows: int, cols: int) -> Tensor:
    """get_matrices_forward for one side: every group, split into shifted subgroups."""
    out = []
    for weight in weights:
        k = weight.shape[1]
        count = (k - 1) // shift_step + 1 if shift_step else 1
        matrix = torch.zeros(weight.shape[0], rows, cols, dtype=weight.dtype)
        start = 0
        for s, size in enumerate(split_like_reference(weight.shape[0], count)):
            part = matrix[start : start + size]
            assign_blocks(part, weight[start : start + size], s * shift_step)
            start += size
        out.append(matrix)
    return torch.cat(out)


def reference_neocell(state: dict[str, Tensor], prefix: str, x: Tensor, shift: int) -> Tensor:
    """NeoCellCPP.forward: y = A x B with its full matrices for x's size."""
    lefts = [state[k] for k in sorted(state) if k.startswith(f"{prefix}.weight_a.")]
    rights = [state[k] for k in sorted(state) if k.startswith(f"{prefix}.weight_b.")]
    height, width = x.shape[2:]
    h_out, h_in = lefts[0].shape[1:]
    w_in, w_out = rights[0].shape[1:]
    a_rows = height if h_in == h_out else math.floor(height / h_in * h_out)
    b_cols = width if w_in == w_out else math.floor(width / w_in * w_out)
    a = reference_matrices(lefts, shift, a_rows, height)
    b = reference_matrices(rights, shift, width, b_cols)
    return a @ x @ b


def reference_forward(
    state: dict[str, Tensor], x: Tensor, depths: tuple[int, ...], shifts: tuple[int, ...]
) -> Tensor:
    """The reference NeoNeXt.forward in eval mode."""

    def bn(prefix: str, y: Tensor) -> Tensor:
        return F.batch_norm(
            y,
            state[f"{prefix}.running_mean"],
            state[f"{prefix}.running_var"],
            state[f"{prefix}.weight"],
            state[f"{prefix}.bias"],
            eps=1e-5,
        )

    n, c, h, w = x.shape
    y = (
        x.reshape(n, c, h // 4, 4, w // 4, 4)
        .permute(0, 1, 3, 5, 2, 4)
        .reshape(n, c * 16, h // 4, w // 4)
    )
    y = bn("stem.norm", F.conv2d(y, state["stem.conv.weight"]))
    for number, (depth, shift) in enumerate(zip(depths, shifts, strict=True), start=1):
        if number > 1:
            d = f"downsample_{number - 1}"
            y = F.conv2d(y, state[f"{d}.conv.weight"])
            y = bn(f"{d}.norm_1", reference_neocell(state, f"{d}.neocell", y, 0))
        for i in range(depth):
            p = f"stage_{number}.{i}.ops.content"
            z = bn(f"{p}.norm", reference_neocell(state, f"{p}.neocell", y, shift))
            z = z.permute(0, 2, 3, 1)
            z = F.linear(z, state[f"{p}.fc_1.weight"], state.get(f"{p}.fc_1.bias"))
            z = F.linear(F.gelu(z), state[f"{p}.fc_2.weight"], state.get(f"{p}.fc_2.bias"))
            if f"{p}.layer_scale.gamma" in state:
                z = state[f"{p}.layer_scale.gamma"] * z
            y = y + z.permute(0, 3, 1, 2)
    pooled = y.mean((-2, -1))
    pooled = F.layer_norm(
        pooled, pooled.shape[-1:], state["head.ln.weight"], state["head.ln.bias"], 1e-6
    )
    return F.linear(pooled, state["head.fc.weight"], state["head.fc.bias"])


# --- small networks in the released checkpoints' settings ----------------------------------------

DEPTHS, WIDTHS = (1, 1, 2, 1), (28, 28, 56, 56)
# As released: one kernel_spec for all stages, layer scale, Linear biases (shifts 1,1,1,0).
RELEASED_LIKE = dict(kernels=((2, 3),) * 4, layer_scale=True, linear_bias=True)
SHIFTS = (1, 1, 1, 0)


def converted(state: dict[str, Tensor], input_size: int = 96) -> NeoNeXt:
    config = infer_reference_config(
        state, input_size=input_size, shifts=tuple(bool(s) for s in SHIFTS)
    )
    model = NeoNeXt(config)
    load_reference_weights(model, state)
    return model.eval()


def test_config_is_read_from_names_and_shapes() -> None:
    state = reference_state_dict(DEPTHS, WIDTHS, **RELEASED_LIKE)
    config = infer_reference_config(state, input_size=96)
    assert [(s.depth, s.width) for s in config.stages] == list(zip(DEPTHS, WIDTHS, strict=True))
    assert [[c.size for c in s.cells] for s in config.stages] == [[2, 3]] * 4
    assert config.layer_scale_init and config.mlp_bias and not config.stem_bias
    assert config.transition == "pointwise_first" and config.num_classes == 10
    plain = reference_state_dict(
        DEPTHS, WIDTHS, kernels=((4, 7), (4, 7), (7,), (7,)), layer_scale=False, linear_bias=False
    )
    config = infer_reference_config(plain)
    assert [[c.size for c in s.cells] for s in config.stages] == [[4, 7], [4, 7], [7], [7]]
    assert config.layer_scale_init is None and not config.mlp_bias


def test_converted_neocells_hold_the_reference_matrices_and_run_them() -> None:
    state = reference_state_dict(DEPTHS, WIDTHS, seed=1, **RELEASED_LIKE)
    model = converted(state)
    sizes = model.config.feature_sizes()
    cells = 0
    for index, stage in enumerate(model.stages):
        (height, width), shift = sizes[index], SHIFTS[index]
        for i, block in enumerate(stage.blocks):
            prefix = f"stage_{index + 1}.{i}.ops.content.neocell"
            lefts = [state[f"{prefix}.weight_a.{g}"] for g in range(2)]
            rights = [state[f"{prefix}.weight_b.{g}"] for g in range(2)]
            a, b, bias = block.neocell.dense_operands(
                height, width, torch.device("cpu"), torch.float32
            )
            assert bias is None
            assert torch.equal(a, reference_matrices(lefts, shift, height, height))
            assert torch.equal(b, reference_matrices(rights, shift, width, width))
            x = torch.randn(2, block.neocell.channels, height, width)
            with torch.no_grad():
                expected = reference_neocell(state, prefix, x, shift)
                assert torch.allclose(block.neocell(x), expected, atol=1e-5)
            cells += 1
    assert cells == sum(DEPTHS)


def test_converted_model_computes_what_the_reference_network_computes() -> None:
    state = reference_state_dict(DEPTHS, WIDTHS, seed=2, **RELEASED_LIKE)
    model = converted(state)
    assert isinstance(model.stages[1].downsample.neocell, NeoCell)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        expected = reference_forward(state, x, DEPTHS, SHIFTS)
        actual = model(x)
    assert torch.allclose(actual, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


@pytest.mark.parametrize(
    ("size", "maps"),
    [(120, [(30, 30), (15, 15), (7, 7), (3, 3)]), (100, [(25, 25), (12, 12), (6, 6), (3, 3)])],
)
def test_converted_model_rounds_odd_maps_down_as_the_reference_does(
    size: int, maps: list[tuple[int, int]]
) -> None:
    """At 120 px the transition into stage 3 sees a 15x15 map (7.5 after it): the reference
    keeps 7x7 (math.floor in its matrix sizes), neonas's own rule would give 8x8."""
    state = reference_state_dict(DEPTHS, WIDTHS, seed=3, **RELEASED_LIKE)
    model = converted(state)  # built at 96 px, run at `size`
    assert model.config.rounding == "floor"
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        features = model.forward_intermediates(x, intermediates_only=True)
        expected = reference_forward(state, x, DEPTHS, SHIFTS)
        actual = model(x)
    assert [tuple(f.shape[2:]) for f in features] == maps
    assert torch.allclose(actual, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
    ceil = NeoNeXt(model.config.model_copy(update={"rounding": "ceil"}))
    ceil.load_state_dict(model.state_dict())
    with torch.no_grad():
        diverged = ceil.eval()(x)
    assert not torch.allclose(
        diverged, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item()
    )


def test_a_state_dict_with_a_foreign_tensor_is_refused() -> None:
    state = reference_state_dict(DEPTHS, WIDTHS, **RELEASED_LIKE)
    state["stage_1.0.ops.content.extra.weight"] = torch.zeros(3)
    with pytest.raises(UserError, match="extra.weight has no place"):
        converted(state)


# --- the command ---------------------------------------------------------------------------------


TINY_SHAPE = dict(depths=(3, 3, 9, 3), widths=(96, 192, 384, 768))


def write_reference_tiny(tmp_path: Path) -> tuple[dict[str, Tensor], Path]:
    """NeoNeXt-T with the reference code's defaults, saved as its DDP training saves it."""
    state = reference_state_dict(
        TINY_SHAPE["depths"],
        TINY_SHAPE["widths"],
        kernels=((4, 7), (4, 7), (7,), (7,)),
        layer_scale=False,
        linear_bias=False,
        num_classes=1000,
    )
    source = tmp_path / "epoch_286.pt"
    torch.save({f"module.{k}": v for k, v in state.items()}, source)
    return state, source


def convert_cli(source: Path, out: Path, model: str = "neonext_tiny_ref") -> int:
    return main(["convert-checkpoint", str(source), "--model", model, "--out", str(out)])


def test_cli_writes_a_checkpoint_that_evaluate_and_train_init_load(tmp_path: Path, capsys) -> None:
    _, source = write_reference_tiny(tmp_path)
    out = tmp_path / "neonext_t.pt"
    assert convert_cli(source, out) == 0
    assert "27,682,888 parameters" in capsys.readouterr().out
    checkpoint = load_checkpoint(out)
    model = rebuild_model(checkpoint["model_spec"])  # what `evaluate` does
    model.load_state_dict(checkpoint["model"])
    assert len(checkpoint["classes"]) == 1000 and checkpoint["classes"][0] == "n01440764"
    load_initial_weights(timm.create_model("neonext_tiny_ref"), out)  # what `train --init` does
    assert ArchConfig.load(out.with_suffix(".yaml")) == model.config  # profile/train --config


def test_cli_converts_at_240_px_with_the_references_7x7_last_map(tmp_path: Path) -> None:
    _, source = write_reference_tiny(tmp_path)
    out = tmp_path / "neonext_t_240.pt"
    argv = ["convert-checkpoint", str(source), "--model", "neonext_tiny_ref", "--out", str(out)]
    assert main([*argv, "--res", "240"]) == 0
    config = ArchConfig.load(out.with_suffix(".yaml"))
    assert config.rounding == "floor" and config.input_size == 240
    assert config.feature_sizes()[-1] == (7, 7)
    assert "rounding: floor" in out.with_suffix(".yaml").read_text()


def test_cli_refuses_a_size_off_the_stem_grid_in_one_line(tmp_path: Path, capsys) -> None:
    _, source = write_reference_tiny(tmp_path)
    argv = ["convert-checkpoint", str(source), "--model", "neonext_tiny_ref"]
    assert main([*argv, "--out", str(tmp_path / "o.pt"), "--res", "230"]) == 2
    stderr = capsys.readouterr().err
    assert "input_size 230 is not a multiple of stem_patch 4" in stderr
    assert stderr.count("\n") == 1 and not (tmp_path / "o.pt").exists()


@pytest.mark.slow
def test_cli_converted_tiny_computes_what_the_reference_tiny_computes(tmp_path: Path) -> None:
    state, source = write_reference_tiny(tmp_path)
    out = tmp_path / "neonext_t.pt"
    assert convert_cli(source, out) == 0
    model = rebuild_model(load_checkpoint(out)["model_spec"])
    model.load_state_dict(load_checkpoint(out)["model"])
    for size in (224, 240, 200):  # 240 and 200 px: maps the 2x2 transitions do not divide
        x = torch.randn(1, 3, size, size)
        with torch.no_grad():
            expected = reference_forward(state, x, TINY_SHAPE["depths"], SHIFTS)
            actual = model.eval()(x)
        tolerance = 1e-3 * expected.abs().max().item()
        assert torch.allclose(actual, expected, rtol=1e-3, atol=tolerance), size


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"version https://git-lfs.github.com/spec/v1\noid sha256:a906\nsize 110305669\n",
            "Git LFS pointer",
        ),
        (b"\x00 not a checkpoint", "is not a PyTorch checkpoint"),
    ],
    ids=["lfs-pointer", "garbage"],
)
def test_bad_files_are_refused_with_one_line(
    tmp_path: Path, capsys, content: bytes, message: str
) -> None:
    path = tmp_path / "epoch_286.pt"
    path.write_bytes(content)
    assert convert_cli(path, tmp_path / "o.pt") == 2
    stderr = capsys.readouterr().err
    assert message in stderr and stderr.count("\n") == 1
    assert not (tmp_path / "o.pt").exists()


def test_other_state_dicts_and_sizes_are_refused(tmp_path: Path, capsys) -> None:
    resnet = tmp_path / "resnet.pt"
    torch.save(timm.create_model("resnet10t").state_dict(), resnet)
    assert convert_cli(resnet, tmp_path / "o.pt") == 2
    assert "not a NeoNeXt checkpoint" in capsys.readouterr().err
    small = tmp_path / "small.pt"
    torch.save(reference_state_dict(DEPTHS, WIDTHS, **RELEASED_LIKE), small)
    assert convert_cli(small, tmp_path / "o.pt") == 2
    assert "pass the --model of that size" in capsys.readouterr().err

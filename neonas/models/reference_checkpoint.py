"""The NeoNeXt authors' checkpoints (github.com/HapKoM/neonext) as neonas models.

Their files are plain `state_dict()`s of their `NeoNeXt` class. Its layout, by key:
    stem.conv.weight [C1, 48, 1, 1], stem.norm.*                      space-to-depth 4 stem
    stage_{n}.{i}.ops.content.neocell.weight_a.{g} [C_g, k, k]        left matrices, group g
    stage_{n}.{i}.ops.content.neocell.weight_b.{g} [C_g, k, k]        right matrices
    stage_{n}.{i}.ops.content.norm.*                                   BatchNorm after the NeoCell
    stage_{n}.{i}.ops.content.fc_{1,2}.weight [out, in] (.bias)        Linear MLP, channels-last
    stage_{n}.{i}.ops.content.layer_scale.gamma [C]                    when trained with one
    downsample_{n}.conv.weight [C_{n+1}, C_n, 1, 1]                    pointwise, then
    downsample_{n}.neocell.weight_{a,b}.0 [C_{n+1}, 1, 2] / [.., 2, 1] NeoCell 2x2 -> 1x1, then
    downsample_{n}.norm_1.*                                            BatchNorm
    head.ln.*, head.fc.*                                               pool -> LayerNorm -> linear
Their code's settings (kernel sizes per stage, layer scale, MLP biases) are not stored, and the
released checkpoints were not trained with the code's defaults, so every choice is read from
the tensors' names and shapes. Shifts are not visible in the tensors: they are an argument
(the code's default 1,1,1,0; its scripts use 1,1,1,1 at 384 px). The converted config records
the code's rounding (`rounding: floor`: its down-sampling NeoCell drops a partial last patch,
15x15 -> 7x7), so the model computes what the reference computes at every input size.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import Tensor, nn

from neonas.arch import ArchConfig, CellSpec, StageSpec, first_error
from neonas.errors import UserError
from neonas.ops import split_channels

LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
DEFAULT_SHIFTS = (True, True, True, False)
_BLOCK = re.compile(r"^stage_(\d+)\.(\d+)\.ops\.content\.(.+)$")
_DOWNSAMPLE = re.compile(r"^downsample_(\d+)\.(.+)$")
# Names inside a block or transition: theirs -> ours.
_BLOCK_PARTS = {"fc_1": "fc1", "fc_2": "fc2", "layer_scale": "layer_scale", "norm": "norm"}
_DOWNSAMPLE_PARTS = {"conv": "conv", "norm_1": "norm"}


def read_reference_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a reference checkpoint file; UserError for anything else."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    with path.open("rb") as handle:
        head = handle.read(len(LFS_POINTER))
    if head == LFS_POINTER:
        raise UserError(
            f"{path} is a Git LFS pointer, not the checkpoint: run `git lfs pull` in the clone"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a file that is not a checkpoint
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path} is not a PyTorch checkpoint ({first[:120]})") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UserError(f"{path} holds no state dict of tensors")
    state = {key.removeprefix("module."): value for key, value in state.items()}
    missing = [key for key in ("stem.conv.weight", "head.fc.weight") if key not in state]
    if missing or not any(_BLOCK.match(key) for key in state):
        raise UserError(
            f"{path} is not a NeoNeXt checkpoint of the authors' code "
            f"(no {', '.join(missing) or 'stage_1.0.ops.content.* keys'})"
        )
    return state


def infer_reference_config(
    state: dict[str, Tensor],
    *,
    name: str = "neonext_ref",
    input_size: int = 224,
    shifts: Sequence[bool] = DEFAULT_SHIFTS,
    drop_path_rate: float = 0.0,
) -> ArchConfig:
    """The ArchConfig of a reference state dict: depths, widths, cells, biases, layer scale."""
    blocks: dict[int, set[int]] = {}
    for key in state:
        match = _BLOCK.match(key)
        if match:
            blocks.setdefault(int(match[1]), set()).add(int(match[2]))
    numbers = sorted(blocks)
    if numbers != list(range(1, len(numbers) + 1)):
        raise UserError(f"the checkpoint's stages are {numbers}, expected 1..{len(numbers)}")
    if len(shifts) != len(numbers):
        raise UserError(f"give one shift per stage: {len(numbers)} stages, {len(shifts)} shifts")
    stages = []
    for number, shift in zip(numbers, shifts, strict=True):
        depth = len(blocks[number])
        if blocks[number] != set(range(depth)):
            raise UserError(
                f"stage_{number}: blocks {sorted(blocks[number])} are not 0..{depth - 1}"
            )
        prefix = f"stage_{number}.0.ops.content"
        width = state[f"{prefix}.norm.weight"].shape[0]
        hidden = state[f"{prefix}.fc_1.weight"].shape[0]
        stages.append(
            StageSpec(
                depth=depth,
                width=width,
                mlp_ratio=hidden / width,
                cells=_cells(state, f"{prefix}.neocell", width, shift),
                sampling=None if number == 1 else _sampling(state, number - 1),
            )
        )
    mlp_bias = "stage_1.0.ops.content.fc_1.bias" in state
    has_scale = "stage_1.0.ops.content.layer_scale.gamma" in state
    return ArchConfig(
        name=name,
        input_size=input_size,
        in_chans=state["stem.conv.weight"].shape[1] // 16,
        num_classes=state["head.fc.weight"].shape[0],
        stem_patch=4,
        stages=tuple(stages),
        drop_path_rate=drop_path_rate,
        # The value only matters at initialisation; the checkpoint's gammas replace it.
        layer_scale_init=1e-6 if has_scale else None,
        mlp_bias=mlp_bias,
        stem_bias="stem.conv.bias" in state,
        transition="pointwise_first",
        rounding="floor",  # math.floor in the code's matrix sizes (NeoCellCPP)
    )


def _cells(state: dict[str, Tensor], prefix: str, width: int, shift: bool) -> tuple[CellSpec, ...]:
    """One CellSpec per group weight_a.{g}: size from its shape, share from its channels."""
    counts, sizes = [], []
    group = 0
    while f"{prefix}.weight_a.{group}" in state:
        left = state[f"{prefix}.weight_a.{group}"]
        right = state[f"{prefix}.weight_b.{group}"]
        if left.shape[1] != left.shape[2] or tuple(right.shape) != tuple(left.shape):
            raise UserError(
                f"{prefix}.weight_a.{group}: a block NeoCell needs square k x k matrices"
            )
        counts.append(left.shape[0])
        sizes.append(left.shape[1])
        group += 1
    if sum(counts) != width:
        raise UserError(f"{prefix}: groups of {counts} channels do not add up to {width}")
    shares = [count / width for count in counts]
    if split_channels(width, shares) != counts:
        raise UserError(f"{prefix}: groups of {counts} channels cannot be written as shares")
    return tuple(
        CellSpec(size=size, share=share, shift=shift and size > 1)
        for size, share in zip(sizes, shares, strict=True)
    )


def _sampling(state: dict[str, Tensor], number: int) -> tuple[int, int, int, int]:
    """(h, w, h', w') of downsample_{number}'s NeoCell: weight_a [C, h', h], weight_b [C, w, w']."""
    prefix = f"downsample_{number}.neocell"
    if f"{prefix}.weight_a.1" in state:
        raise UserError(f"{prefix}: a down-sampling NeoCell with several groups is not supported")
    left, right = state[f"{prefix}.weight_a.0"], state[f"{prefix}.weight_b.0"]
    return (left.shape[2], right.shape[1], left.shape[1], right.shape[2])


def reference_key(key: str) -> str | None:
    """Our parameter name for one of theirs (None if it has no counterpart)."""
    match = _BLOCK.match(key)
    if match:
        stage, block, rest = int(match[1]) - 1, match[2], match[3]
        return f"stages.{stage}.blocks.{block}.{_inner(rest, _BLOCK_PARTS)}"
    match = _DOWNSAMPLE.match(key)
    if match:
        return f"stages.{match[1]}.downsample.{_inner(match[2], _DOWNSAMPLE_PARTS)}"
    if key.startswith(("stem.conv.", "stem.norm.", "head.fc.")):
        return key
    if key.startswith("head.ln."):
        return "head.norm." + key.removeprefix("head.ln.")
    return None


def _inner(rest: str, parts: dict[str, str]) -> str:
    if rest.startswith("neocell."):
        return rest.replace("weight_a", "left").replace("weight_b", "right")
    first, _, tail = rest.partition(".")
    return f"{parts.get(first, first)}.{tail}"


def load_reference_weights(model: nn.Module, state: dict[str, Any]) -> None:
    """Copy a reference state dict into a model built from its inferred config (all keys)."""
    ours = model.state_dict()
    mapped: dict[str, Tensor] = {}
    for key, value in state.items():
        target = reference_key(key)
        if target is None or target not in ours:
            raise UserError(f"the checkpoint's {key} has no place in the converted model")
        if value.numel() != ours[target].numel():
            raise UserError(
                f"the checkpoint's {key} {tuple(value.shape)} does not fit {target} {tuple(ours[target].shape)}"
            )
        # Their MLP is Linear [out, in]; ours may hold the same matrix as a 1x1 conv.
        mapped[target] = value.reshape(ours[target].shape)
    missing = sorted(set(ours) - set(mapped))
    if missing:
        raise UserError(f"the checkpoint has nothing for {', '.join(missing[:3])}")
    model.load_state_dict(mapped)


def convert_reference_checkpoint(
    path: str | Path,
    model_name: str,
    *,
    input_size: int = 224,
    shifts: Sequence[bool] = DEFAULT_SHIFTS,
) -> nn.Module:
    """A NeoNeXt holding a reference checkpoint's weights, its config read from the tensors.

    `model_name` (a `neonext_*_ref` variant) names the result and gives its drop path; the
    checkpoint must have its depths and widths, or it is refused as another size.
    """
    import timm

    from neonas.models.neonext import NeoNeXt

    if model_name not in timm.list_models("neonext_*"):
        raise UserError(
            f"unknown model {model_name!r}: use one of {', '.join(timm.list_models('neonext_*_ref'))}"
        )
    variant = timm.create_model(model_name, img_size=input_size).config
    state = read_reference_state_dict(path)
    try:
        config = infer_reference_config(
            state,
            name=model_name,
            input_size=input_size,
            shifts=shifts,
            drop_path_rate=variant.drop_path_rate,
        )
    except ValidationError as err:
        raise UserError(
            f"{path}: its tensors describe no valid network at {input_size} px ({first_error(err)})"
        ) from None
    shape = [(s.depth, s.width) for s in config.stages]
    expected = [(s.depth, s.width) for s in variant.stages]
    if shape != expected:
        raise UserError(
            f"{path} has (depth, width) per stage {shape}, {model_name} has {expected}: "
            "pass the --model of that size"
        )
    model = NeoNeXt(config)
    load_reference_weights(model, state)
    return model.eval()

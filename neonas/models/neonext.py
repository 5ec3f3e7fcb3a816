"""NeoNeXt: a ConvNeXt-shaped network whose spatial operator is the NeoCell.

Paper: "NeoNeXt: Novel neural network operator and architecture based on the patch-wise matrix
multiplications", Korviakov and Koposov, arXiv 2403.11251 (2024), section 4.

Built from an `ArchConfig`, so every point of a neonas search space is a NeoNeXt. What we take
from the paper: space-to-depth stem, ConvNeXt block with NeoCell in place of the 7x7 depthwise
conv and BatchNorm instead of LayerNorm, NeoCell-based transitions between stages. Choices the
paper leaves open, and how we fill them (the authors' code fills some differently; the
`*_ref` variants follow it, see docs/archconfig.md):
- pointwise layers are 1x1 convolutions (BatchNorm folds into them); the block MLP's run as
  Linear over channels-last data, which is faster on CPU (ChannelsLastPointwise);
- layer scale (from ConvNeXt) is on by default, `layer_scale_init: null` turns it off;
- the head is global average pool -> LayerNorm -> dropout -> linear, as in ConvNeXt and the
  authors' code (a BatchNorm1d there breaks training at batch 1); BatchNorm folding
  (models/folding.py) folds the LayerNorm's affine part into the linear layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, LayerNorm2d, LayerScale2d, NormMlpClassifierHead, trunc_normal_
from timm.models import checkpoint_seq
from torch import Tensor, nn

from neonas.arch import ArchConfig
from neonas.ops import CellGroup, NeoCell


class SpaceToDepthStem(nn.Module):
    """Patch p space-to-depth (3 -> 3p^2 channels, H -> H/p), pointwise to `width`, BatchNorm."""

    def __init__(self, in_chans: int, width: int, patch: int, bias: bool = True) -> None:
        super().__init__()
        self.patch = patch
        self.conv = nn.Conv2d(in_chans * patch * patch, width, kernel_size=1, bias=bias)
        self.norm = nn.BatchNorm2d(width)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pixel_unshuffle(x, self.patch)  # (N, C, H, W) -> (N, C*p*p, H/p, W/p)
        return self.norm(self.conv(x))


class Transition(nn.Module):
    """The paper's transition: NeoCell (h, w -> h', w') -> BN -> GELU -> pointwise -> BN -> GELU.

    `rounding` is the NeoCell's rule on maps the patch does not divide ("ceil" or "floor").
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        sampling: tuple[int, int, int, int],
        rounding: str = "ceil",
    ) -> None:
        super().__init__()
        h, w, h_out, w_out = sampling
        cell = CellGroup(size=(h, w), out=(h_out, w_out))
        self.neocell = NeoCell(in_dim, cell, rounding=rounding)
        self.norm1 = nn.BatchNorm2d(in_dim)
        self.act1 = nn.GELU()
        self.conv = nn.Conv2d(in_dim, out_dim, kernel_size=1)
        self.norm2 = nn.BatchNorm2d(out_dim)
        self.act2 = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        x = self.act1(self.norm1(self.neocell(x)))  # (N, C_in, H, W) -> (N, C_in, H', W')
        return self.act2(self.norm2(self.conv(x)))  # -> (N, C_out, H', W')


class PointwiseFirstTransition(nn.Module):
    """The authors' code's transition: pointwise (no bias) -> NeoCell (h, w -> h', w') -> BN.

    `rounding` is the NeoCell's rule on maps the patch does not divide ("ceil" or "floor").
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        sampling: tuple[int, int, int, int],
        rounding: str = "ceil",
    ) -> None:
        super().__init__()
        h, w, h_out, w_out = sampling
        self.conv = nn.Conv2d(in_dim, out_dim, kernel_size=1, bias=False)
        cell = CellGroup(size=(h, w), out=(h_out, w_out))
        self.neocell = NeoCell(out_dim, cell, rounding=rounding)
        self.norm = nn.BatchNorm2d(out_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)  # (N, C_in, H, W) -> (N, C_out, H, W)
        return self.norm(self.neocell(x))  # -> (N, C_out, H', W')


class ChannelsLastPointwise(nn.Conv2d):
    """A 1x1 convolution run as a Linear over channels-last data (as ConvNeXt and the authors'
    code run their MLPs); weights, state dict and BatchNorm folding stay those of a Conv2d.

    Block MLP alone, interleaved, 2 threads (benchmarks/models.py --mlp): 1.06-2.5x faster than
    the NCHW 1x1 convolution at NeoNeXt-T's stage shapes, batch 1 and 32.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        # (N, C, H, W) as (N, H, W, C), the result viewed back (channels-last in memory). The
        # copy to contiguous channels-last matters: on a strided view F.linear falls back to
        # matmul + a separate bias add, 2-4x slower at NeoNeXt-T's stage 3-4 shapes
        # (benchmarks/model_breakdown.py); on channels-last input (fc2) it costs nothing.
        rows = x.permute(0, 2, 3, 1).contiguous()
        y = F.linear(rows, self.weight.flatten(1), self.bias)
        return y.permute(0, 3, 1, 2)


TRANSITIONS: dict[str, type[nn.Module]] = {
    "neocell_first": Transition,
    "pointwise_first": PointwiseFirstTransition,
}


class NeoNeXtBlock(nn.Module):
    """NeoCell -> BN -> pointwise C -> rC -> GELU -> pointwise rC -> C -> layer scale, residual.

    Args:
        dim: channels in and out.
        cells: the NeoCell's channel groups (square matrices, shares, shifts).
        mlp_ratio: hidden width of the pointwise MLP as a multiple of `dim`.
        drop_path: stochastic depth rate of the residual branch.
        layer_scale_init: initial layer scale, None for none.
        mlp_bias: biases in the two pointwise layers.
    """

    def __init__(
        self,
        dim: int,
        cells: Sequence[CellGroup],
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        layer_scale_init: float | None = 1e-6,
        mlp_bias: bool = True,
    ) -> None:
        super().__init__()
        hidden = int(round(dim * mlp_ratio))
        self.neocell = NeoCell(dim, list(cells))
        self.norm = nn.BatchNorm2d(dim)
        self.fc1 = ChannelsLastPointwise(dim, hidden, bias=mlp_bias)
        self.act = nn.GELU()
        self.fc2 = ChannelsLastPointwise(hidden, dim, bias=mlp_bias)
        self.layer_scale = (
            LayerScale2d(dim, layer_scale_init) if layer_scale_init else nn.Identity()
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm(self.neocell(x))
        y = self.fc2(self.act(self.fc1(y)))
        return x + self.drop_path(self.layer_scale(y))


class NeoNeXtStage(nn.Module):
    """A transition (Identity for the first stage), then `depth` blocks.

    Args:
        in_dim, out_dim: channels into the transition and of the blocks.
        depth: number of blocks.
        cells: NeoCell channel groups of every block.
        sampling: (h, w, h', w') of the transition NeoCell, None for no transition.
        transition: "neocell_first" (the paper's) or "pointwise_first" (the authors' code's).
        rounding: the transition NeoCell's output size on a map it does not divide ("ceil" or
            "floor"); the blocks' square NeoCells keep the map's size under either rule.
        drop_path_rates: one rate per block.
        **block_args: mlp_ratio, layer_scale_init, mlp_bias of NeoNeXtBlock.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        depth: int,
        cells: Sequence[CellGroup],
        sampling: tuple[int, int, int, int] | None = None,
        transition: str = "neocell_first",
        rounding: str = "ceil",
        drop_path_rates: Sequence[float] | None = None,
        **block_args: Any,
    ) -> None:
        super().__init__()
        self.grad_checkpointing = False
        self.downsample = (
            nn.Identity()
            if sampling is None
            else TRANSITIONS[transition](in_dim, out_dim, sampling, rounding)
        )
        rates = list(drop_path_rates) if drop_path_rates is not None else [0.0] * depth
        self.blocks = nn.Sequential(
            *(NeoNeXtBlock(out_dim, cells, drop_path=rate, **block_args) for rate in rates)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.downsample(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.blocks, x)
        return self.blocks(x)


class NeoNeXt(nn.Module):
    """A NeoNeXt network built from an ArchConfig, with timm's model conventions.

    Args:
        config: the architecture.
        **overrides: ArchConfig fields to replace, e.g. `num_classes=10`, as `timm.create_model`
            passes them (`drop_rate` maps to `head_dropout`, `img_size` to `input_size`).
    """

    def __init__(self, config: ArchConfig, **overrides: Any) -> None:
        super().__init__()
        config = apply_overrides(config, overrides)
        self.config = config
        self.num_classes = config.num_classes
        self.num_features = self.head_hidden_size = config.stages[-1].width
        self.drop_rate = config.head_dropout
        self.pretrained_cfg = self.default_cfg = default_cfg(config)

        self.stem = SpaceToDepthStem(
            config.in_chans, config.stages[0].width, config.stem_patch, bias=config.stem_bias
        )
        depth_total = sum(stage.depth for stage in config.stages)
        rates = torch.linspace(0, config.drop_path_rate, depth_total).split(
            [stage.depth for stage in config.stages]
        )
        stages, previous, stride = [], config.stages[0].width, config.stem_patch
        self.feature_info = []
        for index, stage in enumerate(config.stages):
            if stage.sampling is not None:
                stride = stride * stage.sampling[0] / stage.sampling[2]
            stages.append(
                NeoNeXtStage(
                    previous,
                    stage.width,
                    stage.depth,
                    cells=[CellGroup(c.size, share=c.share, shift=c.shift) for c in stage.cells],
                    sampling=stage.sampling,
                    transition=config.transition,
                    rounding=config.rounding,
                    drop_path_rates=rates[index].tolist(),
                    mlp_ratio=stage.mlp_ratio,
                    layer_scale_init=config.layer_scale_init,
                    mlp_bias=config.mlp_bias,
                )
            )
            self.feature_info.append(
                {"num_chs": stage.width, "reduction": stride, "module": f"stages.{index}"}
            )
            previous = stage.width
        self.stages = nn.Sequential(*stages)
        self.head = NormMlpClassifierHead(
            previous, config.num_classes, drop_rate=config.head_dropout, norm_layer=LayerNorm2d
        )
        self.apply(_init_pointwise)

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, C, H, W) image -> (N, C_last, H_last, W_last) feature map."""
        return self.stages(self.stem(x))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Feature map -> logits (or pooled, normalised features with pre_logits=True)."""
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """Stage outputs as timm defines them: `indices` None (all), n (the last n) or a list.

        `norm` is accepted for timm's signature; NeoNeXt has no norm between stages and head.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt {output_fmt!r}: NeoNeXt gives NCHW features only")
        take = stage_indices(len(self.stages), indices)
        intermediates = []
        x = self.stem(x)
        stages = self.stages if not stop_early else self.stages[: max(take) + 1]
        for index, stage in enumerate(stages):
            x = stage(x)
            if index in take:
                intermediates.append(x)
        return intermediates if intermediates_only else (x, intermediates)

    def prune_intermediate_layers(
        self,
        indices: int | Sequence[int] = 1,
        prune_norm: bool = False,
        prune_head: bool = True,
    ) -> list[int]:
        """Drop the stages after the last one `indices` needs (and the head): timm's contract."""
        take = stage_indices(len(self.stages), indices)
        self.stages = self.stages[: max(take) + 1]
        if prune_head:
            self.reset_classifier(0, "")
        return take

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """New classifier for `num_classes` (0 removes it); global_pool "" keeps the map."""
        self.num_classes = num_classes
        self.head.reset(num_classes, pool_type=global_pool)
        self.config = apply_overrides(self.config, {"num_classes": num_classes})

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Parameter groups for timm's layer-wise LR decay: stem, then stages or blocks."""
        return {
            "stem": r"^stem",
            "blocks": r"^stages\.(\d+)"
            if coarse
            else [
                (r"^stages\.(\d+)\.downsample", (0,)),
                (r"^stages\.(\d+)\.blocks\.(\d+)", None),
            ],
        }

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """NeoCell biases, norms, biases and layer scales are excluded from weight decay."""
        return {
            name for name, param in self.named_parameters() if param.ndim <= 1 or ".bias." in name
        }

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in backward (timm's checkpoint_seq)."""
        for stage in self.stages:
            stage.grad_checkpointing = enable


def stage_indices(count: int, indices: int | Sequence[int] | None) -> list[int]:
    """timm's feature indices: None = every stage, n = the last n, a list = those (may be < 0)."""
    if indices is None:
        return list(range(count))
    if isinstance(indices, int):
        if not 0 < indices <= count:
            raise ValueError(f"indices {indices}: take between 1 and {count} stages")
        return list(range(count - indices, count))
    take = [index + count if index < 0 else index for index in indices]
    if any(not 0 <= index < count for index in take):
        raise ValueError(f"indices {list(indices)}: stages are 0..{count - 1}")
    return take


def apply_overrides(config: ArchConfig, overrides: dict[str, Any]) -> ArchConfig:
    """ArchConfig with timm-style keyword overrides applied and validated again."""
    aliases = {"drop_rate": "head_dropout", "img_size": "input_size"}
    updates = {
        aliases.get(key, key): value for key, value in overrides.items() if value is not None
    }
    for ignored in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir", "global_pool"):
        updates.pop(ignored, None)
    if not updates:
        return config
    return ArchConfig.from_dict({**config.to_dict(), **updates}, source=f"{config.name} overrides")


def default_cfg(config: ArchConfig) -> dict[str, Any]:
    """timm's pretrained_cfg fields that follow from the config: input size, pool, crop."""
    return {
        **BASE_CFG,
        "num_classes": config.num_classes,
        "input_size": (config.in_chans, config.input_size, config.input_size),
        "pool_size": config.feature_sizes()[-1],
        "crop_pct": 0.875 if config.input_size <= 224 else 1.0,
    }


BASE_CFG: dict[str, Any] = {
    "url": "",
    "interpolation": "bicubic",
    "mean": IMAGENET_DEFAULT_MEAN,
    "std": IMAGENET_DEFAULT_STD,
    "first_conv": "stem.conv",
    "classifier": "head.fc",
}


def _init_pointwise(module: nn.Module) -> None:
    """ConvNeXt's init for pointwise and linear layers; NeoCells keep NeoInit."""
    if isinstance(module, nn.Conv2d | nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)

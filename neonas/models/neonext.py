"""NeoNeXt: a ConvNeXt-shaped network whose spatial operator is the NeoCell.

Paper: "NeoNeXt: Novel neural network operator and architecture based on the patch-wise matrix
multiplications", Korviakov and Koposov, arXiv 2403.11251 (2024), section 4.

Built from an `ArchConfig`, so every point of a neonas search space is a NeoNeXt. What we take
from the paper: space-to-depth stem, ConvNeXt block with NeoCell in place of the 7x7 depthwise
conv and BatchNorm instead of LayerNorm, NeoCell-based transitions between stages. Choices the
paper leaves open, and how we fill them:
- pointwise layers are 1x1 convolutions with bias (NCHW throughout, BatchNorm folds into them);
- layer scale (from ConvNeXt) is on by default, `layer_scale_init: null` turns it off;
- the head is global average pool -> LayerNorm -> dropout -> linear, as in ConvNeXt and the
  authors' code (a BatchNorm1d there breaks training at batch 1); fusion folds the LayerNorm's
  affine part into the linear layer.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, LayerScale2d, trunc_normal_
from torch import Tensor, nn

from neonas.arch import ArchConfig, StageSpec
from neonas.ops import CellGroup, NeoCell


class SpaceToDepthStem(nn.Module):
    """Patch p space-to-depth (3 -> 3p^2 channels, H -> H/p), pointwise to `width`, BatchNorm."""

    def __init__(self, in_chans: int, width: int, patch: int) -> None:
        super().__init__()
        self.patch = patch
        self.conv = nn.Conv2d(in_chans * patch * patch, width, kernel_size=1)
        self.norm = nn.BatchNorm2d(width)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pixel_unshuffle(x, self.patch)  # (N, C, H, W) -> (N, C*p*p, H/p, W/p)
        return self.norm(self.conv(x))


class Transition(nn.Module):
    """Between stages: NeoCell (h, w -> h', w') -> BN -> GELU -> pointwise -> BN -> GELU."""

    def __init__(self, in_width: int, out_width: int, sampling: tuple[int, int, int, int]) -> None:
        super().__init__()
        h, w, h_out, w_out = sampling
        self.neocell = NeoCell(in_width, CellGroup(size=(h, w), out=(h_out, w_out)))
        self.norm1 = nn.BatchNorm2d(in_width)
        self.act1 = nn.GELU()
        self.conv = nn.Conv2d(in_width, out_width, kernel_size=1)
        self.norm2 = nn.BatchNorm2d(out_width)
        self.act2 = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        x = self.act1(self.norm1(self.neocell(x)))  # (N, C_in, H, W) -> (N, C_in, H', W')
        return self.act2(self.norm2(self.conv(x)))  # -> (N, C_out, H', W')


class NeoNeXtBlock(nn.Module):
    """NeoCell -> BN -> pointwise C -> rC -> GELU -> pointwise rC -> C -> layer scale, residual."""

    def __init__(self, stage: StageSpec, drop_path: float, layer_scale_init: float | None) -> None:
        super().__init__()
        width, hidden = stage.width, int(round(stage.width * stage.mlp_ratio))
        groups = [
            CellGroup(size=cell.size, share=cell.share, shift=cell.shift) for cell in stage.cells
        ]
        self.neocell = NeoCell(width, groups)
        self.norm = nn.BatchNorm2d(width)
        self.fc1 = nn.Conv2d(width, hidden, kernel_size=1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, width, kernel_size=1)
        self.layer_scale = (
            LayerScale2d(width, layer_scale_init) if layer_scale_init else nn.Identity()
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm(self.neocell(x))
        y = self.fc2(self.act(self.fc1(y)))
        return x + self.drop_path(self.layer_scale(y))


class NeoNeXtStage(nn.Module):
    """A transition (Identity for the first stage), then `depth` blocks."""

    def __init__(self, downsample: nn.Module, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(self.downsample(x))


class NeoNeXtHead(nn.Module):
    """Global average pool -> LayerNorm -> dropout -> linear."""

    def __init__(self, width: int, num_classes: int, drop_rate: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.norm(x.mean((2, 3)))  # (N, C, H, W) -> (N, C)
        return x if pre_logits else self.fc(self.drop(x))


class NeoNeXt(nn.Module):
    """A NeoNeXt network built from an ArchConfig, with timm's model conventions.

    Args:
        config: the architecture.
        **overrides: ArchConfig fields to replace, e.g. `num_classes=10`, as `timm.create_model`
            passes them (`drop_rate` maps to `head_dropout`).
    """

    def __init__(self, config: ArchConfig, **overrides: Any) -> None:
        super().__init__()
        config = apply_overrides(config, overrides)
        self.config = config
        self.num_classes = config.num_classes
        self.num_features = self.head_hidden_size = config.stages[-1].width
        self.drop_rate = config.head_dropout
        self.pretrained_cfg = default_cfg(config)
        self.default_cfg = self.pretrained_cfg
        self.grad_checkpointing = False

        self.stem = SpaceToDepthStem(config.in_chans, config.stages[0].width, config.stem_patch)
        depth_total = sum(stage.depth for stage in config.stages)
        drop_rates = torch.linspace(0, config.drop_path_rate, depth_total).tolist()
        stages, previous, stride, block_index = [], config.stages[0].width, config.stem_patch, 0
        self.feature_info = []
        for index, stage in enumerate(config.stages):
            downsample: nn.Module = nn.Identity()
            if stage.sampling is not None:
                downsample = Transition(previous, stage.width, stage.sampling)
                stride = stride * stage.sampling[0] / stage.sampling[2]
            blocks = [
                NeoNeXtBlock(stage, drop_rates[block_index + i], config.layer_scale_init)
                for i in range(stage.depth)
            ]
            block_index += stage.depth
            stages.append(NeoNeXtStage(downsample, blocks))
            self.feature_info.append(
                {"num_chs": stage.width, "reduction": stride, "module": f"stages.{index}"}
            )
            previous = stage.width
        self.stages = nn.Sequential(*stages)
        self.head = NeoNeXtHead(previous, config.num_classes, config.head_dropout)
        self.apply(_init_pointwise)

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, C, H, W) image -> (N, C_last, H_last, W_last) feature map."""
        return self.stages(self.stem(x))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Feature map -> logits (or pooled, normalised features with pre_logits=True)."""
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """New linear classifier for `num_classes` (0 removes it); pooling stays average."""
        self.num_classes = num_classes
        device = self.stem.conv.weight.device
        self.head.fc = (
            nn.Linear(self.num_features, num_classes, device=device)
            if num_classes > 0
            else nn.Identity()
        )
        self.config = apply_overrides(self.config, {"num_classes": num_classes})

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """NeoCell biases, norms, biases and layer scales are excluded from weight decay."""
        return {
            name for name, param in self.named_parameters() if param.ndim <= 1 or ".bias." in name
        }

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable


def apply_overrides(config: ArchConfig, overrides: dict[str, Any]) -> ArchConfig:
    """ArchConfig with timm-style keyword overrides applied and validated again."""
    aliases = {"drop_rate": "head_dropout"}
    updates = {
        aliases.get(key, key): value for key, value in overrides.items() if value is not None
    }
    for ignored in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir", "global_pool"):
        updates.pop(ignored, None)
    if not updates:
        return config
    return ArchConfig.from_dict({**config.to_dict(), **updates}, source=f"{config.name} overrides")


def default_cfg(config: ArchConfig) -> dict[str, Any]:
    """timm's pretrained_cfg: input size, normalisation, crop; no weights to download."""
    pool = config.feature_sizes()[-1]
    return {
        "url": "",
        "num_classes": config.num_classes,
        "input_size": (config.in_chans, config.input_size, config.input_size),
        "pool_size": pool,
        "crop_pct": 0.875 if config.input_size <= 224 else 1.0,
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

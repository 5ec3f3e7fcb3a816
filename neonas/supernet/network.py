"""The weight-sharing NeoNeXt supernet of a search space (Once-for-All / BigNAS style).

One module holds every network of the space; `supernet(images, config)` runs the subnet that
an ArchConfig of the space describes. Module names follow `neonas.models.NeoNeXt`
(`stem.conv`, `stages.1.downsample.norm1`, `stages.0.blocks.1.fc1`, `head.fc`, ...), so a
subnet's weights are the leading slices of the tensors of the same name (see subnet_weights.py).
What differs from the stand-alone network:
- blocks keep every candidate matrix size on every channel (`ElasticNeoCell`);
- a transition keeps one matrix pair per sampling ratio; its norms and pointwise layer are
  shared by all ratios (NeoCell matrices are size-agnostic, so every plan runs through the
  same blocks);
- BatchNorm statistics are shared by all subnets and must be re-estimated per subnet before
  it is evaluated (scoring.py does that); drop path is not used.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neonas.arch import ArchConfig, StageSpec
from neonas.models import build_model
from neonas.models.neonext import _init_pointwise as init_pointwise
from neonas.models.neonext import default_cfg
from neonas.space import SearchSpace
from neonas.supernet.coverage import SpaceCoverage, StageCoverage, hidden_width, largest_subnet
from neonas.supernet.layers import (
    ElasticNeoCell,
    ElasticTransitionCell,
    elastic_norm,
    elastic_pointwise,
)


class SuperStem(nn.Module):
    """Space-to-depth, pointwise to the widest first stage, BatchNorm."""

    def __init__(self, in_chans: int, width: int, patch: int, bias: bool) -> None:
        super().__init__()
        self.patch = patch
        self.conv = nn.Conv2d(in_chans * patch * patch, width, kernel_size=1, bias=bias)
        self.norm = nn.BatchNorm2d(width)

    def forward(self, x: Tensor, width: int) -> Tensor:
        x = F.pixel_unshuffle(x, self.patch)  # (N, C, H, W) -> (N, C*p*p, H/p, W/p)
        return elastic_norm(elastic_pointwise(x, self.conv, width), self.norm)


class SuperTransition(nn.Module):
    """The paper's transition: NeoCell (a matrix pair per ratio) -> BN -> GELU -> pointwise -> BN -> GELU."""

    def __init__(self, in_width: int, cover: StageCoverage) -> None:
        super().__init__()
        self.neocell = ElasticTransitionCell(in_width, cover.ratios)
        self.norm1 = nn.BatchNorm2d(in_width)
        self.act1 = nn.GELU()
        self.conv = nn.Conv2d(in_width, cover.width, kernel_size=1)
        self.norm2 = nn.BatchNorm2d(cover.width)
        self.act2 = nn.GELU()

    def forward(self, x: Tensor, stage: StageSpec) -> Tensor:
        x = self.act1(elastic_norm(self.neocell(x, stage.sampling), self.norm1))
        return self.act2(elastic_norm(elastic_pointwise(x, self.conv, stage.width), self.norm2))


class SuperPointwiseFirstTransition(nn.Module):
    """The authors' code's transition: pointwise (no bias) -> NeoCell (a pair per ratio) -> BN."""

    def __init__(self, in_width: int, cover: StageCoverage) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_width, cover.width, kernel_size=1, bias=False)
        self.neocell = ElasticTransitionCell(cover.width, cover.ratios)
        self.norm = nn.BatchNorm2d(cover.width)

    def forward(self, x: Tensor, stage: StageSpec) -> Tensor:
        x = elastic_pointwise(x, self.conv, stage.width)
        return elastic_norm(self.neocell(x, stage.sampling), self.norm)


SUPER_TRANSITIONS = {
    "neocell_first": SuperTransition,
    "pointwise_first": SuperPointwiseFirstTransition,
}


class SuperBlock(nn.Module):
    """NeoNeXt block with elastic width, MLP and NeoCell groups."""

    def __init__(self, cover: StageCoverage, layer_scale_init: float | None, bias: bool) -> None:
        super().__init__()
        self.neocell = ElasticNeoCell(cover.width, cover.sizes)
        self.norm = nn.BatchNorm2d(cover.width)
        self.fc1 = nn.Conv2d(cover.width, cover.hidden, kernel_size=1, bias=bias)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(cover.hidden, cover.width, kernel_size=1, bias=bias)
        self.layer_scale = _LayerScale(cover.width, layer_scale_init) if layer_scale_init else None

    def forward(self, x: Tensor, stage: StageSpec) -> Tensor:
        width = x.shape[1]
        y = elastic_norm(self.neocell(x, stage.cells), self.norm)
        y = self.act(elastic_pointwise(y, self.fc1, hidden_width(width, stage.mlp_ratio)))
        y = elastic_pointwise(y, self.fc2, width)
        if self.layer_scale is not None:
            y = y * self.layer_scale.gamma[:width].view(1, -1, 1, 1)
        return x + y


class _LayerScale(nn.Module):
    """Holds `gamma` under the name timm's LayerScale2d uses, so state dict keys match."""

    def __init__(self, dim: int, init_values: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))


class SuperStage(nn.Module):
    """A transition (None for the first stage), then the deepest stack of blocks."""

    def __init__(self, downsample: SuperTransition | None, blocks: list[SuperBlock]) -> None:
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor, stage: StageSpec) -> Tensor:
        if self.downsample is not None:
            x = self.downsample(x, stage)
        for block in self.blocks[: stage.depth]:  # elastic depth: the first `depth` blocks
            x = block(x, stage)
        return x


class SuperNet(nn.Module):
    """Every network of a search space in one module: `forward(images, config)`.

    Args:
        space: the loaded search space.
        num_classes: classes of the data it is trained on (the space's own count is ignored).
    """

    def __init__(self, space: SearchSpace, num_classes: int) -> None:
        super().__init__()
        self.space = space
        self.coverage = SpaceCoverage.of(space)
        self.num_classes = num_classes
        self.largest = with_classes(largest_subnet(space), num_classes)
        # timm's data config (input size, mean/std, crop) of the space's networks.
        self.pretrained_cfg = default_cfg(self.largest)
        cover = self.coverage
        self.stem = SuperStem(
            cover.in_chans, cover.stages[0].width, cover.stem_patch, cover.stem_bias
        )
        transition = SUPER_TRANSITIONS[cover.transition]
        stages, previous = [], cover.stages[0].width
        for index, stage in enumerate(cover.stages):
            downsample = transition(previous, stage) if index else None
            blocks = [
                SuperBlock(stage, cover.layer_scale_init, cover.mlp_bias)
                for _ in range(stage.depth)
            ]
            stages.append(SuperStage(downsample, blocks))
            previous = stage.width
        self.stages = nn.ModuleList(stages)
        # The stand-alone network's own head at the largest width: its norm and classifier are
        # run elastically in forward, whatever kind of norm the model family uses.
        self.head = build_model(self.largest).head
        self.apply(init_pointwise)  # NeoNeXt's init: pointwise/linear trunc-normal, NeoInit kept

    def forward(self, x: Tensor, config: ArchConfig) -> Tensor:
        """Logits of the subnet `config` (any network of the space) for images x."""
        x = self.stem(x, config.stages[0].width)
        for stage, spec in zip(self.stages, config.stages, strict=True):
            x = stage(x, spec)
        x = elastic_norm(x.mean((2, 3)), self.head.norm)  # (N, C, H, W) -> (N, C), then norm
        fc = self.head.fc
        return F.linear(x, fc.weight[:, : x.shape[1]], fc.bias)

    def subnet_config(self, config: ArchConfig) -> ArchConfig:
        """`config` checked against what the supernet holds, with the supernet's classes."""
        self.coverage.check(config)
        return with_classes(config, self.num_classes)

    def no_weight_decay(self) -> set[str]:
        """Norms, biases and layer scales (1-d tensors) get no weight decay, as in NeoNeXt."""
        return {name for name, param in self.named_parameters() if param.ndim <= 1}

    def describe(self) -> dict[str, Any]:
        """Parameter count and the largest subnet, for logs."""
        return {
            "params": sum(p.numel() for p in self.parameters()),
            "largest": self.largest.to_dict(),
        }


def with_classes(config: ArchConfig, num_classes: int) -> ArchConfig:
    """`config` with another head size (validated again)."""
    if config.num_classes == num_classes:
        return config
    return ArchConfig.from_dict({**config.to_dict(), "num_classes": num_classes}, config.name)

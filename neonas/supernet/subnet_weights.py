"""A subnet's weights out of the supernet: the state dict of the stand-alone NeoNeXt.

Module names match (see network.py), so every tensor but the NeoCell matrices is the leading
slice of the supernet tensor of the same name, cut to the stand-alone shape. NeoCell matrices
come from the elastic cells: a block group's rows of its own size and channel range, a
transition's pair for its ratio.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neonas.arch import ArchConfig
from neonas.models import NeoNeXt, build_model
from neonas.supernet.layers import ElasticNeoCell, ElasticTransitionCell
from neonas.supernet.network import SuperNet


def subnet_state_dict(supernet: SuperNet, config: ArchConfig) -> dict[str, Tensor]:
    """Weights and buffers of `build_model(config)` (with the supernet's classes), copied."""
    config = supernet.subnet_config(config)
    target = build_model(config).state_dict()
    source = supernet.state_dict()
    cells = _neocell_tensors(supernet, config)
    state = {}
    for key, like in target.items():
        if key in cells:
            value = cells[key]
        elif key in source:
            value = _leading_slice(source[key], like.shape, key)
        else:
            raise KeyError(f"the supernet has no tensor for {key}")
        if value.shape != like.shape:
            raise ValueError(
                f"{key}: the supernet gives {tuple(value.shape)}, not {tuple(like.shape)}"
            )
        state[key] = value.detach().clone().to(like.dtype)
    return state


def extract_subnet(supernet: SuperNet, config: ArchConfig) -> NeoNeXt:
    """The stand-alone network of `config` holding its weights inherited from the supernet."""
    model = build_model(supernet.subnet_config(config))
    model.load_state_dict(subnet_state_dict(supernet, config))
    return model


def _leading_slice(tensor: Tensor, shape: torch.Size, key: str) -> Tensor:
    if tensor.dim() != len(shape) or any(a < b for a, b in zip(tensor.shape, shape, strict=True)):
        raise ValueError(
            f"{key}: the supernet holds {tuple(tensor.shape)}, too small for {tuple(shape)}"
        )
    if tensor.dim() == 0:
        return tensor
    return tensor[tuple(slice(0, size) for size in shape)]


def _neocell_tensors(supernet: SuperNet, config: ArchConfig) -> dict[str, Tensor]:
    """State dict entries of every NeoCell of the subnet (`...neocell.left.0`, ...)."""
    tensors: dict[str, Tensor] = {}
    previous = config.stages[0].width
    for index, (stage, spec) in enumerate(zip(supernet.stages, config.stages, strict=True)):
        if spec.sampling is not None:
            transition: ElasticTransitionCell = stage.downsample.neocell
            # neocell_first runs on the incoming channels, pointwise_first on the stage's own.
            channels = previous if config.transition == "neocell_first" else spec.width
            left, right = transition.weights(channels, spec.sampling)
            prefix = f"stages.{index}.downsample.neocell"
            tensors[f"{prefix}.left.0"], tensors[f"{prefix}.right.0"] = left, right
        for block_index in range(spec.depth):
            cell: ElasticNeoCell = stage.blocks[block_index].neocell
            prefix = f"stages.{index}.blocks.{block_index}.neocell"
            groups = cell.group_weights(spec.width, spec.cells)
            for group_index, (_, left, right) in enumerate(groups):
                tensors[f"{prefix}.left.{group_index}"] = left
                tensors[f"{prefix}.right.{group_index}"] = right
        previous = spec.width
    return tensors

"""Training-free (zero-cost) accuracy proxies: a score per untrained network, on synthetic input.

- `naswot`: NASWOT (Mellor et al., "Neural Architecture Search without Training", ICML 2021).
  One forward pass of a batch; every unit after which a GELU/ReLU follows gives each image a
  binary code (pre-activation > 0); the score is log|K| with K[i, j] the number of units on
  which images i and j agree. Networks that separate inputs into many distinct linear regions
  score higher. BatchNorm uses batch statistics, as at the start of training.
- `synflow`: SynFlow (Tanaka et al., "Pruning neural networks without any data by iteratively
  conserving synaptic flow", NeurIPS 2020), summed over all parameters as a NAS proxy
  (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021): with every weight
  replaced by its absolute value and an all-ones input, sum |theta * dR/dtheta| for
  R = sum(output). Data-free; computed in float64 and reported as log10.

The search uses `naswot` by default; benchmarks/proxy_correlation.py measures both against
short training (Kendall tau) and benchmarks/README.md has the numbers behind that choice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

ACTIVATIONS = (nn.GELU, nn.ReLU, nn.ReLU6, nn.SiLU, nn.LeakyReLU)


def naswot_score(
    model: nn.Module, input_shape: Sequence[int], batch_size: int = 16, seed: int = 0
) -> float:
    """log|K| of the activation-pattern kernel on `batch_size` seeded random images of (C, H, W)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, *input_shape, generator=generator)
    kernel = torch.zeros(batch_size, batch_size, dtype=torch.float64)

    def add_codes(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: object) -> None:
        codes = (inputs[0].detach() > 0).reshape(inputs[0].shape[0], -1).float()
        # Agreements = both on + both off; float32 sums of 0/1 are exact below 2^24 units.
        agree = codes @ codes.T + (1 - codes) @ (1 - codes).T
        kernel.add_(agree.double())

    hooks = [
        m.register_forward_hook(add_codes) for m in model.modules() if isinstance(m, ACTIVATIONS)
    ]
    if not hooks:
        raise ValueError("naswot needs a network with GELU or ReLU activations")
    was_training = model.training
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    # Eval mode (no drop path, no dropout) but BatchNorm on batch statistics, as at training start;
    # its running statistics are put back afterwards.
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.train()
    try:
        with torch.no_grad():
            model(images)
    finally:
        for hook in hooks:
            hook.remove()
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(buffers[name])
        model.train(was_training)
    sign, logdet = torch.linalg.slogdet(kernel)
    # Two identical codes for every unit make K singular: the network does not tell inputs apart.
    return float(logdet) if float(sign) > 0 else float("-inf")


def synflow_score(model: nn.Module, input_shape: Sequence[int], batch_size: int = 1) -> float:
    """log10 of the summed synaptic flow of the network with |weights| on an all-ones input."""
    dtype = next(model.parameters()).dtype
    was_training = model.training
    model.eval()  # BatchNorm on its (fresh) running statistics: the network as a fixed function
    model.double()
    signs = {}
    with torch.no_grad():
        for name, param in model.named_parameters():
            signs[name] = torch.sign(param)
            param.abs_()
    try:
        model.zero_grad(set_to_none=True)
        output = model(torch.ones(batch_size, *input_shape, dtype=torch.float64))
        output.sum().backward()
        total = sum(
            float((param * param.grad).detach().abs().sum())
            for param in model.parameters()
            if param.grad is not None
        )
    finally:
        with torch.no_grad():
            for name, param in model.named_parameters():
                param.mul_(signs[name])
        model.zero_grad(set_to_none=True)
        model.to(dtype)
        model.train(was_training)
    return math.log10(total) if total > 0 else float("-inf")


PROXIES: dict[str, Callable[..., float]] = {"naswot": naswot_score, "synflow": synflow_score}


def zero_cost_score(
    model: nn.Module, input_shape: Sequence[int], proxy: str = "naswot", batch_size: int = 16
) -> float:
    """The named proxy's score of `model` on inputs of (C, H, W) `input_shape`; higher is better."""
    if proxy not in PROXIES:
        raise ValueError(f"unknown zero-cost proxy {proxy!r}: use one of {', '.join(PROXIES)}")
    if proxy == "synflow":
        return synflow_score(model, input_shape)
    return naswot_score(model, input_shape, batch_size=batch_size)

"""Training-free (zero-cost) accuracy proxies: a score per untrained network, higher is better.

Each follows its paper; where a NeoCell network needs a choice the paper did not make, it is
said here. "Weight layers" are Conv2d, Linear and NeoCell (its left and right matrices are the
layer's weights, as a depthwise convolution's kernel would be); BatchNorm, layer scale and
biases are not weights.

- `naswot`: NASWOT (Mellor et al., "Neural Architecture Search without Training", ICML 2021).
  One forward pass of a batch; at every ReLU/GELU each image gets a binary code c (the
  activation's input > 0). K = c c^T + (1 - c)(1 - c)^T summed over the activations, i.e.
  K[i, j] = the number of units on which images i and j agree; score = log|det K|. BatchNorm
  uses batch statistics, as at the start of training. K has integer entries, so a non-singular
  K has |det K| >= 1 and a score >= 0; a singular K (two images no unit tells apart) scores
  NASWOT_SINGULAR = -1, below every non-singular kernel, instead of -inf.
- `synflow`: SynFlow (Tanaka et al., "Pruning neural networks without any data by iteratively
  conserving synaptic flow", NeurIPS 2020), summed over the weight layers as a NAS score
  (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021): BatchNorm removed
  (identity), every parameter replaced by its absolute value, an all-ones input in float64,
  R = sum(output); score = log10 sum over weights of theta * dR/dtheta. Data-free. The
  LayerNorm of the head is removed too: it subtracts a mean, which would make R's paths
  negative, against the positive linearised network SynFlow is defined on.
- `zico`: ZiCo (Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on
  Gradients", ICLR 2023). The cross-entropy gradient of every weight on each of >= 2 batches;
  per weight layer l, S_l = sum over its weights of mean_b |g| / std_b(g) (weights whose
  gradient does not vary are left out, as in the authors' code); score = sum_l log S_l.
- `meco`: MeCo (Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via
  Minimum Eigenvalue of Correlation", NeurIPS 2023). One forward pass (BatchNorm on the
  batch's statistics, as for NASWOT); for every weight layer's output feature map of the first
  image (C channels of H*W values) the C x C Pearson correlation of its channels; score = sum
  over layers of its smallest eigenvalue (a constant channel's undefined correlations count 0).
- `params`, `flops`: the size baselines (fvcore counts, evaluators/flops.py), log10.

The names of every accuracy signal, and which one the search uses by default, are in
neonas/signals.py; benchmarks/accuracy_signals.py measures them all against training.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from neonas.ops import NeoCell

ACTIVATIONS = (nn.GELU, nn.ReLU, nn.ReLU6, nn.SiLU, nn.LeakyReLU)
WEIGHT_LAYERS = (nn.Conv2d, nn.Linear, NeoCell)
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
NASWOT_SINGULAR = -1.0  # every non-singular NASWOT kernel scores >= 0

Batch = tuple[torch.Tensor, torch.Tensor]  # images (N, C, H, W), labels (N,)


def noise_batches(
    input_shape: Sequence[int], batch_size: int, num_classes: int, count: int = 2, seed: int = 0
) -> list[Batch]:
    """Seeded standard-normal images with random labels: the stand-in when there is no data."""
    generator = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(batch_size, *input_shape, generator=generator),
            torch.randint(num_classes, (batch_size,), generator=generator),
        )
        for _ in range(count)
    ]


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module, list[nn.Parameter]]]:
    """(name, module, weights) of every Conv2d, Linear and NeoCell, biases left out."""
    layers = []
    for name, module in model.named_modules():
        if isinstance(module, NeoCell):
            weights = [*module.left, *module.right]
        elif isinstance(module, nn.Conv2d | nn.Linear):
            weights = [module.weight]
        else:
            continue
        layers.append((name, module, weights))
    return layers


# --- NASWOT --------------------------------------------------------------------------------------


def naswot_kernel(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """K[i, j]: on how many ReLU/GELU units images i and j agree (both active or both not)."""
    kernel = torch.zeros(len(images), len(images), dtype=torch.float64, device=images.device)

    def add_codes(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: object) -> None:
        codes = (inputs[0].detach() > 0).reshape(inputs[0].shape[0], -1).double()
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    activations = [m for m in model.modules() if isinstance(m, ACTIVATIONS)]
    if not activations:
        raise ValueError("naswot needs a network with GELU or ReLU activations")
    _probe(model, activations, add_codes, images)
    return kernel


def naswot_score(model: nn.Module, images: torch.Tensor) -> float:
    """log|det K| of the activation-code kernel of `images`; NASWOT_SINGULAR if K is singular."""
    kernel = naswot_kernel(model, images)
    eigenvalues = torch.linalg.eigvalsh(kernel)  # K is a sum of Gram matrices: symmetric, PSD
    # Rounding makes a singular K's smallest eigenvalue tiny rather than 0.
    floor = float(eigenvalues[-1]) * len(kernel) * torch.finfo(torch.float64).eps * 16
    if float(eigenvalues[0]) <= floor:
        return NASWOT_SINGULAR
    return float(torch.log(eigenvalues).sum())


# --- SynFlow -------------------------------------------------------------------------------------


def synflow_score(model: nn.Module, input_shape: Sequence[int]) -> float:
    """log10 of the synaptic flow through the weight layers: norms removed, |weights|, ones input."""
    # A float64 copy without normalisation: the caller's model keeps its weights, dtype, mode.
    flow_model = copy.deepcopy(model).double().eval()
    _remove_normalisation(flow_model)
    with torch.no_grad():
        for param in flow_model.parameters():
            param.abs_()
    flow_model.zero_grad(set_to_none=True)
    device = next(flow_model.parameters()).device  # the model's, CPU or a trial's GPU
    output = flow_model(torch.ones(1, *input_shape, dtype=torch.float64, device=device))
    output.sum().backward()
    total = sum(
        float((weight * weight.grad).detach().sum())
        for _name, _module, weights in weight_layers(flow_model)
        for weight in weights
        if weight.grad is not None
    )
    return math.log10(total) if total > 0 else float("-inf")


NORMALISATIONS = (*BATCH_NORMS, nn.LayerNorm, nn.GroupNorm)


def _remove_normalisation(model: nn.Module) -> None:
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, NORMALISATIONS):
                setattr(module, child_name, nn.Identity())


# --- ZiCo ----------------------------------------------------------------------------------------


def zico_score(model: nn.Module, batches: Sequence[Batch]) -> float:
    """Sum over weight layers of log(sum of mean|g| / std(g)) over the batches' gradients."""
    if len(batches) < 2:
        raise ValueError("zico needs at least two batches (a gradient's spread over batches)")
    layers = weight_layers(model)
    # Each batch's gradient tensors themselves, as autograd made them (float32): the weights'
    # .grad is set to None before the next batch, so nothing overwrites them. Widened to
    # float64 one layer at a time below: the same values as widening them all up front, at
    # half the memory (a float64 copy of every gradient per batch was 16 bytes per weight).
    grads: list[list[list[torch.Tensor]]] = [[] for _ in layers]
    # Backward changes no weight; only the forward's BatchNorm running statistics (buffers)
    # change, so those are all that is saved and put back (not a copy of every weight).
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    was_training = model.training
    model.train()  # BatchNorm on batch statistics, as the paper's network at initialisation
    try:
        for images, labels in batches:
            model.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(images), labels).backward()
            for index, (_name, _module, weights) in enumerate(layers):
                grads[index].append([w.grad for w in weights if w.grad is not None])
    finally:
        model.zero_grad(set_to_none=True)
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                if name in buffers:
                    buffer.copy_(buffers[name])  # running statistics back as they were
        model.train(was_training)
    score = 0.0
    for per_batch in grads:
        # (batches, weights), float64: the statistics below are summed over many weights.
        stacked = torch.stack([torch.cat([g.reshape(-1) for g in batch]) for batch in per_batch])
        stacked = stacked.double()
        std = stacked.std(dim=0, unbiased=False)
        varies = std > 0
        ratio = float((stacked.abs().mean(dim=0)[varies] / std[varies]).sum())
        if ratio > 0:
            score += math.log(ratio)
    return score


# --- MeCo ----------------------------------------------------------------------------------------


def meco_score(model: nn.Module, images: torch.Tensor) -> float:
    """Sum over weight layers of the smallest eigenvalue of the first image's channel correlation."""
    smallest: list[float] = []

    def add_layer(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        if output.dim() != 4:
            return  # the classifier's logits are no feature map
        features = output[0].detach().reshape(output.shape[1], -1).double()  # (C, H*W)
        if features.shape[0] < 2:
            return
        corr = torch.nan_to_num(torch.corrcoef(features), nan=0.0, posinf=0.0, neginf=0.0)
        smallest.append(float(torch.linalg.eigvalsh(corr)[0]))

    _probe(model, [module for _n, module, _w in weight_layers(model)], add_layer, images)
    return float(sum(smallest))


# --- shared --------------------------------------------------------------------------------------


def _probe(
    model: nn.Module, modules: Sequence[nn.Module], hook: Callable[..., None], images: torch.Tensor
) -> None:
    """One forward of `images` (batch statistics, no gradients) with `hook` on each of
    `modules`: how NASWOT and MeCo read a network's activations."""
    handles = [module.register_forward_hook(hook) for module in modules]
    try:
        with _batch_statistics(model), torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()


class _batch_statistics:
    """Eval mode (no drop path, no dropout) but BatchNorm on batch statistics, then put back."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.was_training = self.model.training
        self.buffers = {name: b.clone() for name, b in self.model.named_buffers()}
        self.model.eval()
        for module in self.model.modules():
            if isinstance(module, BATCH_NORMS):
                module.train()

    def __exit__(self, *_exc: object) -> None:
        with torch.no_grad():
            for name, buffer in self.model.named_buffers():
                buffer.copy_(self.buffers[name])
        self.model.train(self.was_training)


def _log10_params(model: nn.Module, batches: Sequence[Batch]) -> float:
    return math.log10(sum(p.numel() for p in model.parameters()))


def _log10_flops(model: nn.Module, batches: Sequence[Batch]) -> float:
    from evaluators.flops import count_flops

    return math.log10(count_flops(model, (1, *batches[0][0].shape[1:])).flops)


PROXIES: dict[str, Callable[[nn.Module, Sequence[Batch]], float]] = {
    "naswot": lambda model, batches: naswot_score(model, batches[0][0]),
    "synflow": lambda model, batches: synflow_score(model, batches[0][0].shape[1:]),
    "zico": zico_score,
    "meco": lambda model, batches: meco_score(model, batches[0][0]),
    "params": _log10_params,
    "flops": _log10_flops,
}


def zero_cost_score(model: nn.Module, proxy: str, batches: Sequence[Batch]) -> float:
    """The named proxy's score of `model` on `batches` of (images, labels); higher is better.

    NASWOT and MeCo use the first batch, SynFlow only the image shape, ZiCo every
    batch (two or more). Without data, pass `noise_batches(...)`.
    """
    if proxy not in PROXIES:
        raise ValueError(f"unknown zero-cost proxy {proxy!r}: use one of {', '.join(PROXIES)}")
    if not batches:
        raise ValueError("zero-cost proxies need at least one batch")
    return PROXIES[proxy](model, batches)

"""Building NeoNeXt-T's dense operands and their backward, by dtype and by how they are gathered.

Under `train --amp bf16` every NeoCell builds its block-diagonal operands A, B and the bias map
each step by gathering its weights (plus one zero for the off-block entries); the gather's
backward is an index_add that sums each weight's repeats down the diagonal and sends every
off-block entry to the one zero slot. This times that step for the 21 cells of NeoNeXt-T at
their sizes for a 224 x 224 input, and measures the weights' gradient error against float64:

- `cast-gather`: weights cast to the compute dtype, then gathered (neonas before this script);
- `gather-cast`: gathered in the weights' float32, then cast (NeoCell.dense_operands now);
- `in-block`: only the in-block entries gathered and written into zeros, so the backward sends
  nothing to the zero slot (an experiment: does the slot's contention cost time on CUDA?).

Protocol: the three forms side by side in one process; per form and dtype one untimed pass
(the error's), then `--repeats` timed ones, median and minimum. A pass builds all 21 cells'
operands and takes their backward with fixed random upstream gradients, synchronised on CUDA.
The error is the largest difference of a weight's gradient from float64 (the same upstream
gradients summed exactly), relative to that gradient's largest entry.

    python benchmarks/operand_backward.py [--device cuda] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FORMS = ("cast-gather", "gather-cast", "in-block")


def cells_and_sizes(model_name: str, image_size: int) -> list[tuple[object, int, int]]:
    """Every NeoCell of the model with the (H, W) it meets for one image of `image_size`."""
    import timm
    import torch

    import neonas.models  # noqa: F401  (registers the models with timm)
    from neonas.ops import NeoCell

    model = timm.create_model(model_name)
    found: list[tuple[object, int, int]] = []
    hooks = [
        cell.register_forward_pre_hook(lambda m, args: found.append((m, *args[0].shape[2:])))
        for cell in model.modules()
        if isinstance(cell, NeoCell)
    ]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, image_size, image_size))
    for hook in hooks:
        hook.remove()
    return found


def operands(cell, height: int, width: int, device, dtype, form: str) -> list:
    """One cell's A, B (and bias map) built the way `form` says."""
    import torch

    from neonas.ops import functional as F

    if form == "gather-cast":
        return [t for t in cell.dense_operands(height, width, device, dtype) if t is not None]
    index = cell._dense_index(height, width, device)  # our own cell's gather indices
    params = [list(cell.left), list(cell.right)] + ([list(cell.bias)] if cell.bias else [])
    built = []
    for weights, where in zip(params, (index.left, index.right, index.bias), strict=False):
        if form == "cast-gather":
            built.append(F.gather_operand([w.to(dtype) for w in weights], where, index.plain))
            continue
        values = torch.cat([w.reshape(-1) for w in weights])
        flat = where.reshape(-1)
        inside = (flat < values.numel()).nonzero().squeeze(1)
        dense = values.new_zeros(flat.numel()).index_put((inside,), values[flat[inside]])
        built.append(dense.reshape(where.shape).to(dtype))
    return built


def build(cells, found, device, dtype, form: str) -> list:
    """Every cell's operands, in order."""
    return [
        t
        for cell, (_, h, w) in zip(cells, found, strict=True)
        for t in operands(cell, h, w, device, dtype, form)
    ]


def measure(device_name: str, repeats: int, model_name: str, image_size: int) -> list[dict]:
    """One row per (dtype, form): median milliseconds per pass and the gradient error."""
    import copy

    import torch

    device = torch.device(device_name)
    found = cells_and_sizes(model_name, image_size)
    cells = [cell.to(device) for cell, _, _ in found]
    params = [p for cell in cells for p in cell.parameters()]
    exact_cells = [copy.deepcopy(cell).double() for cell in cells]
    exact_params = [p for cell in exact_cells for p in cell.parameters()]
    exact_built = build(exact_cells, found, device, torch.float64, "gather-cast")

    def synced() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        generator = torch.Generator().manual_seed(0)
        upstream = [
            torch.randn(t.shape, generator=generator).to(device, dtype) for t in exact_built
        ]
        # float64 sums of the same (rounded) upstream gradients: the exact weight gradients
        exact = torch.autograd.grad(
            exact_built, exact_params, [u.double() for u in upstream], retain_graph=True
        )
        for form in FORMS:
            grads = torch.autograd.grad(build(cells, found, device, dtype, form), params, upstream)
            error = max(
                float((g.double() - e).abs().max() / e.abs().max().clamp_min(1e-30))
                for g, e in zip(grads, exact, strict=True)
            )
            seconds = []
            for _ in range(repeats):
                start = synced()
                torch.autograd.grad(build(cells, found, device, dtype, form), params, upstream)
                seconds.append(synced() - start)
            rows.append(
                {
                    "device": device_name,
                    "dtype": str(dtype).removeprefix("torch."),
                    "form": form,
                    "median_ms": round(1000 * statistics.median(seconds), 3),
                    "min_ms": round(1000 * min(seconds), 3),
                    "max_relative_grad_error": float(f"{error:.3g}"),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--model", default="neonext_tiny")
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args()
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.exit(2, "operand_backward.py: --device cuda needs a CUDA build and a GPU\n")
    if args.repeats < 1:
        parser.exit(2, "operand_backward.py: --repeats must be at least 1\n")
    measure(args.device, args.repeats, args.model, args.image_size)


if __name__ == "__main__":
    main()

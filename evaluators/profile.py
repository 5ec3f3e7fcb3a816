"""The profile of one model on one hardware target: what `neonas profile` prints.

Parameters and FLOPs per image (fvcore; NeoCell in its dense, patch-wise and tiled forms),
matrix efficiency, and latency for one forward of a batch, measured or predicted as the
target says, with a row per stage (stem, stages.i, head, or a timm model's top-level blocks).
The report is plain data, ready for JSON; printing it is the command's job.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evaluators.flops import FlopCount, count_flops
from evaluators.hardware import HardwareTarget
from evaluators.latency.result import LatencyResult
from evaluators.matrix_efficiency import MatrixEfficiency, matrix_efficiency_report
from evaluators.segments import stage_of
from neonas.errors import UserError
from neonas.models import default_input_size, resolve_model


def load_model_to_profile(
    name: str | None, config: str | Path | None, res: int | None = None
) -> tuple[nn.Module, str, tuple[int, int, int]]:
    """The model (eval mode), a label for it, and the (C, H, W) it runs at.

    A model that cannot run at `res` (e.g. a ViT with a fixed patch grid) is a UserError
    naming its default resolution, found by one forward pass before any timing starts.
    """
    model, arch = resolve_model(name, config, input_size=res)
    label = name or (arch.name if arch is not None else str(config))
    default = default_input_size(model)
    chw = (default[0], res, res) if res else default
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *chw))
    except (RuntimeError, ValueError, AssertionError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"{label} does not run at {chw[1]}x{chw[2]} ({reason}); try its default --res {default[1]}"
        ) from None
    return model, label, chw


def profile_model(
    model: nn.Module,
    chw: tuple[int, int, int],
    target: HardwareTarget,
    batch: int = 1,
    dtype: str | None = None,
    on_step: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """The report as plain data: counts, latency with its source and spread, per-stage rows.

    `on_step(text)` is told before the latency step (the slow one), e.g. for a spinner.
    """
    flops = count_flops(model, (1, *chw))
    efficiency = matrix_efficiency_report(model, chw)
    if on_step is not None:
        on_step(f"latency on {target.name} ({target.source})")
    latency = target.latency(model, chw, batch, dtype)
    return {
        "hw": target.name,
        "input_size": list(chw),
        "batch": batch,
        "dtype": latency.dtype,
        "params": flops.params,
        "flops": flops.flops,
        "flops_patchwise": flops.flops_patchwise,
        "flops_tiled": flops.flops_tiled,
        "latency_ms": latency.median_ms,
        "latency_source": latency.source,
        "latency_spread": latency.spread,
        "latency_iqr_ms": latency.iqr_ms,
        "latency_runs": latency.runs,
        "latency_stable": latency.stable,
        "device": latency.device,
        "latency_settings": latency.settings,
        "matrix_efficiency": efficiency.total,
        "stages": stage_rows(model, flops, efficiency, latency),
    }


def stage_rows(
    model: nn.Module, flops: FlopCount, efficiency: MatrixEfficiency, latency: LatencyResult
) -> list[dict[str, Any]]:
    """One row per stage with its params, FLOPs, matrix efficiency and latency (if broken down)."""
    names: list[str] = []
    params: dict[str, int] = {}
    for name, parameter in model.named_parameters():
        stage = stage_of(name.rsplit(".", 1)[0] if "." in name else "")
        params[stage] = params.get(stage, 0) + parameter.numel()
    for name, _ in model.named_modules():
        if name and stage_of(name) not in names:
            names.append(stage_of(name))
    # A container of stages ('stages') is not a row of its own: its stages are.
    names = [name for name in names if not any(other.startswith(f"{name}.") for other in names)]
    per_stage_efficiency = efficiency.grouped(stage_of)
    per_stage_latency: dict[str, float] = {}
    for row in latency.breakdown:
        stage = stage_of("" if row.name == "(top)" else row.name)
        per_stage_latency[stage] = per_stage_latency.get(stage, 0.0) + row.ms
    rows = []
    for name in names:
        stage_flops = flops.by_module.get(name, 0)
        if not stage_flops and not params.get(name):
            continue
        rows.append(
            {
                "name": name,
                "params": params.get(name, 0),
                "flops": stage_flops,
                "matrix_efficiency": per_stage_efficiency.get(name),
                "latency_ms": per_stage_latency.get(name) if latency.breakdown else None,
            }
        )
    return rows

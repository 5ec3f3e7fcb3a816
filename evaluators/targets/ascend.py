"""Huawei Ascend: measured where torch_npu and a device are present, else the analytic model."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from evaluators.hardware import HardwareTarget, TargetOptions, inference_form, register_hw
from evaluators.latency.ascend import DEFAULT_PROFILE, PROFILES, AscendProfile, predict_latency
from evaluators.latency.backends import npu_available
from evaluators.latency.result import LatencyResult
from evaluators.op_trace import meta_copy
from evaluators.targets.measured import MeasuredTarget
from neonas.errors import UserError


class PredictedAscend(HardwareTarget):
    """fp16 latency predicted by the roofline model of one Ascend chip."""

    source = "predicted"

    def __init__(self, name: str, profile: AscendProfile) -> None:
        self.name = name
        self.profile = profile

    def latency(
        self, model: nn.Module, input_shape: Sequence[int], batch: int = 1, dtype: str | None = None
    ) -> LatencyResult:
        if dtype not in (None, "fp16"):
            raise UserError(f"--hw {self.name} predicts fp16 (the cube's type), not {dtype}")
        # The deployed form, folded on a weightless (meta) copy: no second copy of the weights.
        return predict_latency(
            inference_form(meta_copy(model)), input_shape, self.profile, batch, hw=self.name
        )


@register_hw(
    "ascend",
    f"Ascend NPU: measured through torch_npu where a device is present, "
    f"else predicted for the {DEFAULT_PROFILE.name.replace('ascend', 'Ascend ')}",
)
def ascend_target(hw: str, argument: str | None, options: TargetOptions) -> HardwareTarget:
    """Measured beats predicted: the NPU when there is one, the default profile otherwise."""
    if npu_available():
        return MeasuredTarget(hw, "npu", options)
    return PredictedAscend(hw, DEFAULT_PROFILE)


@register_hw("ascend310", "predicted for the Ascend 310 (2 Da Vinci cores, LPDDR4X)")
def ascend310_target(hw: str, argument: str | None, options: TargetOptions) -> HardwareTarget:
    """Always the analytic model of the 310."""
    return PredictedAscend(hw, PROFILES["ascend310"])


@register_hw("ascend910", "predicted for the Ascend 910 (32 Da Vinci cores, HBM2)")
def ascend910_target(hw: str, argument: str | None, options: TargetOptions) -> HardwareTarget:
    """Always the analytic model of the 910."""
    return PredictedAscend(hw, PROFILES["ascend910"])

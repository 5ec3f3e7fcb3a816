"""Latency predicted from a lookup table measured by `neonas profile-lut` (`--hw lut:PATH`)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from evaluators.hardware import HardwareTarget, TargetOptions, inference_form, register_hw
from evaluators.latency.lut import LatencyTable
from evaluators.latency.result import LatencyResult
from neonas.errors import UserError


class LutTarget(HardwareTarget):
    """Sum of the table's unit latencies for the network's units."""

    source = "predicted"

    def __init__(self, name: str, table: LatencyTable) -> None:
        self.name = name
        self.table = table

    def latency(
        self, model: nn.Module, input_shape: Sequence[int], batch: int = 1, dtype: str | None = None
    ) -> LatencyResult:
        if dtype not in (None, self.table.dtype):
            raise UserError(f"the latency table {self.name} is for {self.table.dtype}, not {dtype}")
        if batch != self.table.batch:
            raise UserError(
                f"the latency table {self.name} is for batch {self.table.batch}, not {batch}"
            )
        return self.table.predict(inference_form(model), (batch, *input_shape[-3:]), hw=self.name)


@register_hw(
    "lut",
    "predicted from a latency table (see profile-lut)",
    argument="PATH",
    argument_required=True,
)
def lut_target(hw: str, argument: str | None, options: TargetOptions) -> HardwareTarget:
    """The table at PATH, loaded once."""
    return LutTarget(hw, LatencyTable.load(argument or ""))

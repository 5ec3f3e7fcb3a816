"""Hand-designed networks to beat: NeoNeXt-T (the paper's) and ConvNeXt-T (no NeoCell).

They are scored with the run's own evaluators (latency on --hw through the metric registry,
the run's zero-cost signal, on --data's images when it reads images) and marked on the Pareto
plot where they fit: the space's input size (both are 224 px ImageNet designs) and every
budget. Short training and supernet scores would need a training of their own, so with those
signals none are shown, and the run says why. Their weights are seeded as a trial's are
(neonas/search/seeding.py), keyed by their timm name: a reference scores the same in every run.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any

from neonas.arch import ArchConfig
from neonas.search.settings import SearchSettings
from neonas.si import format_si

# Plot label -> timm model name (neonext_tiny is registered by neonas.models).
REFERENCES = {"NeoNeXt-T": "neonext_tiny", "ConvNeXt-T": "convnext_tiny"}
REFERENCE_INPUT = 224


@dataclass(frozen=True)
class Reference:
    """One reference network as the run's evaluators see it."""

    name: str
    accuracy: float
    latency_ms: float
    flops: int
    params: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reference_points(
    example: ArchConfig, settings: SearchSettings
) -> tuple[list[Reference], list[str]]:
    """The references that fit the run (scored), and one note per reference left out."""
    if example.input_size != REFERENCE_INPUT:
        return [], [f"reference networks are {REFERENCE_INPUT} px designs, the space is not"]
    if settings.eval.short_training or settings.eval.supernet is not None:
        return [], [
            f"reference networks not scored: {settings.eval.accuracy_signal} needs their training"
        ]
    import timm

    import neonas.models  # noqa: F401  (registers neonext_tiny with timm)
    from evaluators.metrics import compute_metrics
    from neonas.search.seeding import seeded_build
    from neonas.search.trial import data_classes, zero_cost_signal

    shape = (example.in_chans, example.input_size, example.input_size)
    data = settings.eval.data
    classes = data_classes(data) if data is not None else example.num_classes
    points, notes = [], []
    for name, model_name in REFERENCES.items():
        key = reference_key(model_name)

        def build(model_name: str = model_name, classes: int = example.num_classes) -> Any:
            return timm.create_model(model_name, num_classes=classes).eval()

        model = seeded_build(build, settings.eval.seed, key)
        size = compute_metrics(model, shape, ["flops", "params"])
        over = _over_budget(size, settings)
        if over:
            notes.append(f"{name} not shown: {over}")
            continue
        latency = float(
            compute_metrics(model, shape, ["latency_ms"], settings.eval.hw)["latency_ms"]
        )
        budget = settings.eval.latency_budget_ms
        if budget is not None and latency > budget:
            notes.append(f"{name} not shown: {latency:.3g} ms over the budget of {budget:g} ms")
            continue
        # With --data, the head it would have there (built per draw), as the trials.
        signal = zero_cost_signal(
            functools.partial(build, classes=classes),
            key,
            shape,
            classes,
            settings.eval,
            first=model if classes == example.num_classes else None,
        )
        points.append(
            Reference(name, signal["accuracy"], latency, int(size["flops"]), int(size["params"]))
        )
    return points, notes


def reference_key(model_name: str) -> str:
    """What a reference's weights are seeded by: its timm name (it has no ArchConfig key)."""
    return f"reference {model_name}"


def _over_budget(size: dict[str, Any], settings: SearchSettings) -> str | None:
    for key, budget in (("flops", settings.budget_flops), ("params", settings.budget_params)):
        if budget is not None and size[key] > budget:
            return f"{format_si(size[key])} {key} over the budget of {format_si(budget)}"
    return None

"""A model-based sampler that hands its proposals to TPE while they keep being refused.

The searcher screens every proposal before it runs and tells the points that cannot run (over a
budget, duplicates) as PRUNED with their constraint values. TPE learns from those; Optuna's
GPSampler models COMPLETE trials only, so it never learns that a region is over budget and can
propose it again and again: under a tight latency budget the GP proposed over-budget networks
hundreds of times in a row (benchmarks/README.md, "Under a hard latency budget"), and the
searcher stops a run after MAX_REFUSED_IN_A_ROW refusals. Here, once the last `patience`
finished trials were all PRUNED, the proposals come from TPE until one runs; then the model
takes over again, with one more completed trial to learn from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

# Refusals in a row before TPE proposes: TPE's own longest runs under the tight budget of the
# benchmark were 3-7, so a model that is refused more often than that has lost its way.
DEFAULT_PATIENCE = 5


class RefusalFallbackSampler(optuna.samplers.BaseSampler):
    """`model` (e.g. GPSampler) for every proposal, except after `patience` refused trials in a
    row, when `fallback` (TPE, which learns from refused points) proposes instead."""

    def __init__(
        self,
        model: optuna.samplers.BaseSampler,
        fallback: optuna.samplers.BaseSampler,
        patience: int = DEFAULT_PATIENCE,
    ) -> None:
        self.model, self.fallback, self.patience = model, fallback, patience
        self._chosen: dict[int, optuna.samplers.BaseSampler] = {}  # trial number -> sampler

    def refused_in_a_row(self, study: optuna.Study) -> bool:
        """True when the last `patience` finished trials were all PRUNED."""
        finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
        recent = finished[-self.patience :]
        return len(recent) == self.patience and all(t.state == TrialState.PRUNED for t in recent)

    def _sampler(self, trial: FrozenTrial) -> optuna.samplers.BaseSampler:
        return self._chosen.get(trial.number, self.model)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        # Decided once per trial, so that all its parameters come from one sampler.
        chosen = self.fallback if self.refused_in_a_row(study) else self.model
        self._chosen[trial.number] = chosen
        chosen.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._sampler(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._sampler(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._sampler(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._chosen.pop(trial.number, self.model).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.model.reseed_rng()
        self.fallback.reseed_rng()

"""RefusalFallbackSampler: the model proposes, except after `patience` refusals in a row."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from neonas.search.refusal_fallback import RefusalFallbackSampler
from neonas.search.study import make_sampler


class Constant(optuna.samplers.BaseSampler):
    """Suggests `value` for every parameter: which sampler proposed is visible in the value."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.told: list[int] = []

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self.value

    def after_trial(self, study, trial, state, values):
        self.told.append(trial.number)


def ask(study: optuna.Study, state: TrialState) -> int:
    trial = study.ask()
    value = trial.suggest_categorical("x", [1, 2])
    trial.suggest_categorical("y", [1, 2])  # a second parameter, from the same sampler
    assert trial.params["y"] == value
    study.tell(trial, 0.0 if state == TrialState.COMPLETE else None, state=state)
    return value


def test_the_fallback_proposes_after_patience_refusals_until_one_runs() -> None:
    model, fallback = Constant(1), Constant(2)
    study = optuna.create_study(sampler=RefusalFallbackSampler(model, fallback, patience=3))
    assert ask(study, TrialState.COMPLETE) == 1
    assert [ask(study, TrialState.PRUNED) for _ in range(3)] == [1, 1, 1]
    assert ask(study, TrialState.PRUNED) == 2  # 3 refused in a row: the fallback proposes
    assert ask(study, TrialState.COMPLETE) == 2  # ... until one runs
    assert ask(study, TrialState.COMPLETE) == 1  # then the model again
    assert model.told == [0, 1, 2, 3, 6] and fallback.told == [4, 5]


def test_failed_trials_do_not_count_as_refusals() -> None:
    study = optuna.create_study(sampler=RefusalFallbackSampler(Constant(1), Constant(2), 2))
    ask(study, TrialState.PRUNED)
    ask(study, TrialState.FAIL)  # a failure breaks the run of refusals: it ran
    assert ask(study, TrialState.PRUNED) == 1


def test_the_gp_sampler_of_a_search_has_the_fallback() -> None:
    sampler = make_sampler("gp", seed=0, trials=32)
    assert isinstance(sampler, RefusalFallbackSampler)
    assert isinstance(sampler.model, optuna.samplers.GPSampler)
    assert isinstance(sampler.fallback, optuna.samplers.TPESampler)
    assert isinstance(make_sampler("tpe", seed=0, trials=32), optuna.samplers.TPESampler)

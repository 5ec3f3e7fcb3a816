"""Everything a search run is configured by, as one validated, serialisable object.

`SearchSettings` is written to `run.json` and read back on `--resume`; `EvalSettings` is the
part that travels to every Ray trial. Defaults here are the defaults of `neonas search`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from neonas.signals import (
    DEFAULT_ZERO_COST,
    SHORT_TRAINING,
    SUPERNET,
    TRIAL_SIGNALS,
    default_signal,
)
from neonas.train.recipe import SHORT_TRAINING_DEFAULTS

# MnasNet (Tan et al., CVPR 2019) soft-constraint exponent: reward = acc * (lat / target)^w.
MNAS_WEIGHT = -0.07
DEFAULT_TRIALS = 32
DEFAULT_MAX_FAILURES = 10  # a sweep in which every trial fails ends after this many
PROXY_RESOLUTION = 64  # zero-cost proxy and proxy-training resolution cap (pixels)


class EvalSettings(BaseModel):
    """How each trial scores its network: target hardware, accuracy proxy, budgets, objective."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hw: str = "ascend"
    objective: Literal["pareto", "scalar"] = "pareto"
    latency_budget_ms: float | None = Field(default=None, gt=0)
    latency_target_ms: float | None = Field(default=None, gt=0)
    latency_weight: float = MNAS_WEIGHT
    # What "accuracy" is in every trial. When not given: SUPERNET with a supernet checkpoint,
    # otherwise default_signal() of whether there is data (filled in before validation, so
    # run.json records the signal the run used).
    signal: Literal[(*TRIAL_SIGNALS, SUPERNET)] = DEFAULT_ZERO_COST  # type: ignore[valid-type]
    proxy_resolution: int = Field(default=PROXY_RESOLUTION, ge=8)
    proxy_batch: int = Field(default=16, ge=2)  # noise images per batch of a signal without data
    # Weight draws a zero-cost signal's score is the mean of, each seeded from the run's seed
    # and the network (neonas/search/seeding.py). 1: no measurement yet shows more ranks better.
    signal_draws: int = Field(default=1, ge=1)
    data: str | None = None  # an ImageFolder or CIFAR-10 python folder
    supernet: str | None = None  # a `supernet train` checkpoint: score by inherited weights on data
    # Short training's defaults have one home, SHORT_TRAINING_DEFAULTS (neonas/train/recipe.py).
    epochs: int = Field(default=SHORT_TRAINING_DEFAULTS.epochs, ge=1)
    # None: SHORT_TRAINING_DEFAULTS.image_size(the network's input), i.e. min(input, 64)
    image_size: int | None = Field(default=None, ge=8)
    batch_size: int = Field(default=SHORT_TRAINING_DEFAULTS.batch_size, ge=1)
    max_train_images: int = Field(default=SHORT_TRAINING_DEFAULTS.max_train_images, ge=1)
    max_val_images: int = Field(default=SHORT_TRAINING_DEFAULTS.max_val_images, ge=1)
    cpus_per_trial: int = Field(default=1, ge=1)
    seed: int = 0

    @property
    def asha_grace_epochs(self) -> int:
        """Epochs before ASHA may stop a trial: half the run, so it never ranks the chance-level
        scores of the first epochs (measured in benchmarks/search_data_defaults.py)."""
        return max(1, self.epochs // 2)

    @property
    def short_training(self) -> bool:
        """Whether each trial trains its network (epochs, ASHA): the short-training signal."""
        return self.signal == SHORT_TRAINING

    @property
    def accuracy_signal(self) -> str:
        """What `accuracy` is in this run, as the progress, summary, plot and export name it.

        The one place these names are decided: the signal's own name, but short training's
        says that it is validation top-1.
        """
        return "short-training top-1" if self.short_training else self.signal

    @model_validator(mode="before")
    @classmethod
    def _default_signal(cls, values: Any) -> Any:
        """Fill in the signal a run without one uses; read run.json files written before the
        signal had its own field (their `proxy` applied without data only)."""
        if not isinstance(values, dict) or values.get("signal") is not None:
            return values
        values = dict(values)
        legacy = values.pop("proxy", None)
        has_data = values.get("data") is not None
        if values.get("supernet") is not None:
            values["signal"] = SUPERNET
        elif legacy is not None:
            values["signal"] = SHORT_TRAINING if has_data else legacy  # what it meant then
        else:
            values["signal"] = default_signal(has_data)
        return values

    @model_validator(mode="after")
    def _signal_has_what_it_reads(self) -> EvalSettings:
        if self.signal == SHORT_TRAINING and self.data is None:
            raise ValueError("short-training trains each network on images: give --data DIR too")
        if (self.signal == SUPERNET) != (self.supernet is not None):
            raise ValueError(
                "a supernet scores by inherited weights: give --supernet CKPT and no other signal"
            )
        if self.supernet is not None and self.data is None:
            raise ValueError("--supernet scores on held-out images: give --data DIR too")
        if self.signal_draws > 1 and self.signal in (SHORT_TRAINING, SUPERNET):
            raise ValueError(
                f"signal draws average a zero-cost signal over initial weights; {self.signal} "
                "scores one network's training: leave them at 1"
            )
        return self

    @model_validator(mode="after")
    def _scalar_has_target(self) -> EvalSettings:
        if self.objective == "scalar" and self.latency_target_ms is None:
            raise ValueError(
                "the scalar objective needs a latency target (--latency-target or --latency-budget)"
            )
        return self


class SearchSettings(BaseModel):
    """One run: where it lives, the space, the budgets, how many trials and how they run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    results_dir: str = "results"
    space: str = "neonext"
    budget_flops: int | None = Field(default=None, gt=0)
    budget_params: int | None = Field(default=None, gt=0)
    trials: int = Field(default=DEFAULT_TRIALS, ge=1)  # completed at full fidelity
    max_failures: int = Field(default=DEFAULT_MAX_FAILURES, ge=1)  # failed trials in a row
    time_budget_s: float | None = Field(default=None, gt=0)
    concurrency: int | None = Field(default=None, ge=1)  # None: the cluster's CPUs / cpus_per_trial
    # A share of a GPU each trial asks Ray for (0: none); short training and supernet scoring
    # then run on cuda (zero-cost signals stay on the CPU).
    gpus_per_trial: float = Field(default=0.0, ge=0)
    sampler: Literal["tpe", "nsga2"] = "tpe"
    address: str | None = None
    storage: str | None = None
    eval: EvalSettings = EvalSettings()

    @model_validator(mode="after")
    def _gpus_ray_can_give(self) -> SearchSettings:
        if self.gpus_per_trial > 1 and not float(self.gpus_per_trial).is_integer():
            raise ValueError(
                f"--gpus-per-trial {self.gpus_per_trial:g}: Ray gives a trial a share of one "
                "GPU (up to 1) or whole GPUs (2, 3, ...), not a mix"
            )
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.results_dir) / self.name

    @property
    def seed(self) -> int:
        return self.eval.seed

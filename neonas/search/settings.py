"""Everything a search run is configured by, as one validated, serialisable object, and the
options of `neonas search` that set it, each declared once.

`SearchSettings` is written to `run.json` and read back on `--resume`; `EvalSettings` is the
part that travels to every Ray trial. Defaults here are the defaults of `neonas search`:
`SEARCH_OPTIONS` (below the models) declares each option's flag, setting, help and whether a
resume may change it, and the command's argparse options, the help's defaults, the resume rule
and the option names of error messages all derive from it (neonas/options.py).
`settings_from_options` is the one place a command line's values are validated.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from neonas.errors import UserError
from neonas.options import Option, flags, non_negative_float, positive_int
from neonas.si import parse_duration, parse_ms, parse_si
from neonas.signals import (
    DEFAULT_WITH_DATA,
    DEFAULT_ZERO_COST,
    SHORT_TRAINING,
    SUPERNET,
    SUPERNET_VAL_IMAGES,
    TRIAL_SIGNALS,
    default_signal,
)
from neonas.train.recipe import SHORT_TRAINING_DEFAULTS

# MnasNet (Tan et al., CVPR 2019) soft-constraint exponent: reward = acc * (lat / target)^w.
MNAS_WEIGHT = -0.07
DEFAULT_TRIALS = 32
DEFAULT_MAX_FAILURES = 10  # a sweep in which every trial fails ends after this many
PROXY_RESOLUTION = 64  # zero-cost proxy and short-training resolution cap (pixels)


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
    # Validation images a trial that learns from data is scored on. None: filled in from the
    # signal (val_images_for), so run.json records the number the run used.
    max_val_images: int | None = Field(default=None, ge=1)
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
    def _defaults_of_other_fields(cls, values: Any) -> Any:
        """Fill in the defaults that depend on other fields: the signal (signal_of) and the
        scalar reward's latency target (the latency budget)."""
        if not isinstance(values, dict):
            return values
        values = dict(values)
        values["signal"] = cls.signal_of(values)
        values.pop("proxy", None)
        if values.get("max_val_images") is None:
            values["max_val_images"] = val_images_for(values["signal"])
        if values.get("latency_target_ms") is None:
            values["latency_target_ms"] = values.get("latency_budget_ms")
        return values

    @staticmethod
    def signal_of(values: Mapping[str, Any]) -> str:
        """The signal of a run with these fields: the one given, else SUPERNET with a supernet
        checkpoint, else default_signal() of whether there is data. The one place this is
        decided. Reads run.json files written before the signal had its own field (their
        `proxy` applied without data only)."""
        if values.get("signal") is not None:
            return values["signal"]
        has_data = values.get("data") is not None
        legacy = values.get("proxy")
        if values.get("supernet") is not None:
            return SUPERNET
        if legacy is not None:
            return SHORT_TRAINING if has_data else legacy  # what it meant then
        return default_signal(has_data)

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


def val_images_for(signal: str) -> int:
    """The validation images a trial scored with `signal` is validated on: SUPERNET_VAL_IMAGES
    (2,000) for the supernet, where 500 left its ranking noisy (neonas/signals.py), and short
    training's 500 otherwise (zero-cost signals validate nothing)."""
    return SUPERNET_VAL_IMAGES if signal == SUPERNET else SHORT_TRAINING_DEFAULTS.max_val_images


# The samplers `search --sampler` takes, declared once: the settings field, the flag's choices
# and the benchmarks read them from here.
SamplerName = Literal["tpe", "nsga2", "gp"]
SAMPLER_NAMES: tuple[str, ...] = get_args(SamplerName)


def sampler_for(signal: str) -> str:
    """The default sampler of a run scoring with `signal`: GP where the trials learn from data
    (the supernet, short training), TPE for the zero-cost signals.

    On the supernet signal GP reached random sampling's 256-trial hypervolume in 36 trials
    and TPE in 108 (10 seeds each; benchmarks/README.md, "Samplers against random"), and GP's
    own work per proposal (about 1-2 s, growing with the trials) is small beside such a trial.
    Beside a zero-cost trial of about a second it doubles the run: the main job took 89 s with
    GP and 47 s with TPE, for a front 20 % larger in hypervolume (5 seeds;
    benchmarks/main_job_sampler.py), so the cheaper TPE stays the zero-cost default.
    """
    return "gp" if signal in (SUPERNET, SHORT_TRAINING) else "tpe"


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
    # None: filled in from the signal (sampler_for), so a validated run always names its own.
    sampler: SamplerName | None = None
    address: str | None = None
    storage: str | None = None
    eval: EvalSettings = EvalSettings()

    @model_validator(mode="before")
    @classmethod
    def _sampler_of_the_signal(cls, values: Any) -> Any:
        if not isinstance(values, dict) or values.get("sampler") is not None:
            return values
        evaluation = values.get("eval", {})
        if isinstance(evaluation, EvalSettings):
            signal = evaluation.signal
        else:
            signal = EvalSettings.signal_of(evaluation)
        return {**values, "sampler": sampler_for(signal)}

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


# --- the options of `neonas search`, each declared once ------------------------------------


def absolute(path: str | None, uri_ok: bool = False) -> str | None:
    """Trials run in their own folders (and maybe on other nodes): paths must not be relative.

    With `uri_ok`, a URI such as s3://bucket/prefix (Ray Tune storage) is kept as it is.
    """
    if not path or (uri_ok and "://" in path):
        return path
    return str(Path(path).expanduser().resolve())


def _signal_help() -> str:
    default = (
        f"{DEFAULT_ZERO_COST}, with or without --data"
        if DEFAULT_WITH_DATA == DEFAULT_ZERO_COST
        else f"{DEFAULT_ZERO_COST}; with --data {DEFAULT_WITH_DATA}"
    )
    return (
        f"accuracy signal of each trial: {', '.join(TRIAL_SIGNALS)} (default {default}; "
        "docs/search.md, 'Accuracy signals')"
    )


TARGET = "target and budgets"
WHAT = "what to search and how"
RUN = "run folder and cluster"

# Order: the order of `neonas search --help`. `resumable`: what `--resume` may change; every
# other option defines the run and must stay as it was. --name, --results-dir, --resume and
# --force name the run folder rather than set it (neonas/commands/search.py).
SEARCH_OPTIONS: tuple[Option, ...] = (
    Option(
        "--hw",
        "eval.hw",
        "latency target: ascend (predicted Ascend 310), cpu, cuda, npu, ... (default {default})",
        group=TARGET,
    ),
    Option(
        "--budget",
        "budget_flops",
        "hard FLOPs limit (multiply-adds, as `profile`), e.g. 4.4G",
        convert=partial(parse_si, what="--budget"),
        metavar="FLOPS",
        group=TARGET,
    ),
    Option(
        "--params-budget",
        "budget_params",
        "hard parameter limit, e.g. 30M",
        convert=partial(parse_si, what="--params-budget"),
        metavar="N",
        group=TARGET,
    ),
    Option(
        "--latency-budget",
        "eval.latency_budget_ms",
        "hard latency limit on --hw, e.g. 2ms",
        convert=partial(parse_ms, what="--latency-budget"),
        metavar="TIME",
        group=TARGET,
    ),
    Option(
        "--space",
        "space",
        "search space: neonext, tiny, or a YAML file (default {default})",
        metavar="NAME|FILE",
        group=WHAT,
    ),
    Option(
        "--trials",
        "trials",
        "completed trials to reach (default {default})",
        type=positive_int,
        metavar="N",
        resumable=True,
        group=WHAT,
    ),
    Option(
        "--max-failures",
        "max_failures",
        "end the run after N trials in a row failed (default {default})",
        type=positive_int,
        metavar="N",
        resumable=True,
        group=WHAT,
    ),
    Option(
        "--time-budget",
        "time_budget_s",
        "stop this invocation after e.g. 90s, 20m, 2h",
        convert=parse_duration,
        metavar="DURATION",
        resumable=True,
        group=WHAT,
    ),
    Option(
        "--objective",
        "eval.objective",
        "pareto: accuracy signal vs latency; scalar: MnasNet reward (default {default})",
        choices=("pareto", "scalar"),
        group=WHAT,
    ),
    Option(
        "--latency-target",
        "eval.latency_target_ms",
        "T of the scalar reward acc*(lat/T)^w (default: --latency-budget)",
        convert=partial(parse_ms, what="--latency-target"),
        metavar="TIME",
        group=WHAT,
    ),
    Option(
        "--latency-weight",
        "eval.latency_weight",
        "w of the scalar reward (default {default}, MnasNet)",
        type=float,
        metavar="W",
        group=WHAT,
    ),
    Option(
        "--sampler",
        "sampler",
        "Optuna sampler (default: gp when trials learn from data, --supernet or "
        "short-training; tpe for zero-cost signals)",
        choices=SAMPLER_NAMES,
        group=WHAT,
    ),
    Option(
        "--signal",
        "eval.signal",
        _signal_help(),
        choices=TRIAL_SIGNALS,
        metavar="NAME",
        aliases=("--proxy",),  # its name before short training became one of the choices
        group=WHAT,
    ),
    Option(
        "--signal-draws",
        "eval.signal_draws",
        "score each network by the mean of a zero-cost signal over K seeded weight draws "
        "(default {default}; K times the signal's cost)",
        type=positive_int,
        metavar="K",
        group=WHAT,
    ),
    Option(
        "--data",
        "eval.data",
        "ImageFolder or CIFAR-10 python folder: the images signals read and train on",
        convert=absolute,
        metavar="DIR",
        group=WHAT,
    ),
    Option(
        "--supernet",
        "eval.supernet",
        "score each trial by its weights in this `supernet train` checkpoint (needs --data)",
        convert=absolute,
        metavar="CKPT",
        group=WHAT,
    ),
    Option(
        "--epochs",
        "eval.epochs",
        "epochs of --signal short-training (default {default}; ASHA may stop weak trials "
        "from half-way)",
        type=positive_int,
        metavar="N",
        group=WHAT,
    ),
    Option(
        "--train-images",
        "eval.max_train_images",
        "training images per trial of --signal short-training (default {default})",
        type=positive_int,
        metavar="N",
        group=WHAT,
    ),
    Option(
        "--val-images",
        "eval.max_val_images",
        f"validation images each trial is scored on, with --supernet or --signal "
        f"short-training (default {SUPERNET_VAL_IMAGES:,} with --supernet, "
        f"{SHORT_TRAINING_DEFAULTS.max_val_images} with short training; fewer if the split "
        "has fewer)",
        type=positive_int,
        metavar="N",
        group=WHAT,
    ),
    Option(
        "--image-size",
        "eval.image_size",
        f"resolution of --signal short-training (default min(input, {PROXY_RESOLUTION}))",
        type=positive_int,
        metavar="PX",
        group=WHAT,
    ),
    Option(
        "--seed",
        "eval.seed",
        "seed of the sampler and of every network's weights (default {default})",
        type=int,
        group=WHAT,
    ),
    Option(
        "--concurrency",
        "concurrency",
        "trials at a time (default: CPUs in the Ray cluster)",
        type=positive_int,
        metavar="N",
        resumable=True,
        group=RUN,
    ),
    Option(
        "--gpus-per-trial",
        "gpus_per_trial",
        "share of a GPU each trial asks Ray for, e.g. 0.25 or 1 (default {default}: trials on "
        "CPUs); short training and --supernet scoring then run on it",
        type=non_negative_float,
        metavar="X",
        resumable=True,
        group=RUN,
    ),
    Option(
        "--address",
        "address",
        "an existing Ray cluster, e.g. 10.0.0.1:6379 (default: RAY_ADDRESS if set, else a "
        "local Ray; local: a Ray of its own)",
        resumable=True,
        group=RUN,
    ),
    Option(
        "--storage",
        "storage",
        "shared storage for the Ray Tune experiment on a multi-node cluster",
        convert=partial(absolute, uri_ok=True),
        metavar="PATH",
        resumable=True,
        group=RUN,
    ),
)
OPTION_FLAGS = flags(SEARCH_OPTIONS)  # setting -> flag


def setting_default(setting: str) -> Any:
    """The model's default of a setting by dotted path, e.g. 'eval.epochs' -> 6."""
    model: Any = SearchSettings
    *parents, last = setting.split(".")
    for part in parents:
        model = model.model_fields[part].annotation
    return model.model_fields[last].default


def search_defaults() -> dict[str, Any]:
    """setting -> default, for the help of each declared option."""
    return {option.setting: setting_default(option.setting) for option in SEARCH_OPTIONS}


def settings_from_options(given: Mapping[str, Any], name: str, results_dir: str) -> SearchSettings:
    """SearchSettings of a new run from the options given (setting -> value, as
    neonas.options.given_settings returns); UserError, in one line, for values that break a
    rule or would silently do nothing."""
    refuse_inapplicable(given)
    fields: dict[str, Any] = {"name": name, "results_dir": results_dir}
    for setting, value in given.items():
        put(fields, setting, value)
    return validated(fields)


def put(fields: dict[str, Any], setting: str, value: Any) -> None:
    """fields[setting] = value for a dotted setting ('eval.hw' -> fields['eval']['hw'])."""
    *parents, last = setting.split(".")
    for part in parents:
        fields = fields.setdefault(part, {})
    fields[last] = value


def validated(fields: Mapping[str, Any]) -> SearchSettings:
    """SearchSettings.model_validate(fields), a broken rule as one line naming the option."""
    try:
        return SearchSettings.model_validate(dict(fields))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if where in OPTION_FLAGS:
            where = OPTION_FLAGS[where]
        elif where in ("", "eval"):  # a rule of a whole model names its options itself
            where = ""
        raise UserError(f"{where + ': ' if where else ''}{message}") from None


# Options that set short training, and those that set the scalar reward.
SHORT_TRAINING_SETTINGS = ("eval.epochs", "eval.image_size", "eval.max_train_images")
SCALAR_SETTINGS = ("eval.latency_target_ms", "eval.latency_weight")


def refuse_inapplicable(given: Mapping[str, Any]) -> None:
    """UserError for an option that would silently do nothing in this run."""
    has_data = given.get("eval.data") is not None
    supernet = given.get("eval.supernet") is not None
    chosen = given.get("eval.signal")
    if supernet and chosen is not None:
        raise UserError("--supernet scores each trial by its inherited weights: leave out --signal")
    if chosen == SHORT_TRAINING and not has_data:
        raise UserError(f"--signal {SHORT_TRAINING} trains each network: add --data DIR")
    signal = EvalSettings.signal_of({k.removeprefix("eval."): v for k, v in given.items()})
    for setting in SHORT_TRAINING_SETTINGS:
        if setting not in given:
            continue
        flag = OPTION_FLAGS[setting]
        if supernet:
            raise UserError(
                f"{flag} sets short training: with --supernet each trial is scored by its "
                "inherited weights; leave it out"
            )
        if signal != SHORT_TRAINING:
            raise UserError(
                f"{flag} sets short training, and this run's signal is {signal}: add "
                f"--signal {SHORT_TRAINING}{'' if has_data else ' --data DIR'} or leave it out"
            )
    if "eval.max_val_images" in given and not supernet and signal != SHORT_TRAINING:
        raise UserError(
            f"--val-images sets how trials that learn from data are validated, and this run's "
            f"signal {signal} validates nothing: add --supernet CKPT or --signal "
            f"{SHORT_TRAINING}, or leave it out"
        )
    if given.get("eval.objective", setting_default("eval.objective")) == "pareto":
        for setting in SCALAR_SETTINGS:
            if setting in given:
                raise UserError(
                    f"{OPTION_FLAGS[setting]} sets the scalar reward: add --objective scalar "
                    "or leave it out (the Pareto objective keeps latency as its own axis)"
                )

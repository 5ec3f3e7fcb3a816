"""Command-line options declared once, beside the settings they set, and the one resume rule.

A command's options are a tuple of `Option`: the flag, the setting it sets (a dotted path such
as `eval.hw`), how argparse checks a value, how the value becomes the setting's, the help and
whether a resume may change it. From that tuple come the argparse options (with each default
shown in the help, read from the settings model rather than restated), the option <-> setting
mapping of error messages, and the resume rule of `search`, `train` and `supernet train`:

    A resume continues a run with the values it recorded. An option given again with the
    recorded value is accepted (the command that started a run, re-run with --resume added,
    continues it); a different value is refused in one line naming it, unless the option is
    declared `resumable` (then the new value is taken). Keys the record lacks (runs from
    before an option existed) are not checked.

argparse gets `default=None` for every declared option, so that "given" and "left at its
default" stay apart: the defaults live in the settings model alone.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from neonas.errors import UserError


@dataclass(frozen=True)
class Option:
    """One option of a command, declared once.

    setting: the field it sets, dotted for a nested model ("eval.hw").
    type: argparse's check of one value (a malformed value is argparse's one-line error).
    convert: the given value as the setting's value (e.g. "4.4G" -> 4400000000); None: as is.
    help: may name `{default}`, filled in from the settings model.
    resumable: whether a resume may change it (otherwise it must equal the recorded value).
    """

    flag: str
    setting: str
    help: str
    type: Callable[[str], Any] | None = None
    convert: Callable[[Any], Any] | None = None
    resumable: bool = False
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()
    group: str | None = None
    action: str | type[argparse.Action] | None = None

    @property
    def dest(self) -> str:
        """The argparse attribute: --train-images -> train_images."""
        return self.flag.removeprefix("--").replace("-", "_")

    def help_text(self, defaults: Mapping[str, Any]) -> str:
        return self.help.format(default=shown(defaults.get(self.setting)))


def add_options(
    parser: Any,
    options: Iterable[Option],
    defaults: Mapping[str, Any],
    groups: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Add `options` to `parser`, each in its group (made on first use); returns the groups.

    defaults: setting -> its default, for the help's `{default}`.
    """
    groups = {} if groups is None else groups
    for option in options:
        target = parser
        if option.group is not None:
            if option.group not in groups:
                groups[option.group] = parser.add_argument_group(option.group)
            target = groups[option.group]
        extra: dict[str, Any] = {}
        for name in ("type", "metavar", "choices", "action"):
            if getattr(option, name) is not None:
                extra[name] = getattr(option, name)
        target.add_argument(
            option.flag,
            *option.aliases,
            dest=option.dest,
            default=None,
            help=option.help_text(defaults),
            **extra,
        )
    return groups


def given_settings(args: argparse.Namespace, options: Iterable[Option]) -> dict[str, Any]:
    """setting -> value of each option the command line gave (converted), keyed by setting."""
    given = {}
    for option in options:
        value = getattr(args, option.dest, None)
        if value is not None:
            given[option.setting] = option.convert(value) if option.convert else value
    return given


def flags(options: Iterable[Option]) -> dict[str, str]:
    """setting -> flag, the mapping error messages name options by."""
    return {option.setting: option.flag for option in options}


def resumable(options: Iterable[Option]) -> tuple[str, ...]:
    """The settings a resume may change."""
    return tuple(option.setting for option in options if option.resumable)


def check_resumed(
    given: Mapping[str, Any],
    recorded: Mapping[str, Any],
    options: Iterable[Option] = (),
    *,
    run: str = "this training",
    instead: str = "start a new --output",
    names: Mapping[str, str] | None = None,
    list_resumable: bool = False,
) -> None:
    """The resume rule (module docstring): refuse the first given option that differs from the
    recorded value and may not change, in one line naming it.

    given / recorded: setting -> value. options: the declarations (flags, `resumable`);
    `names` overrides how a setting is named (default its flag, else --setting-name).
    run: how the message names the run; instead: what to do to use the new value;
    list_resumable: name the options a resume may change (when every one is declared).
    """
    declared = list(options)
    may_change = set(resumable(declared))
    named = {**flags(declared), **(names or {})}
    for key, value in given.items():
        if key in may_change or key not in recorded or plain(value) == plain(recorded[key]):
            continue
        saved = recorded[key]
        flag = named.get(key, "--" + key.split(".")[-1].replace("_", "-"))
        was = f"{run}, which started without it" if saved is None else f"the {shown(saved)} {run}"
        started = "" if saved is None else " started with"
        hint = f" (a resume may change only {', '.join(named[k] for k in sorted(may_change))})"
        raise UserError(
            f"{flag} {shown(value)} differs from {was}{started}: leave it out to continue, or "
            f"{instead}" + (hint if list_resumable and may_change else "")
        )


def shown(value: Any) -> str:
    """A value as the user typed it: 0.003 rather than 0.0030000000000000001."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def plain(value: Any) -> Any:
    """Tuples as lists, so a value compares equal after a round trip through a file."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


# --- argparse value types: a bad value becomes argparse's one-line error ---------------------


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _parse(text, int, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    value = _parse(text, int, "an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def non_negative_float(text: str) -> float:
    """A number >= 0."""
    value = _parse(text, float, "a number")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def positive_float(text: str) -> float:
    """A number > 0."""
    value = _parse(text, float, "a number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def _parse(text: str, kind: type, what: str):  # noqa: ANN202 (int or float, as `kind`)
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None

"""What `train --resume` and `supernet train --resume` share: the rule for options given
again, and the note an interrupted run ends with.

A resume continues with the options recorded in the checkpoint. The command that started a
run, re-run with --resume added, must continue it: an option equal to the recorded value is
accepted, one that differs is refused in one line naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from neonas.errors import UserError


def check_resumed_options(
    given: Mapping[str, Any],
    recorded: Mapping[str, Any],
    flags: Mapping[str, str] | None = None,
) -> None:
    """Refuse a resume whose given options differ from the recorded ones, naming the first.

    given: the options the command line gave (leave out those it did not give).
    flags: how each key is named in the error (default `--key-name`). Keys the record lacks
    (runs from before an option existed) are not checked.
    """
    for key, value in given.items():
        if key not in recorded or plain(value) == plain(recorded[key]):
            continue
        saved = recorded[key]
        flag = (flags or {}).get(key, "--" + key.replace("_", "-"))
        was = (
            "this training, which started without it"
            if saved is None
            else f"the {shown(saved)} this training started with"
        )
        raise UserError(
            f"{flag} {shown(value)} differs from {was}: leave it out to continue, or start a new "
            "--output"
        )


def stopped_note(checkpoint: Path, done: int) -> str:
    """What a run stopped in the middle of epoch `done + 1` leaves to resume from."""
    if done == 0:
        return "stopped in epoch 1, before any checkpoint"
    return (
        f"stopped in epoch {done + 1}; {checkpoint} keeps epoch {done}: add --resume to "
        "continue once the data is fixed"
    )


def shown(value: Any) -> str:
    """A value as the user typed it: 0.003 rather than 0.0030000000000000001."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def plain(value: Any) -> Any:
    """Tuples as lists, so a value compares equal after a round trip through a checkpoint."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value

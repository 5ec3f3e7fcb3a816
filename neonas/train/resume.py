"""The note an interrupted `train` or `supernet train` run ends with.

The rule for options given again to a resume is neonas/options.py's check_resumed, the one
`search --resume` applies too; the options are declared in neonas/train/options.py.
"""

from __future__ import annotations

from pathlib import Path


def stopped_note(checkpoint: Path, done: int) -> str:
    """What a run stopped in the middle of epoch `done + 1` leaves to resume from."""
    if done == 0:
        return "stopped in epoch 1, before any checkpoint"
    return (
        f"stopped in epoch {done + 1}; {checkpoint} keeps epoch {done}: add --resume to "
        "continue once the data is fixed"
    )

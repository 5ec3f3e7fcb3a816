"""Training checkpoints: written atomically, readable with torch.load(weights_only=True).

A checkpoint holds only tensors and plain containers (the recipe and model spec as dicts), so
loading one never runs code, and `neonas evaluate` can rebuild the model without the original files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from neonas.errors import UserError
from neonas.io import atomic_open

FORMAT = "neonas-train-checkpoint"
VERSION = 1
LAST = "last.pt"
BEST = "best.pt"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """torch.save atomically: a crash mid-write leaves the previous checkpoint intact."""
    with atomic_open(path, "wb") as handle:
        torch.save({"format": FORMAT, "version": VERSION, **state}, handle)
    return Path(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint written by `save_checkpoint`; anything else is one UserError line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path} is not a readable checkpoint ({first})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path} is not a neonas training checkpoint (written by `neonas train`)")
    if state.get("version") != VERSION:
        raise UserError(
            f"{path}: checkpoint version {state.get('version')} is not supported (this neonas reads {VERSION})"
        )
    return state

"""Few-shot supernets: one sub-supernet per transition plan, each started from the whole.

One supernet shares every weight among all the space's networks, and on the tiny space the
transition plan decides accuracy most; sharing across plans is where the supernet's ranking
errs. Few-shot NAS (Zhao et al., ICML 2021) divides the supernet along such a choice: each
part is a copy of the trained supernet, trained on for a few epochs on its own networks
only, and a candidate is scored by the part that holds it. On NeoCell-Bench's digits table
the parts by plan ranked at tau +0.71 against +0.61 for the whole supernet (benchmarks/
README.md, "NeoCell-Bench").

    neonas supernet few-shot results/supernet/tiny/last.pt --output results/supernet/tiny-few-shot
    neonas search --space tiny --supernet results/supernet/tiny-few-shot --data DIR

A few-shot folder holds `few_shot.json` (written when every part has finished) and one
`supernet train` run folder per plan (trained by few_shot_training.py). Wherever a supernet
checkpoint is read (`search --supernet`, `supernet score`, `supernet extract`), a few-shot
folder can stand in for it: `checkpoint_for` names the part that holds a network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neonas.arch import ArchConfig
from neonas.errors import UserError
from neonas.space import plan_of
from neonas.supernet.checkpoint import check_one_supernet_for

FEW_SHOT_FILE = "few_shot.json"


@dataclass(frozen=True)
class FewShot:
    """A finished few-shot folder: the base supernet and the checkpoint of each plan's part."""

    folder: Path
    base: str
    epochs: int
    parts: dict[str, Path]  # plan name -> the part's last.pt

    def checkpoint_for(self, config: ArchConfig) -> Path:
        """The part that holds `config`; UserError if there is none for its plan."""
        plan = plan_of(config)
        if plan not in self.parts:
            raise UserError(
                f"the few-shot supernet in {self.folder} has no part for transition plan {plan} "
                f"({', '.join(self.parts)})"
            )
        return self.parts[plan]


def load_few_shot(path: str | Path) -> FewShot | None:
    """The few-shot supernet in `path` (its folder or its few_shot.json), or None when `path`
    is a file of one supernet; UserError for a folder that is not a finished few-shot run."""
    path = Path(path).expanduser()
    if path.is_file() and path.name != FEW_SHOT_FILE:
        return None
    folder = path.parent if path.name == FEW_SHOT_FILE else path
    record = folder / FEW_SHOT_FILE
    if not record.is_file():
        if folder.is_dir():
            raise UserError(
                f"{folder} is a folder without {FEW_SHOT_FILE}: give a supernet's last.pt or a "
                "finished `neonas supernet few-shot` folder (run it again to finish it)"
            )
        raise UserError(f"no supernet checkpoint or few-shot folder at {path}")
    info = json.loads(record.read_text())
    parts = {plan: folder / relative for plan, relative in info["parts"].items()}
    return FewShot(folder=folder, base=info["base"], epochs=int(info["epochs"]), parts=parts)


def checkpoint_for(path: str | Path, config: ArchConfig) -> Path:
    """The supernet checkpoint that holds `config`: `path` itself, or a few-shot part."""
    few_shot = load_few_shot(path)
    return Path(path).expanduser() if few_shot is None else few_shot.checkpoint_for(config)


def check_supernet_for(path: str | Path, space: Any, data_dir: str | Path) -> None:
    """UserError unless the supernet in `path` holds every network of `space` and was trained
    on the classes of `data_dir` (checked before a search starts its trials). For few-shot
    parts, each plan of `space` must have a part that holds it."""
    few_shot = load_few_shot(path)
    if few_shot is None:
        check_one_supernet_for(path, space, data_dir)
        return
    for plan in space.plan_names:
        if plan not in few_shot.parts:
            raise UserError(
                f"the few-shot supernet in {few_shot.folder} has no part for transition plan "
                f"{plan} of space {space.name!r}"
            )
        check_one_supernet_for(few_shot.parts[plan], space.with_plan(plan), data_dir)

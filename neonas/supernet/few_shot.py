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
`supernet train` run folder per plan. Wherever a supernet checkpoint is read (`search
--supernet`, `supernet score`, `supernet extract`), a few-shot folder can stand in for it:
`checkpoint_for` names the part that holds a network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neonas.arch import ArchConfig
from neonas.errors import UserError
from neonas.io import write_json_atomic
from neonas.space import SearchSpace, ratio_plan_text
from neonas.supernet.checkpoint import SPEC_KEY, supernet_space
from neonas.train.checkpoint import LAST, load_checkpoint
from neonas.train.options import FEW_SHOT_EPOCHS

FEW_SHOT_FILE = "few_shot.json"
# The base training's options each part trains with (the parts have their own epochs).
PART_OPTIONS = (
    "batch_size",
    "lr",
    "seed",
    "random_subnets",
    "sampling",
    "max_train_images",
    "max_val_images",
    "calib_images",
)


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


def plan_of(config: ArchConfig) -> str:
    """A network's transition plan, as SearchSpace.plan_names writes it."""
    return ratio_plan_text(tuple(stage.sampling for stage in config.stages[1:]))


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


def part_folder(plan: str) -> str:
    """'4:3 1:1' -> 'plan-4-3_1-1': a folder name per plan."""
    return "plan-" + plan.replace(":", "-").replace(" ", "_")


def train_few_shot(
    checkpoint: str | Path,
    output_dir: str | Path,
    *,
    epochs: int = FEW_SHOT_EPOCHS,
    data_dir: str | Path | None = None,
    on_part: Any = None,
    **options: Any,
) -> Path:
    """Train (or continue) one sub-supernet per transition plan of `checkpoint`'s space, each
    started from its weights and trained `epochs` epochs on that plan's networks with the
    options the base training recorded; returns the few-shot folder once every part is done.

    Run again after a stop, it skips the finished parts and resumes the unfinished one.
    data_dir: default, the folder the base trained on. options: SupernetJob fields of where
    and how it runs (device, amp, workers, progress). on_part(plan, index, count): progress.
    """
    from neonas.supernet.training import train_supernet

    base = Path(checkpoint).expanduser().resolve()
    if not base.is_file():
        raise UserError(f"no supernet checkpoint at {checkpoint}")
    state = load_checkpoint(base)
    if SPEC_KEY not in state.get("model_spec", {}):
        raise UserError(f"{checkpoint} is not a supernet checkpoint (from `neonas supernet train`)")
    space: SearchSpace = supernet_space(state["model_spec"])
    if len(space.plans) < 2:
        raise UserError(f"space {space.name!r} has one transition plan: there is nothing to divide")
    recorded = state.get("run_options", {})
    trained_like = {key: recorded[key] for key in PART_OPTIONS if key in recorded}
    data = data_dir or state["data_dir"]
    folder = Path(output_dir).expanduser()
    parts: dict[str, str] = {}
    for index, plan in enumerate(space.plan_names):
        part = folder / part_folder(plan)
        parts[plan] = f"{part.name}/{LAST}"
        if _finished(part):
            continue
        if on_part is not None:
            on_part(plan, index, len(space.plan_names))
        part.mkdir(parents=True, exist_ok=True)
        (part / "space.yaml").write_text(space.with_plan(plan).text)
        resume = (part / LAST).is_file()
        train_supernet(
            part / "space.yaml",
            data,
            output_dir=part,
            epochs=epochs,
            resume=resume,
            init_path=None if resume else str(base),
            **trained_like,
            **options,
        )
    write_json_atomic(
        folder / FEW_SHOT_FILE,
        {"base": str(base), "epochs": epochs, "space": space.name, "parts": parts},
    )
    return folder


def _finished(part: Path) -> bool:
    summary = part / "metrics.json"
    return summary.is_file() and bool(json.loads(summary.read_text()).get("finished"))

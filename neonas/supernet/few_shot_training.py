"""`supernet few-shot`: training one sub-supernet per transition plan from a trained supernet.

What the parts are and how they are read is neonas/supernet/few_shot.py; this module trains
them (each part a `supernet train` run started with `--init` from the whole supernet).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neonas.errors import UserError
from neonas.io import write_json_atomic
from neonas.space import SearchSpace
from neonas.supernet.checkpoint import SPEC_KEY, supernet_space
from neonas.supernet.few_shot import FEW_SHOT_FILE
from neonas.supernet.training import train_supernet
from neonas.train.checkpoint import LAST, load_checkpoint
from neonas.train.options import FEW_SHOT_EPOCHS, SUPERNET_RUN_OPTIONS

# The base training's recorded options each part trains with (the parts have their own epochs).
PART_OPTIONS = tuple(option for option in SUPERNET_RUN_OPTIONS if option != "epochs")


def part_folder(plan: str) -> str:
    """'4:3 1:1' -> 'plan-4-3_1-1': a folder name per plan."""
    return "plan-" + plan.replace(":", "-").replace(" ", "_")


def train_few_shot(
    checkpoint: str | Path,
    output_dir: str | Path,
    *,
    epochs: int = FEW_SHOT_EPOCHS,
    data_dir: str | Path | None = None,
    on_part: Callable[[str, int, int], None] | None = None,
    **options: Any,
) -> Path:
    """Train (or continue) one sub-supernet per transition plan of `checkpoint`'s space, each
    started from its weights and trained `epochs` epochs on that plan's networks with the
    options the base training recorded; returns the few-shot folder once every part is done.

    Run again after a stop, it skips the finished parts and resumes the unfinished one.
    data_dir: default, the folder the base trained on. options: SupernetJob fields of where
    and how it runs (device, amp, workers, progress). on_part(plan, index, count): progress.
    """
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
        if _finished(part, epochs):
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


def _finished(part: Path, epochs: int) -> bool:
    """Whether the part in `part` has finished; UserError if it finished with other epochs
    (the folder holds another few-shot run)."""
    summary = part / "metrics.json"
    if not summary.is_file():
        return False
    record = json.loads(summary.read_text())
    if not record.get("finished"):
        return False
    if int(record["epochs"]) != epochs:
        raise UserError(
            f"{part} finished with {record['epochs']} epochs; --epochs {epochs} differs: "
            "give another --output"
        )
    return True

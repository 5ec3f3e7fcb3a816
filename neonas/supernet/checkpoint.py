"""Supernet checkpoints: the training checkpoint format, plus the space the supernet covers.

They are written by `neonas.train.checkpoint.save_checkpoint` (atomic, weights_only-loadable)
and carry the search space's YAML text, so a checkpoint alone rebuilds its supernet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neonas.errors import UserError
from neonas.space import space_from_yaml
from neonas.supernet.network import SuperNet
from neonas.train.checkpoint import load_checkpoint
from neonas.train.model_spec import load_weights

SPEC_KEY = "supernet"  # what `model_spec` holds in a supernet checkpoint


def load_supernet(path: str | Path) -> tuple[SuperNet, dict[str, Any]]:
    """The trained supernet of a checkpoint and the checkpoint's contents; UserError if not one."""
    state = load_checkpoint(path)
    spec = state.get("model_spec", {})
    if SPEC_KEY not in spec:
        raise UserError(
            f"{path} is a training checkpoint of one network, not a supernet (from `neonas supernet train`)"
        )
    space = supernet_space(spec)
    supernet = SuperNet(space, len(state["classes"]))
    load_weights(
        supernet,
        state["model"],
        str(path),
        "it was written by another version of neonas: train the supernet again",
    )
    supernet.eval()
    return supernet, state


def check_one_supernet_for(path: str | Path, space: Any, data_dir: str | Path) -> None:
    """UserError unless the supernet checkpoint `path` holds every network of `space` and was
    trained on the classes of `data_dir` (few_shot.check_supernet_for takes parts too)."""
    from neonas.supernet.coverage import SpaceCoverage
    from neonas.train.data import detect_layout

    state = load_checkpoint(path)
    if SPEC_KEY not in state.get("model_spec", {}):
        raise UserError(f"{path} is not a supernet checkpoint (from `neonas supernet train`)")
    trained = SpaceCoverage.of(supernet_space(state["model_spec"]))
    trained.check_covers(SpaceCoverage.of(space), f"space {space.name!r}")
    classes = detect_layout(data_dir).classes
    if list(classes) != list(state["classes"]):
        raise UserError(f"{data_dir} has other classes than the supernet in {path} was trained on")


def supernet_space(spec: dict[str, Any]) -> Any:
    """The SearchSpace recorded in a supernet checkpoint's model spec."""
    info = spec[SPEC_KEY]
    return space_from_yaml(info["space_text"], info["space_source"])

"""`supernet extract`: one subnet written as a normal training checkpoint.

The file has the layout `neonas train` writes (model spec with the ArchConfig, weights, class
names, data config), so `neonas evaluate --checkpoint FILE` reads it and
`neonas train --config FILE --init CKPT` fine-tunes from it.
"""

from __future__ import annotations

from pathlib import Path

from neonas.arch import ArchConfig
from neonas.supernet.checkpoint import load_supernet
from neonas.supernet.few_shot import checkpoint_for
from neonas.supernet.scoring import CALIB_IMAGES, load_scoring_data, reestimate_batchnorm
from neonas.supernet.subnet_weights import extract_subnet
from neonas.train.checkpoint import save_checkpoint


def write_subnet_checkpoint(
    checkpoint: str | Path,
    config: ArchConfig,
    out: str | Path,
    *,
    data_dir: str | Path | None = None,
    calib_images: int = CALIB_IMAGES,
) -> Path:
    """Extract `config` from a supernet checkpoint (or a few-shot folder: its plan's part) into
    `out`; BatchNorm re-estimated on `data_dir`'s training images when given, else the
    supernet's shared statistics are kept."""
    checkpoint = checkpoint_for(checkpoint, config)
    supernet, state = load_supernet(checkpoint)
    model = extract_subnet(supernet, config)
    if data_dir is not None:
        data = load_scoring_data(
            data_dir,
            state["data_config"],
            classes=state["classes"],
            calib_images=calib_images,
            max_val_images=1,
        )
        reestimate_batchnorm(model, data.calib)
    return save_checkpoint(
        out,
        {
            "epoch": 0,
            "model": model.state_dict(),
            "ema": None,
            "model_spec": {"arch_config": model.config.to_dict()},
            "classes": list(state["classes"]),
            "data_config": state["data_config"],
            "metrics": {},
            "extracted_from": {
                "checkpoint": str(Path(checkpoint).expanduser().resolve()),
                "supernet_epoch": int(state["epoch"]),
                "batchnorm": "re-estimated" if data_dir is not None else "supernet",
            },
        },
    )

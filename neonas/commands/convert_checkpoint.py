"""`neonas convert-checkpoint`: the NeoNeXt authors' released weights as a neonas checkpoint.

The conversion is `neonas.models.reference_checkpoint`; this module parses, saves and prints.
The result is a training checkpoint (`evaluate --checkpoint`, `train --init`) and, beside it,
the ArchConfig it was read as (`profile --config`, `train --config`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from neonas.commands.arguments import positive_int
from neonas.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a checkpoint of github.com/HapKoM/neonext (epoch_*.pt)")
    parser.add_argument(
        "--model", required=True, help="neonext_tiny_ref, neonext_small_ref or neonext_base_ref"
    )
    parser.add_argument("--out", required=True, help="the neonas checkpoint to write (.pt)")
    parser.add_argument(
        "--res", type=positive_int, default=224, help="input resolution it was trained at (224)"
    )
    parser.add_argument(
        "--shifts",
        default="1,1,1,0",
        help="per stage, 1 if its NeoCells are shifted (not stored in the file): "
        "1,1,1,0 (the code's default, 224 px) or 1,1,1,1 (its 384 px scripts)",
    )


def run(args: argparse.Namespace) -> int:
    from timm.data import ImageNetInfo, resolve_model_data_config

    from neonas.models.reference_checkpoint import convert_reference_checkpoint
    from neonas.train.checkpoint import save_checkpoint

    shifts = _shifts(args.shifts)
    model = convert_reference_checkpoint(args.path, args.model, input_size=args.res, shifts=shifts)
    config = model.config
    classes = ImageNetInfo().label_names() if config.num_classes == 1000 else None
    if classes is None:
        classes = [str(index) for index in range(config.num_classes)]
    out = Path(args.out).expanduser()
    save_checkpoint(
        out,
        {
            "epoch": 0,
            "model": model.state_dict(),
            "ema": None,
            "model_spec": {"arch_config": config.to_dict()},
            "classes": list(classes),
            "data_config": resolve_model_data_config(model),
            "metrics": {},
            "converted_from": str(Path(args.path).expanduser().resolve()),
        },
    )
    config_path = config.save(out.with_suffix(".yaml"))
    params = sum(p.numel() for p in model.parameters())
    cells = " ".join("+".join(str(c.size) for c in stage.cells) for stage in config.stages)
    print(
        f"{args.model}: {params:,} parameters; cells {cells}; "
        f"layer scale {'yes' if config.layer_scale_init else 'no'}; "
        f"MLP bias {'yes' if config.mlp_bias else 'no'} -> {out} and {config_path}"
    )
    return 0


def _shifts(text: str) -> tuple[bool, ...]:
    parts = text.split(",")
    if not parts or any(part.strip() not in ("0", "1") for part in parts):
        raise UserError(f"--shifts {text!r}: give 0 or 1 per stage, e.g. 1,1,1,0")
    return tuple(part.strip() == "1" for part in parts)

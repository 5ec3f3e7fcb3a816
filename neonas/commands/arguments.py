"""Options shared by the commands that are not settings of a run (the device ones), and the
argparse value types (declared in neonas/options.py, offered here too)."""

from __future__ import annotations

from typing import Any

from neonas.options import non_negative_float, non_negative_int, positive_float, positive_int

__all__ = [
    "add_device_options",
    "non_negative_float",
    "non_negative_int",
    "positive_float",
    "positive_int",
]


def add_device_options(parser: Any, *, what: str) -> None:
    """--device, --amp and --workers on a parser or argument group, alike in `train` and `evaluate`."""
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument(
        "--amp",
        default="auto",
        choices=("auto", "none", "bf16", "fp16"),
        help="mixed precision (auto: bf16 on GPU, none on CPU)",
    )
    parser.add_argument(
        "--workers",
        type=non_negative_int,
        default=4,
        help=f"data loading processes{what} (default 4, at most the CPUs available)",
    )

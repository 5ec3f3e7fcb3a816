"""argparse value types and options shared by the commands; a bad value becomes argparse's
one-line error."""

from __future__ import annotations

import argparse
from typing import Any


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _parse(text, int, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    value = _parse(text, int, "an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def non_negative_float(text: str) -> float:
    """A number >= 0."""
    value = _parse(text, float, "a number")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def positive_float(text: str) -> float:
    """A number > 0."""
    value = _parse(text, float, "a number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


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


def _parse(text: str, kind: type, what: str):  # noqa: ANN202 (int or float, as `kind`)
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None

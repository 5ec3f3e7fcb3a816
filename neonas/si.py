"""Parsing and printing of sizes with SI suffixes (4.4G FLOPs, 30M params, 2ms) and durations."""

from __future__ import annotations

import math
import re

from neonas.errors import UserError

_SI = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_TIME = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_si(text: str | int | float, what: str = "value") -> int:
    """'4.4G' -> 4_400_000_000; plain numbers pass through. Raises UserError on bad text."""
    if isinstance(text, int | float):
        return int(text)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([KMGTkmgt]?)\s*", text)
    if not match:
        raise UserError(
            f"bad {what} {text!r}: use a number with an optional K, M, G or T suffix, e.g. 4.4G"
        )
    value = float(match.group(1)) * _SI[match.group(2).upper()]
    if value <= 0 or not math.isfinite(value):
        raise UserError(f"bad {what} {text!r}: must be positive")
    return int(round(value))


def parse_ms(text: str | int | float, what: str = "latency") -> float:
    """'2ms' -> 2.0, '500us' -> 0.5, '0.1s' -> 100.0; a bare number is milliseconds."""
    if isinstance(text, int | float):
        return float(text)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(us|ms|s)?\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise UserError(f"bad {what} {text!r}: use a positive time such as 2ms, 500us or 0.1s")
    return float(match.group(1)) * _TIME[match.group(2) or "ms"]


def parse_duration(text: str, what: str = "--time-budget") -> float:
    """'90s', '20m', '2h' or plain seconds -> seconds; UserError otherwise."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise UserError(f"bad {what} {text!r}: use a positive duration such as 90s, 20m or 2h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def format_si(value: float, digits: int = 2) -> str:
    """4_400_000_000 -> '4.40G'."""
    for suffix in ("T", "G", "M", "K"):
        if abs(value) >= _SI[suffix]:
            return f"{value / _SI[suffix]:.{digits}f}{suffix}"
    return f"{value:.0f}"

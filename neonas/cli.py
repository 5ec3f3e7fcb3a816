"""Argument parsing and dispatch for the `neonas` command; each command lives in `neonas.commands`.

A command module exposes `add_arguments(parser)` and `run(args) -> int`. Modules import their
heavy dependencies (torch, ray) inside `run`, so `neonas --help` loads no torch
(tests/test_cli_startup.py; 0.2 s against 11 s before, benchmarks/startup.py).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from neonas.errors import UserError

# name -> (module, one-line help). Order is the order of `neonas --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "search": ("neonas.commands.search", "latency-aware architecture search (Ray Tune + Optuna)"),
    "export": ("neonas.commands.export", "write the best ArchConfigs of a search run"),
    "profile": (
        "neonas.commands.profile",
        "params, FLOPs, latency and matrix efficiency of a model",
    ),
    "profile-lut": ("neonas.commands.profile_lut", "measure a latency lookup table for a device"),
    "export-onnx": ("neonas.commands.export_onnx", "export a model to ONNX"),
    "train": ("neonas.commands.train", "retrain an architecture with the full recipe"),
    "evaluate": ("neonas.commands.evaluate", "top-1/top-5 of a checkpoint on a dataset"),
    "convert-checkpoint": (
        "neonas.commands.convert_checkpoint",
        "the NeoNeXt authors' released weights as a neonas checkpoint",
    ),
    "supernet": (
        "neonas.commands.supernet",
        "train a weight-sharing supernet of a space; extract or score its subnets",
    ),
    "build-native": (
        "neonas.commands.build_native",
        "build the fused NeoCell CPU kernel once for this install",
    ),
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as one line and exit status 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser; commands whose module is missing are left out."""
    parser = _Parser(prog="neonas", description="Hardware-aware NAS over the NeoCell design space.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:
                continue
            raise
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `neonas` and `python cli.py`: returns the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UserError as err:
        print(f"neonas {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"neonas {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

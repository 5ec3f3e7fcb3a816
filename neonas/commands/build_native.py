"""`neonas build-native`: build the fused NeoCell CPU kernel once for this install.

The README's first command runs it, so the build (about a minute on 2 cores) happens at install
time, not inside a search or in every Ray worker. Without a C++ compiler, or when the build
fails, it says why and still exits 0 (NeoCell then runs its PyTorch forms), so that it can
stand in a chain of commands on any machine; `--strict` makes that exit status 1.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true", help="show the compiler's output")
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when the kernel cannot be built"
    )


def run(args: argparse.Namespace) -> int:
    import time

    from neonas.ops import native

    start = time.perf_counter()
    try:
        library = native.build(verbose=args.verbose)
    except native.NativeBuildError as err:
        print(
            f"neonas build-native: the fused NeoCell kernel was not built ({err}); "
            "NeoCell runs its PyTorch forms"
        )
        return 1 if args.strict else 0
    seconds = time.perf_counter() - start
    note = "" if native.enabled() else " (NEONAS_NATIVE=0 keeps it off)"
    print(f"fused NeoCell kernel ready in {seconds:.1f} s: {library}{note}")
    return 0

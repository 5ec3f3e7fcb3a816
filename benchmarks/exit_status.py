"""How a benchmark script's `main()` ends: a mistake the user can fix is one line and exit
status 2, as the `neonas` commands report it, instead of a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec

from neonas.errors import UserError

P = ParamSpec("P")


def reports_user_errors(main: Callable[P, int]) -> Callable[P, int]:
    """`main` with a UserError printed as `error: ...` on stderr and returned as status 2."""

    @functools.wraps(main)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    return wrapped

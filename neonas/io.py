"""Atomic file writes: a crash never leaves a half-written file behind."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temp file beside `path`; on success fsync it and rename it over `path`.

    On any error the temp file is removed and `path` keeps its old content (or stays absent).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600 files; give the result the mode a plain open() would, so that
        # other users of shared storage can read it.
        os.chmod(tmp, _default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write text atomically (temp file in the same folder, fsync, rename)."""
    with atomic_open(path, "w") as handle:
        handle.write(text)
    return Path(path)


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """JSON version of `write_text_atomic` (indented, keys in insertion order)."""
    return write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def copy_atomic(source: str | Path, target: str | Path) -> Path:
    """Copy a file so that `target` is always either the old or the complete new file."""
    with atomic_open(target, "wb") as handle, open(source, "rb") as original:
        shutil.copyfileobj(original, handle)
    return Path(target)


def _default_file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask

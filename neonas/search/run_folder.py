"""`results/<name>/`: the whole truth of one search run, enough to resume, export and plot it.

    run.json       command, versions, settings, the space, and one entry per session
    space.yaml     the space as it was loaded (a resume uses this copy, not the file)
    study.db       the Optuna study: the one record of every trial (optuna-dashboard reads it)
    trials.csv     the same trials as a flat table, written from the study
    tune/          the Ray Tune experiment of each session (session-1, session-2, ...)
    pareto.json, pareto.png, best/*.yaml
    run.lock       the live driver's pid and host, so two drivers never share a run
Every file is written atomically.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from neonas.errors import UserError
from neonas.io import write_json_atomic, write_text_atomic
from neonas.search.settings import SearchSettings


class RunFolder:
    """Paths and the small bookkeeping files of one run folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()

    run_json = property(lambda self: self.path / "run.json")
    space_yaml = property(lambda self: self.path / "space.yaml")
    study_db = property(lambda self: self.path / "study.db")
    trials_csv = property(lambda self: self.path / "trials.csv")
    tune_dir = property(lambda self: self.path / "tune")
    pareto_json = property(lambda self: self.path / "pareto.json")
    pareto_png = property(lambda self: self.path / "pareto.png")
    best_dir = property(lambda self: self.path / "best")
    lock_file = property(lambda self: self.path / "run.lock")

    @classmethod
    def create(
        cls, settings: SearchSettings, space_text: str, space_info: dict, argv: Sequence[str]
    ) -> RunFolder:
        """A new run folder; UserError if one of that name exists (resume it or pick a name)."""
        run = cls.check_new(settings)
        run.path.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run.space_yaml, space_text)
        write_json_atomic(
            run.run_json,
            {
                "command": "neonas search " + " ".join(argv),
                "created": _now(),
                "settings": settings.model_dump(mode="json"),
                "space": space_info,
                "versions": versions(),
                "sessions": [],
            },
        )
        return run

    @classmethod
    def check_new(cls, settings: SearchSettings) -> RunFolder:
        """The folder a new run would use; UserError if a run of that name exists there."""
        run = cls(settings.run_dir)
        if run.run_json.exists():
            raise UserError(
                f"run {settings.name!r} already exists in {run.path.parent}: continue it with "
                f"--resume {settings.name}, or choose another --name"
            )
        return run

    @classmethod
    def find(cls, name_or_path: str, results_dir: str | Path = "results") -> RunFolder:
        """A run given by folder path or by name under `results_dir`; UserError if none."""
        for candidate in (Path(name_or_path), Path(results_dir) / name_or_path):
            if (candidate / "run.json").is_file():
                return cls(candidate)
        raise UserError(
            f"no search run {name_or_path!r}: give a run folder (with run.json) or a run name "
            f"under {results_dir}/"
        )

    def info(self) -> dict[str, Any]:
        return json.loads(self.run_json.read_text())

    def settings(self) -> SearchSettings:
        return SearchSettings.model_validate(self.info()["settings"])

    def update_settings(self, settings: SearchSettings) -> None:
        info = self.info()
        info["settings"] = settings.model_dump(mode="json")
        write_json_atomic(self.run_json, info)

    def start_session(self, argv: Sequence[str]) -> int:
        """Append a session entry (this invocation) to run.json; returns its number (1, 2, ...)."""
        info = self.info()
        number = len(info["sessions"]) + 1
        info["sessions"].append(
            {
                "number": number,
                "started": _now(),
                "argv": list(argv),
                "pid": os.getpid(),
                "host": socket.gethostname(),
            }
        )
        write_json_atomic(self.run_json, info)
        return number

    def end_session(self, number: int, outcome: dict[str, Any]) -> None:
        info = self.info()
        info["sessions"][number - 1].update({"ended": _now(), **outcome})
        write_json_atomic(self.run_json, info)

    @contextmanager
    def lock(self, force: bool = False) -> Iterator[None]:
        """Hold run.lock while a driver works on the run.

        A lock of a dead process on this host is taken over. A lock from another host cannot
        be checked from here (its pid means nothing on this machine), so it is refused unless
        `force`: two drivers on one study would each run trials the other does not know of.
        """
        if self.lock_file.exists():
            try:
                held = json.loads(self.lock_file.read_text())
            except (OSError, ValueError):
                held = {}
            host = held.get("host")
            if host == socket.gethostname() and _alive(int(held.get("pid", -1))):
                raise UserError(
                    f"run {self.path.name} is in use by process {held['pid']}: wait for it or stop it first"
                )
            if host and host != socket.gethostname() and not force:
                raise UserError(
                    f"run {self.path.name} is locked by process {held.get('pid')} on host {host} "
                    f"since {held.get('since', '?')}: stop that driver, or add --force if it is dead"
                )
        write_json_atomic(
            self.lock_file, {"pid": os.getpid(), "host": socket.gethostname(), "since": _now()}
        )
        try:
            yield
        finally:
            self.lock_file.unlink(missing_ok=True)


def versions() -> dict[str, str]:
    """Versions that decide what a run computes."""
    import importlib.metadata as metadata

    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for package in ("neonas", "torch", "ray", "optuna", "timm", "fvcore"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def _alive(pid: int) -> bool:
    """Whether `pid` is a live process on this host (a zombie counts as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")

"""What a training run shows and records: a progress bar, metrics.csv and TensorBoard events."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from neonas.io import write_text_atomic
from neonas.train.epoch import ProgressFn

CSV_NAME = "metrics.csv"
TENSORBOARD_DIR = "tensorboard"


class EpochLog:
    """One row per finished epoch; on resume, rows past the checkpoint's epoch are dropped."""

    def __init__(self, output_dir: str | Path, *, start_epoch: int = 0) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = Path(output_dir) / CSV_NAME
        self.rows = [row for row in _read_rows(self.path) if int(row["epoch"]) <= start_epoch]
        # purge_step drops events a crashed run wrote after its last checkpoint.
        self.writer = SummaryWriter(
            str(Path(output_dir) / TENSORBOARD_DIR),
            purge_step=start_epoch + 1 if start_epoch else None,
        )

    def write(self, row: dict[str, Any]) -> None:
        """Add one epoch's metrics (must contain 'epoch', 1-based) to the CSV and TensorBoard."""
        self.rows.append({key: _plain(value) for key, value in row.items()})
        fields = list(dict.fromkeys(key for r in self.rows for key in r))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(self.path, buffer.getvalue())
        for key, value in row.items():
            if key != "epoch" and isinstance(value, int | float) and not isinstance(value, bool):
                self.writer.add_scalar(key, value, global_step=int(row["epoch"]))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _plain(value: Any) -> Any:
    return float(f"{value:.7g}") if isinstance(value, float) else value


class EpochProgress:
    """A rich progress bar per epoch on a terminal; nothing when output goes to a file."""

    def __init__(self, enabled: bool = True) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal

    @contextmanager
    def epoch(self, epoch: int, epochs: int, updates: int) -> Iterator[ProgressFn | None]:
        """Yields the callback `train_one_epoch` reports to (None when disabled)."""
        if not self.enabled:
            yield None
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn(f"epoch {epoch}/{epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(elapsed_when_finished=True),
        )
        with Progress(*columns, console=self.console) as progress:
            task = progress.add_task("train", total=updates, status="")

            def update(done: int, total: int, loss: float, lr: float) -> None:
                shown = f"loss {loss:.4f}  " if math.isfinite(loss) else ""
                progress.update(task, completed=done, status=f"{shown}lr {lr:.3g}")

            yield update

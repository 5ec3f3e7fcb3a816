"""Memory of every Ray worker and of the driver during a real search, beside trials per minute.

    python benchmarks/sweep_memory.py [--trials 40] [--every 5] [--code-dir OTHER_CHECKOUT]
        [--env NAME=VALUE ...] [-- extra `search` options]

Runs `python cli.py search --hw ascend --budget 4.4G --trials N` (the README's main job; a
fresh run folder in a temporary directory, removed after) as a subprocess and, every `--interval` seconds,
reads /proc/<pid>/smaps_rollup of the driver and of every process under it: RSS (what `top`
shows; shared library pages counted in full in every process), PSS (shared pages divided among
the processes mapping them) and anonymous memory (the process's own heap: models, activations,
caches, freed memory the allocator kept). Ray names its worker processes `ray::<task or actor>`
(`ray::IDLE` while idle); a worker that ever ran a trial is an evaluating worker. The rest
under the driver (raylet, GCS, log monitor...) is the Ray runtime.

Progress comes from the run's trials.csv (one row per outcome): memory is printed after every
`--every` evaluated trials (completed or rejected over a budget), to show whether it grows
with the trials. Trials per minute count the evaluated trials between the first and the last
outcome (Ray's and the workers' start-up excluded).

`--code-dir` runs the search from another checkout (e.g. the commit before a change, made
with `git worktree add`), for a side-by-side figure; `--env` passes environment variables to
the search (and so to its Ray workers), e.g. `--env MALLOC_ARENA_MAX=2`.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVALUATED = ("completed", "rejected", "failed")
FIELDS = ("rss", "pss", "anon")
PEAK_FIELDS = (*FIELDS, "hwm")


@dataclass
class Usage:
    """One process's memory in MB."""

    rss: float
    pss: float
    anon: float
    hwm: float  # the kernel's peak RSS (VmHWM): catches peaks between two samples


def read_usage(pid: int) -> Usage | None:
    """RSS, PSS and anonymous memory of `pid` from smaps_rollup; None if it is gone."""
    values = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                key, *rest = line.split()
                if key in ("Rss:", "Pss:", "Anonymous:"):
                    values[key] = int(rest[0]) / 1024
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    values["VmHWM:"] = int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if len(values) < 4:
        return None
    return Usage(values["Rss:"], values["Pss:"], values["Anonymous:"], values["VmHWM:"])


def process_name(pid: int) -> str:
    """The process's command line as Ray sets it (`ray::IDLE`, `ray::ImplicitFunc.train`...)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def descendants(root: int) -> list[int]:
    """Every live process under `root` (children, grandchildren...), from /proc/*/stat."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
                ppid = int(stat.read().rpartition(")")[2].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children[ppid].append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Track:
    """The samples of one process: its peak and last memory, and what Ray called it."""

    names: set[str] = field(default_factory=set)
    peak: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PEAK_FIELDS, 0.0))
    last: Usage | None = None

    def add(self, name: str, usage: Usage) -> None:
        self.names.add(name)
        self.last = usage
        for key in PEAK_FIELDS:
            self.peak[key] = max(self.peak[key], getattr(usage, key))

    @property
    def worker(self) -> bool:
        """A Ray worker process (Ray's own agents, `ray::DashboardAgent`..., are runtime)."""
        names = self.ray_names
        return bool(names) and not any("agent" in name.lower() for name in names)

    @property
    def evaluating(self) -> bool:
        """A worker that ran a trial (was ever named other than ray::IDLE)."""
        return self.worker and bool(self.ray_names - {"ray::IDLE"})

    @property
    def ray_names(self) -> set[str]:
        return {name for name in self.names if name.startswith("ray::")}


def count_outcomes(path: Path) -> tuple[int, int]:
    """(evaluated, all) rows of trials.csv; (0, 0) before the first outcome."""
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        return 0, 0
    return sum(row.get("status") in EVALUATED for row in rows), len(rows)


def fmt(usage: Usage | dict[str, float] | None) -> str:
    if usage is None:
        return "- / - / -"
    values = usage if isinstance(usage, dict) else vars(usage)
    return " / ".join(f"{values[key]:.0f}" for key in FIELDS)


def run_sweep(args: argparse.Namespace) -> None:
    code = Path(args.code_dir or ROOT).resolve()
    results = Path(tempfile.mkdtemp(prefix="sweep_memory-"))
    name = "sweep"
    command = [
        sys.executable,
        "cli.py",
        "search",
        "--hw",
        args.hw,
        "--budget",
        args.budget,
        "--trials",
        str(args.trials),
        "--results-dir",
        str(results),
        "--name",
        name,
        *args.search_args,
    ]
    env = {**os.environ, "PYTHONPATH": str(code)}
    env.update(item.split("=", 1) for item in args.env)
    csv_path = results / name / "trials.csv"
    tracks: dict[int, Track] = defaultdict(Track)
    progress: list[tuple[float, int]] = []  # (time, evaluated) when the count changed
    printed = 0
    start = time.perf_counter()
    print(f"code {code}; {' '.join(command[1:])}; env {' '.join(args.env) or '-'}")
    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}\n")
    print(
        "| evaluated trials | s | driver RSS / PSS / anon MB | each evaluating worker, "
        "RSS / PSS / anon MB | Ray runtime PSS MB |"
    )
    print("|---|---|---|---|---|")
    with subprocess.Popen(
        command, cwd=code, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as search:
        log: list[str] = []
        reader = _drain(search, log)
        while search.poll() is None:
            now = time.perf_counter() - start
            for pid in [search.pid, *descendants(search.pid)]:
                usage = read_usage(pid)
                if usage is not None:
                    tracks[pid].add(process_name(pid), usage)
            evaluated, _ = count_outcomes(csv_path)
            if not progress or evaluated != progress[-1][1]:
                progress.append((now, evaluated))
            if evaluated >= printed + args.every or (evaluated and not printed):
                printed = evaluated
                print(_progress_row(evaluated, now, search.pid, tracks), flush=True)
            time.sleep(args.interval)
        reader.join()
    wall = time.perf_counter() - start
    if search.returncode != 0:
        print("".join(log[-40:]))
        raise SystemExit(f"search failed with exit status {search.returncode}")
    _summary(tracks, search.pid, progress, wall, "".join(log))
    shutil.rmtree(results)  # the run folder is not the point here (kept when the search failed)


def _drain(process: subprocess.Popen, log: list[str]):
    """Read the search's output in a thread, so a full pipe never stalls it."""
    import threading

    def read() -> None:
        for line in process.stdout:
            log.append(line)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _progress_row(evaluated: int, now: float, driver: int, tracks: dict[int, Track]) -> str:
    workers = [t for pid, t in tracks.items() if t.evaluating and pid != driver and t.last]
    runtime = sum(
        t.last.pss for pid, t in tracks.items() if pid != driver and not t.worker and t.last
    )
    each = ", ".join(fmt(t.last) for t in workers) or "-"
    return f"| {evaluated} | {now:.0f} | {fmt(tracks[driver].last)} | {each} | {runtime:.0f} |"


def _summary(
    tracks: dict[int, Track], driver: int, progress: list[tuple[float, int]], wall: float, log: str
) -> None:
    workers = {pid: t for pid, t in tracks.items() if t.evaluating and pid != driver}
    idle = [t for pid, t in tracks.items() if t.worker and not t.evaluating and pid != driver]
    runtime = {pid: t for pid, t in tracks.items() if pid != driver and not t.worker}
    print(f"\nsearch wall time {wall:.0f} s; load after: {os.getloadavg()[0]:.2f}")
    print(f"last lines: {' | '.join(log.strip().splitlines()[-2:])}\n")
    print(
        "| process | peak RSS / PSS / anon MB (sampled) | peak RSS MB (kernel VmHWM) "
        "| final RSS / PSS / anon MB |"
    )
    print("|---|---|---|---|")

    def row(label: str, peak: dict[str, float], final: Usage | dict[str, float] | None) -> None:
        print(f"| {label} | {fmt(peak)} | {peak['hwm']:.0f} | {fmt(final)} |")

    row("driver", tracks[driver].peak, tracks[driver].last)
    for pid, track in workers.items():
        names = ",".join(sorted(track.ray_names - {"ray::IDLE"}))
        row(f"worker {pid} ({names})", track.peak, track.last)
    if workers:
        peak = {k: max(t.peak[k] for t in workers.values()) for k in PEAK_FIELDS}
        final = {k: max(getattr(t.last, k) for t in workers.values()) for k in FIELDS}
        row("largest evaluating worker", peak, final)
    for track in idle:
        row("idle worker", track.peak, track.last)
    runtime_peak = sum(t.peak["pss"] for t in runtime.values())
    runtime_final = sum(t.last.pss for t in runtime.values() if t.last)
    print(
        f"| Ray runtime ({len(runtime)} processes), PSS summed | {runtime_peak:.0f} | | "
        f"{runtime_final:.0f} |"
    )
    evaluated = [(t, n) for t, n in progress if n > 0]
    if len(evaluated) >= 2:
        (t0, n0), (t1, n1) = evaluated[0], evaluated[-1]
        rate = 60 * (n1 - n0) / (t1 - t0)
        print(
            f"\n{n1} evaluated trials; {rate:.1f} trials / min between the first and the last "
            f"outcome ({t1 - t0:.0f} s for {n1 - n0}); first outcome after {t0:.0f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--hw", default="ascend")
    parser.add_argument("--budget", default="4.4G")
    parser.add_argument("--every", type=int, default=5, help="print memory every N trials")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("--code-dir", help="run the search from this checkout")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the search")
    parser.add_argument("search_args", nargs="*", help="more `search` options, after --")
    run_sweep(parser.parse_args())


if __name__ == "__main__":
    main()

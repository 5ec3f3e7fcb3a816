"""A sweep on a two-node `ray.cluster_utils.Cluster` of its own (run by tests/test_search_capacity.py
in a child process: a test process may already hold a Ray of its own).

    python tests/cluster_sweep.py RESULTS gpu      trials ask for a stand-in GPU resource
    python tests/cluster_sweep.py RESULTS shrink   --hw cpu; the worker leaves after 3 trials
    python tests/cluster_sweep.py RESULTS vanish   the only node with CPUs leaves; resume later
    python tests/cluster_sweep.py RESULTS single   --hw cpu on a local Ray with one CPU

Prints one JSON line: what the test checks.
"""

from __future__ import annotations

import csv
import json
import sys
import threading
import time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster
from rich.console import Console

from evaluators.hardware import TargetOptions, default_target_options
from evaluators.latency.measure import MeasureSettings
from neonas.search import EvalSettings, SearchSettings, resume_run, start_run
from neonas.search.study import load_trials
from neonas.search.trial import score_candidate

QUICK = MeasureSettings(warmup_runs=1, warmup_s=0.0, window=5, max_time_s=0.3)
GPU = "FAKE_GPU"  # stands in for a GPU: only the worker node has it


def quick_score(config, settings, report) -> None:  # noqa: ANN001 (the trial's signature)
    """The real evaluation, with a short latency measurement (on the sweep's station)."""
    with default_target_options(
        TargetOptions(remote=True, threads=1, measure=QUICK, in_sweep=True)
    ):
        score_candidate(config, settings, report)


def completed(run_dir: Path) -> int:
    path = run_dir / "trials.csv"
    if not path.is_file():
        return 0
    with path.open() as handle:
        return sum(row.get("status") == "completed" for row in csv.DictReader(handle))


def remove_after(cluster: Cluster, node, run_dir: Path, count: int, removed: list) -> None:  # noqa: ANN001
    """Remove `node` once the run has `count` completed trials (a thread beside the sweep)."""
    while completed(run_dir) < count:
        time.sleep(0.2)
    removed.append(completed(run_dir))
    cluster.remove_node(node)


def single(results: Path) -> dict:
    """A --hw cpu sweep on one node with one CPU: no room for a station's reservation."""
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    output = Path(results) / "console.txt"
    console = Console(file=output.open("w"), width=200)
    settings = SearchSettings(
        name="single",
        results_dir=str(results),
        space="tiny",
        trials=2,
        eval=EvalSettings(hw="cpu", proxy_batch=8),
    )
    outcome = start_run(settings, score=quick_score, console=console)
    console.file.close()
    ray.shutdown()
    return {
        "completed": outcome.completed,
        "stop_reason": outcome.stop_reason,
        "console": output.read_text(),
    }


def main(results: Path, mode: str) -> dict:
    if mode == "single":
        return single(results)
    head_cpus = 0 if mode == "vanish" else 1
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": head_cpus, "include_dashboard": False}
    )
    worker = cluster.add_node(num_cpus=1, resources={GPU: 1} if mode == "gpu" else {})
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    worker_id = worker.node_id
    output = Path(results) / "console.txt"
    console = Console(file=output.open("w"), width=200)
    hw = "cpu" if mode == "shrink" else "ascend"
    settings = SearchSettings(
        name=mode,
        results_dir=str(results),
        space="tiny",
        trials=5 if mode == "shrink" else 4,
        gpus_per_trial=0.5 if mode == "gpu" else 0,
        address=cluster.address,
        eval=EvalSettings(hw=hw, proxy_batch=8),
    )
    run_dir = Path(results) / mode
    removed: list[int] = []
    if mode != "gpu":
        threading.Thread(
            target=remove_after,
            args=(cluster, worker, run_dir, 3 if mode == "shrink" else 2, removed),
            daemon=True,
        ).start()
    started = time.monotonic()
    first = start_run(settings, score=quick_score, console=console, gpu_resource=GPU)
    found = {
        "completed": first.completed,
        "stop_reason": first.stop_reason,
        "seconds": round(time.monotonic() - started, 1),
        "removed_after": removed,
        "worker": worker_id,
        "nodes": sorted({row.node for row in load_trials(run_dir).with_status("completed")}),
        "settings": json.loads((run_dir / "run.json").read_text())["settings"],
    }
    if mode == "vanish":
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        again = resume_run(mode, {}, str(results), console=console, gpu_resource=GPU)
        found.update(resumed=again.completed, resumed_stop=again.stop_reason)
    found["statuses"] = {
        status: load_trials(run_dir).count(status)
        for status in ("completed", "failed", "stopped", "lost")
    }
    console.file.close()
    found["console"] = output.read_text()
    ray.shutdown()
    cluster.shutdown()
    return found


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), sys.argv[2])))

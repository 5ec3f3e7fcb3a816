"""Where an evaluating worker's memory goes: `score_candidate`'s steps, one at a time.

    python benchmarks/worker_memory.py [--candidates 20] [--budget 4.4G] [--isolate-steps]
        [--trim] [--fresh-thread] [--code-dir DIR] [--env NAME=VALUE]

In a fresh process (what one Ray worker runs, without Ray), for candidates of the `neonext`
space at 224 px that pass the FLOPs budget (the driver's screen, as in a search), each step of
a default trial runs on its own: build the model, predicted Ascend latency, matrix
efficiency, the zero-cost signal (`zico` by default: forward and backward on noise), then
dropping the model. Around every step it reads /proc/self/smaps_rollup (anonymous memory:
the process's own heap) and the kernel's peak RSS of that step alone (VmHWM, reset before the
step by writing 5 to /proc/self/clear_refs). Per step: the median rise in anonymous memory
while it ran (what it leaves behind) and the median and largest peak above the RSS at its
start (what it needs while it runs). Then the anonymous memory after every candidate, to show
growth with the number of candidates.

`--isolate-steps` hands freed memory back to the OS before every step, so that a step's peak
is its own need and not hidden by what the heap kept from earlier candidates; `--trim` does it
after every candidate (what a search trial does when it ends, timed as a step of its own);
`--fresh-thread` runs every candidate in a new thread, as Ray Tune runs the trials of a reused
worker. `--code-dir` runs the same on another checkout (the commit before a change).
`--caches N` instead measures the evaluators' shared unit caches (op recordings) with
tracemalloc over N candidates.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import gc, json, random, sys, time
def rollup():
    values = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            key, *rest = line.split()
            if key in ("Rss:", "Anonymous:"):
                values[key] = int(rest[0]) / 1024
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                values["hwm"] = int(line.split()[1]) / 1024
    return values
def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
import torch
torch.set_num_threads(1)
from evaluators.metrics import LATENCY_METRICS, compute_metrics
from neonas.models import build_model
from neonas.search import load_space
from neonas.search.settings import EvalSettings
from neonas.search.trial import screen_candidate, zero_cost_signal
count, budget = int(sys.argv[1]), float(sys.argv[2])
settings = EvalSettings()
space, rng = load_space("neonext"), random.Random(0)
configs = []
while len(configs) < count:
    config = space.sample(rng)
    if screen_candidate(config, int(budget), None).rejected:
        continue
    configs.append(config)
gc.collect()
steps, after, seconds, params = [], [], [], []
start_rollup = rollup()
fresh_thread, trim_after, isolate = (flag in sys.argv[3:] for flag in ("thread", "trim", "isolate"))
import ctypes, threading
malloc_trim = ctypes.CDLL(None).malloc_trim
def candidate(config):
    shape = (config.in_chans, config.input_size, config.input_size)
    state = {}
    def step(name, fn):
        if isolate:  # what the step itself needs, not what the heap kept from before
            malloc_trim(0)
        before = rollup()
        reset_peak()
        t = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - t
        now = rollup()
        steps.append({"step": name, "anon": now["Anonymous:"] - before["Anonymous:"],
                      "peak": now["hwm"] - before["Rss:"], "s": elapsed})
    t0 = time.perf_counter()
    step("build the model", lambda: state.update(model=build_model(config)))
    params.append(sum(p.numel() for p in state["model"].parameters()))
    step("latency (predicted Ascend)",
         lambda: compute_metrics(state["model"], shape, LATENCY_METRICS, settings.hw))
    step("matrix efficiency", lambda: compute_metrics(state["model"], shape, ["matrix_efficiency"]))
    step(f"accuracy signal ({settings.signal})",  # on the model built above (draw 0)
         lambda: zero_cost_signal(lambda: state["model"], "", shape, config.num_classes,
                                  settings, first=state["model"]))
    step("drop the model", lambda: (state.clear(), gc.collect()))
    if trim_after:  # what a search trial now does when it ends (neonas.memory)
        step("hand freed memory back (malloc_trim)", lambda: malloc_trim(0))
    seconds.append(time.perf_counter() - t0)
    after.append(rollup()["Anonymous:"])
for config in configs:
    if fresh_thread:  # as Ray Tune runs each trial of a reused actor: a new thread
        thread = threading.Thread(target=candidate, args=(config,))
        thread.start()
        thread.join()
    else:
        candidate(config)
print(json.dumps({"start": start_rollup, "steps": steps, "after": after, "seconds": seconds,
                  "params": params}))
"""


# The evaluators' shared unit caches alone: Python objects, so tracemalloc sees them.
CACHES = r"""
import gc, random, sys, tracemalloc, torch
torch.set_num_threads(1)
import evaluators.op_trace as op_trace
from evaluators.metrics import LATENCY_METRICS, compute_metrics
from neonas.models import build_model
from neonas.search import load_space
space, rng = load_space("neonext"), random.Random(0)
tracemalloc.start()
base = tracemalloc.get_traced_memory()[0]
for i in range(int(sys.argv[1])):
    model, shape = build_model(space.sample(rng)), (3, 224, 224)
    compute_metrics(model, shape, LATENCY_METRICS, "ascend")
    compute_metrics(model, shape, ["matrix_efficiency"])
    del model
    gc.collect()
    if (i + 1) % 10 == 0:
        units = len(op_trace._record_cache)
        mb = (tracemalloc.get_traced_memory()[0] - base) / 2**20
        print(f"after {i + 1} candidates: {units} units recorded, Python objects {mb:.1f} MB "
              f"({1024 * mb / units:.1f} KB per unit)")
"""


def run_probe(
    candidates: int, budget: float, code_dir: str | None, env: list[str], flags: list[str]
) -> dict:
    """The probe's JSON report, run in a fresh process on `code_dir`'s code (else this one)."""
    code = Path(code_dir or ROOT).resolve()
    environ = {**os.environ, "PYTHONPATH": str(code)}
    environ.update(item.split("=", 1) for item in env)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(candidates), str(budget), *flags],
        capture_output=True,
        text=True,
        env=environ,
        cwd=code,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def parse_si(text: str) -> float:
    scale = {"K": 1e3, "M": 1e6, "G": 1e9}
    return float(text[:-1]) * scale[text[-1]] if text[-1] in scale else float(text)


def main() -> None:
    import statistics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--budget", default="4.4G", help="FLOPs budget of the driver's screen")
    parser.add_argument("--code-dir", help="run the probe on this checkout's code")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the probe")
    parser.add_argument(
        "--fresh-thread", action="store_true", help="each candidate in a new thread, as Ray Tune"
    )
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) after each candidate")
    parser.add_argument(
        "--isolate-steps",
        action="store_true",
        help="malloc_trim(0) before each step: the step's own need, not the heap's leftovers",
    )
    parser.add_argument(
        "--caches",
        type=int,
        metavar="N",
        help="instead: the unit caches' Python memory over N candidates (latency, efficiency)",
    )
    args = parser.parse_args()
    if args.caches:
        code = Path(args.code_dir or ROOT).resolve()
        env = {**os.environ, "PYTHONPATH": str(code)}
        subprocess.run([sys.executable, "-c", CACHES, str(args.caches)], env=env, check=True)
        return
    flags = [
        flag
        for flag, on in (
            ("thread", args.fresh_thread),
            ("trim", args.trim),
            ("isolate", args.isolate_steps),
        )
        if on
    ]
    report = run_probe(args.candidates, parse_si(args.budget), args.code_dir, args.env, flags)
    print(
        f"code {args.code_dir or ROOT}, {args.candidates} candidates of the neonext space under "
        f"{args.budget} FLOPs, 224 px, 1 thread; env {' '.join(args.env) or '-'}; "
        f"options {' '.join(flags) or '-'}; "
        f"load {os.getloadavg()[0]:.2f}\n"
    )
    print(
        "| step | anonymous MB left behind (median) | peak above start RSS MB (median / max) "
        "| s (median) |"
    )
    print("|---|---|---|---|")
    names = list(dict.fromkeys(s["step"] for s in report["steps"]))
    for name in names:
        rows = [s for s in report["steps"] if s["step"] == name]
        print(
            f"| {name} | {statistics.median(r['anon'] for r in rows):+.0f} | "
            f"{statistics.median(r['peak'] for r in rows):.0f} / {max(r['peak'] for r in rows):.0f} "
            f"| {statistics.median(r['s'] for r in rows):.2f} |"
        )
    after = report["after"]
    print(
        f"\nanonymous MB before the first candidate {report['start']['Anonymous:']:.0f}, after "
        f"each: {', '.join(f'{a:.0f}' for a in after)}"
    )
    params = report["params"]
    print(
        f"parameters {min(params) / 1e6:.1f}-{max(params) / 1e6:.1f} M (fp32 weights "
        f"{4 * min(params) / 2**20:.0f}-{4 * max(params) / 2**20:.0f} MB)"
    )
    print(
        f"median {statistics.median(report['seconds']):.2f} s per candidate "
        f"({60 / statistics.median(report['seconds']):.0f} / min)"
    )


if __name__ == "__main__":
    main()

"""`neonas train --address`: the same training run, distributed by Ray Train over a Ray cluster.

Ray Train starts the workers and their torch process group (gloo on CPU, nccl on GPU); each
worker runs `run_training`, which joins that group as it would join torchrun's. The training
folder stays the record of the run, so on several machines `--output` must be shared storage.
The cluster is joined as `search` joins it (neonas/cluster.py: --address, else RAY_ADDRESS,
token authentication, one-line errors).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neonas.cluster import ray_cluster
from neonas.errors import UserError
from neonas.train.trainer import TrainJob, preflight, run_training


def train_with_ray(
    job: TrainJob,
    *,
    address: str | None,
    num_workers: int = 1,
    use_gpu: bool = False,
    run: Callable[[Any], Any] = run_training,
    check: Callable[[Any], None] = preflight,
    say: Callable[[str], object] = print,
) -> dict[str, Any]:
    """Run `job` on `num_workers` Ray Train workers on the cluster at `address` (None: the one
    RAY_ADDRESS names); 'local' starts a Ray on this machine (neonas.cluster.ray_cluster).

    `run(job)` is what each worker runs and `check(job)` what is checked here first: by default
    `neonas train`'s; `supernet train` passes its own job, runner and check. `say` prints the
    line naming the cluster joined.
    """
    check(job)  # report bad input here, as one line, rather than from inside a worker
    # Ray workers start in their own folders: hand them absolute paths (every *_dir, *_path).
    output = Path(job.output_dir).expanduser().resolve()
    paths = {
        field.name: _absolute(getattr(job, field.name))
        for field in dataclasses.fields(job)
        if field.name.endswith(("_dir", "_path"))
    }
    job = dataclasses.replace(job, **paths)
    # The workers' output (epoch lines) is printed here too, as with a plain `ray.init`.
    with ray_cluster(address, say, log_to_driver=True):
        # Ray is imported only now: joining sets RAY_AUTH_MODE first, which Ray reads on import.
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

        trainer = TorchTrainer(
            _worker_loop,
            train_loop_config={"job": job, "run": run},
            scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu),
            run_config=RunConfig(name="ray_train", storage_path=str(output / "ray")),
        )
        try:
            trainer.fit()
        except Exception as err:
            failures = getattr(err, "worker_failures", {}) or {}
            for failure in failures.values():
                cause = _user_error_in(failure)
                if cause is not None:
                    raise cause from None
            raise
    return json.loads((output / "metrics.json").read_text())


def _worker_loop(config: dict[str, Any]) -> None:
    import ray.train.torch

    # Ray picks this worker's GPU (CUDA_VISIBLE_DEVICES); progress bars would interleave in logs.
    job = dataclasses.replace(
        config["job"], device=str(ray.train.torch.get_device()), progress=False
    )
    config["run"](job)


def _absolute(path: str | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def _user_error_in(error: BaseException) -> UserError | None:
    """A UserError raised in a worker, possibly wrapped by Ray."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, UserError):
            return UserError(str(error))
        error = getattr(error, "cause", None) or error.__cause__
        seen += 1
    return None

"""One process, torchrun (env://) or Ray Train: the same training sees a rank, a world and a device."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from neonas.errors import UserError

JobT = TypeVar("JobT")
ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the training: rank 0 of 1 when not distributed."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False  # this process created the group, so it destroys it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """'auto' is this process's GPU when there is one, else the CPU; bad names are UserErrors."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown --device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is visible here; use --device cpu")
        index = device.index if device.index is not None else local_rank
        if index >= torch.cuda.device_count():
            raise UserError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
        device = torch.device("cuda", index)
    return device


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group torchrun describes in the environment, or the one Ray Train made."""
    if dist.is_available() and dist.is_initialized():  # Ray Train sets the group up for us
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        return DistContext(
            dist.get_rank(), dist.get_world_size(), local_rank, resolve_device(device, local_rank)
        )
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    target = resolve_device(device, local_rank)
    if world_size == 1:
        return DistContext(0, 1, 0, target)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    backend = "nccl" if target.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, init_method="env://")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, target, owns_group=True)


def all_reduce_sum(values: torch.Tensor, context: DistContext) -> torch.Tensor:
    """Sum a tensor over all ranks (identity in one process)."""
    if context.is_distributed:
        values = values.to(context.device)
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values.cpu()


def sync_buffers(module: torch.nn.Module, context: DistContext) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) to all ranks, so all evaluate one model."""
    if context.is_distributed:
        for buffer in module.buffers():
            dist.broadcast(buffer.data, src=0)


def barrier(context: DistContext) -> None:
    """Wait for all ranks (no-op in one process)."""
    if context.is_distributed:
        dist.barrier()


def shutdown(context: DistContext) -> None:
    """Destroy the process group if this process created it."""
    if context.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def run_distributed(
    job: JobT, device: str, train: Callable[[JobT, DistContext], ResultT]
) -> ResultT:
    """train(job, context) inside the process group torchrun or Ray Train describes (one is
    made if neither did), destroyed afterwards if this call made it: every training entry
    point (`train`, `supernet train`) shares this frame."""
    context = init_distributed(device)
    try:
        return train(job, context)
    finally:
        shutdown(context)

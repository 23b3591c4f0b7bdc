"""torchrun / DDP plumbing: the same entry point runs alone or as one of N ranks.

Under `torchrun --nproc_per_node=N python -m trainers train ...` the environment carries RANK, WORLD_SIZE,
LOCAL_RANK and the rendezvous address; we join the process group (NCCL on GPU, gloo on CPU), each rank samples
from its own shard of the training data, gradients are averaged by DistributedDataParallel, and only rank 0
evaluates and writes files.  Multi-node runs use torchrun's usual `--nnodes/--node_rank/--rdzv_*` flags.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from engine.devices import parse_device


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """The device for this rank; a UserError for a name that is not a usable device here."""
    return parse_device(name, local_rank)


def setup(device_name: str = "auto") -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=pick_device(device_name))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, local_rank, device)


def any_true(flag: bool, d: Dist) -> bool:
    """True on every rank if it is true on any: ranks must agree when to stop."""
    if not d.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=d.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def teardown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()

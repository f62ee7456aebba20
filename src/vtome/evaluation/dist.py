"""torch.distributed for `torchrun --nproc_per_node N -m vtome eval ...`: rank, world size, gathering objects.

Without torchrun (no WORLD_SIZE in the environment, or 1) everything here is a single-process no-op.
Objects go over gloo, which works on CPU and alongside CUDA models (only small Python objects are exchanged).
"""

from __future__ import annotations

import os

import torch.distributed as dist


def setup() -> tuple[int, int, bool]:
    """(rank, world_size, initialised_here). Joins the process group torchrun describes, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, False
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), False
    dist.init_process_group(backend="gloo")
    return dist.get_rank(), dist.get_world_size(), True


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def gather(obj: object, world: int) -> list:
    """Every process's `obj`, in rank order, on every process."""
    if world <= 1:
        return [obj]
    objects: list = [None] * world
    dist.all_gather_object(objects, obj)
    return objects


def broadcast(obj: object, world: int) -> object:
    """Rank 0's `obj` on every process."""
    if world <= 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def teardown(initialised_here: bool) -> None:
    if initialised_here and dist.is_initialized():
        dist.destroy_process_group()

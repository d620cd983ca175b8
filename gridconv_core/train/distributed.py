"""Data-parallel training with torch.distributed (launched by ``torchrun``: env RANK / WORLD_SIZE).

Index sharding replaces ``DistributedSampler``: every rank draws the same seeded permutation of the
training indices, pads it to a multiple of the world size and takes every ``world``-th index.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "setup_distributed", "cleanup_distributed", "shard_indices", "all_reduce_mean"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job; ``owns_process_group`` when :func:`setup_distributed` created it."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_process_group: bool = False

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes files and shows progress."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup_distributed(device_type: str) -> DistInfo:
    """Join the process group described by the environment (gloo on CPU, nccl on CUDA), if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    owns = not dist.is_initialized()
    if owns:
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local_rank, owns)


def cleanup_distributed(info: DistInfo) -> None:
    """Leave the process group if this module created it."""
    if info.owns_process_group and dist.is_initialized():
        dist.destroy_process_group()


def shard_indices(n: int, epoch: int, seed: int, info: DistInfo, device: torch.device) -> torch.Tensor:
    """This rank's shuffled training indices for ``epoch`` (same permutation on every rank)."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=gen)
    if info.enabled:
        per_rank = -(-n // info.world_size)
        pad = per_rank * info.world_size - n
        perm = torch.cat([perm, perm[:pad]])[info.rank::info.world_size]
    return perm.to(device)


def all_reduce_mean(value: float, info: DistInfo, device: torch.device) -> float:
    """Mean of a scalar over ranks (the value itself when not distributed)."""
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size

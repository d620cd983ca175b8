"""DDP with two real CPU processes on gloo: identical weights on both ranks, sharded data."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from gridconv_core.train.distributed import DistInfo, shard_indices


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)  # two processes share the test machine's cores
    from gridconv_core.train import train
    from test_train import tiny_config

    result = train(tiny_config(Path(out), name="ddp", epochs=3, lr=5e-3))
    torch.save(result.model.state_dict(), Path(out) / f"rank{rank}.pt")
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(result.history))


def test_shards_partition_the_indices() -> None:
    shards = [shard_indices(10, epoch=3, seed=1, info=DistInfo(r, 2), device=torch.device("cpu")) for r in (0, 1)]
    assert sorted(torch.cat(shards).tolist()) == list(range(10))
    assert torch.equal(shard_indices(10, 3, 1, DistInfo(), torch.device("cpu")).sort().values, torch.arange(10))
    odd = [shard_indices(7, 0, 1, DistInfo(r, 2), torch.device("cpu")) for r in (0, 1)]
    assert len(odd[0]) == len(odd[1]) == 4 and set(torch.cat(odd).tolist()) == set(range(7))


@pytest.mark.slow
def test_two_process_gloo_training(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # parameters and BN buffers
    h0, h1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert [r["val_mpjpe"] for r in h0] == [r["val_mpjpe"] for r in h1]
    assert all(r["world_size"] == 2 for r in h0)
    assert [r["steps"] for r in h0] == [8, 8, 8]  # 200 samples per rank in per-rank batches of 25
    assert h0[-1]["train_loss"] < h0[0]["train_loss"] and h0[-1]["val_mpjpe"] < h0[0]["val_mpjpe"]
    lines = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3  # written once, by rank 0

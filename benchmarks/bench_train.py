"""Whole-pipeline training throughput (data to optimiser step) of the default D-GridConv, batch 200.

Ours: ``gridconv_core.train.train`` itself (tensors on the device, batched by index), fp32 and bf16.
Beside it, in the same run, an emulation of the authors' pipeline: a ``Dataset`` whose ``__getitem__``
applies the SGT per sample in numpy, a ``DataLoader`` with ``num_workers=0`` collating the batch, then
a step of the same network with the authors' unfold-style D-GridConv (``bench_model.unfold_convolve``). Prints samples/s and the ratio; ``--h36m`` trains on the real shared data.
With CUDA, also estimates one full Human3.6M epoch (1,559,752 training poses, S1/5/6/7/8, 4 cameras).

    .venv/bin/python benchmarks/bench_train.py [--steps 10] [--h36m]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from bench_model import machine, swapped, unfold_convolve  # the authors' layer, kept with the benchmarks
from gridconv_core.io import atomic_write_text
from gridconv_core.layouts import handcrafted
from gridconv_core.model import build_model
from gridconv_core.train import TrainConfig, load_splits, train

H36M_TRAIN_POSES = 1_559_752


class OfficialStyleDataset(Dataset):
    """Per-sample numpy SGT in ``__getitem__``, as in the authors' loader."""

    def __init__(self, pose2d: np.ndarray, pose3d: np.ndarray) -> None:
        self.pose2d, self.pose3d = pose2d, pose3d
        self.s = handcrafted("h36m17").assignment_matrix()  # (25, 17)

    def __len__(self) -> int:
        return len(self.pose2d)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        grid = (self.s @ self.pose2d[i]).reshape(5, 5, 2).transpose(2, 0, 1)  # the SGT, one sample at a time
        return self.pose2d[i], grid.astype(np.float32), self.pose3d[i]


def ours(config: TrainConfig, amp: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        result = train(config.with_overrides({"out_dir": tmp, "amp": amp}))
    return float(result.history[-1]["samples_per_s"])


def official_style(config: TrainConfig, steps: int, device: torch.device) -> float:
    train_set, _, _ = load_splits(config)
    loader = DataLoader(OfficialStyleDataset(train_set.pose2d.numpy(), train_set.pose3d.numpy()),
                        batch_size=config.batch_size, shuffle=True, num_workers=0)
    model = swapped(build_model(config.model).to(device).train(), unfold_convolve)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    it = iter(loader)
    t0, done = 0.0, 0
    for step in range(steps + 1):
        if step == 1:  # first step is warm-up
            t0 = time.perf_counter()
        x, _grid, y = next(it)
        loss = torch.nn.functional.mse_loss(model(x.to(device)), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done += len(x) if step else 0
    if device.type == "cuda":
        torch.cuda.synchronize()
    return done / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10, help="timed optimiser steps per pipeline")
    ap.add_argument("--h36m", action="store_true", help="use the real shared Human3.6M (every 20th frame)")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = ({"dataset": "h36m", "frame_step": 20, "test_frame_step": 2000} if args.h36m else
            {"synthetic_train": 200 * (args.steps + 2), "synthetic_val": 200, "synthetic_test": 200})
    config = TrainConfig().with_overrides({
        **data, "name": "bench", "epochs": 1, "max_steps_per_epoch": args.steps, "progress": False,
        "device": device.type, "batch_size": 200})
    figures = {"ours_fp32": ours(config, "none"), "ours_bf16": ours(config, "bf16"),
               "official_style_fp32": official_style(config, args.steps, device)}
    ratio = figures["ours_fp32"] / figures["official_style_fp32"]
    result = {
        "machine": machine(device), "batch": 200,
        "data": "h36m" if args.h36m else "synthetic", "steps": args.steps,
        "samples_per_s": {k: round(v, 1) for k, v in figures.items()},
        "ratio_ours_fp32_vs_official_style": round(ratio, 2),
        "ratio_ours_bf16_vs_official_style": round(figures["ours_bf16"] / figures["official_style_fp32"], 2),
        "h36m_epoch_minutes_ours_fp32": round(H36M_TRAIN_POSES / figures["ours_fp32"] / 60, 1),
        "note": "official_style = per-sample numpy SGT in __getitem__ + DataLoader(num_workers=0) + unfold D-GridConv",
    }
    print(json.dumps(result, indent=2))
    atomic_write_text(Path(__file__).parent / "results" / f"bench_train_{device.type}.json",
                      json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Whole-pipeline training throughput (data to optimiser step) of the default D-GridConv, batch 200.

Ours: ``gridconv_core.train.train`` itself (tensors on the device, batched by index), fp32 and bf16.
Beside it, in the same run, an emulation of the authors' pipeline: a ``Dataset`` whose ``__getitem__``
applies the SGT per sample in numpy, a ``DataLoader`` with ``num_workers=0`` collating the batch, then
a step of the same network with the authors' unfold-style D-GridConv (``bench_model.unfold_convolve``).
Each pipeline times ``--steps`` steps after one warm-up step (ours through a callback that reads the clock at its
first and last steps only). The pipelines run in turn for ``--rounds`` rounds (the machine drifts); each figure is
its median over the rounds and each ratio the median of the ratios within a round. Prints samples/s, the ratios, the ceiling (our fp32 step's
dense GEMMs alone, replayed: what the pipeline would run if everything else were free), and the time of one full
Human3.6M training epoch: 1,559,752 poses (S1, S5, S6, S7, S8 x 4 cameras, the standard 5-subject split; the
count of the shared data's frames is printed beside it). ``--h36m`` trains on the real shared data. On CUDA
(``--device cuda``) the rates are also given as fractions of the tensor-core peak (``--peak-tflops``, bf16 dense;
tf32, used for fp32, is half).

All pipelines run in one process whose heap keeps freed memory (:mod:`gridconv_core.heap`, as training does;
``--default-heap`` leaves glibc's malloc as it is).

    .venv/bin/python benchmarks/bench_train.py [--steps 10] [--rounds 3] [--h36m] [--device cuda] [--default-heap]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

# the authors' layer is kept in bench_model
from bench_model import (BF16_CHOICES, adam_step, flops_per_pose, gemms_alone, machine, rate, swapped, times_bf16,
                         unfold_convolve)
from gridconv_core.heap import keep_freed_memory
from gridconv_core.io import atomic_write_text
from gridconv_core.data import h36m_root
from gridconv_core.layout_families import handcrafted
from gridconv_core.model import build_model
from gridconv_core.train import Callback, TrainConfig, load_splits, train

H36M_TRAIN_POSES = 1_559_752
"""Training poses of one epoch of the standard 5-subject split (S1, S5, S6, S7, S8, 4 cameras)."""
H36M_TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")


def h36m_frames_in_data() -> int | None:
    """Poses of the 5-subject split in the shared data (4 cameras per 3D frame), or None without it."""
    try:
        path = Path(h36m_root()) / "h36m_3d17_world_mm.npz"
        with np.load(path) as arrays:
            return 4 * sum(arrays[k].shape[0] for k in arrays.files if k.split("/")[0] in H36M_TRAIN_SUBJECTS)
    except (OSError, ValueError):
        return None


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


class _StepClock(Callback):
    """Times our pipeline from the end of its first step to the end of its last, as :func:`official_style` is timed
    (the first step is warm-up); on CUDA it waits for the device at those two steps only."""

    def __init__(self, steps: int, device: torch.device) -> None:
        self.steps, self.device, self.marks = steps, device, []

    def on_batch_end(self, metrics: dict[str, object], model: torch.nn.Module) -> None:
        if metrics["step"] in (1, self.steps):
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            self.marks.append(time.perf_counter())


def ours(config: TrainConfig, amp: str) -> float:
    clock = _StepClock(config.max_steps_per_epoch, torch.device(config.device))
    with tempfile.TemporaryDirectory() as tmp:
        train(config.with_overrides({"out_dir": tmp, "amp": amp}), callbacks=[clock])
    first, last = clock.marks
    return (config.max_steps_per_epoch - 1) * config.batch_size / (last - first)


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


def gemm_ceiling(config: TrainConfig, device: torch.device, repeats: int = 5) -> float:
    """Samples/s of our fp32 training step's dense GEMMs alone (``bench_model.gemms_alone``), batch
    ``config.batch_size``: the pipeline's ceiling at this machine's GEMM rate, with data, gathers, BN and Adam free."""
    model = build_model(config.model).to(device).train()
    joints = model.skeleton.num_joints
    x = torch.randn(config.batch_size, joints, 2, device=device) * 0.3
    y = torch.randn(config.batch_size, joints, 3, device=device) * 0.2
    step = adam_step(model, x, y, config.lr)
    step()
    gemms, _ = gemms_alone(step)
    return rate(config.batch_size, gemms, device, repeats)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10, help="timed optimiser steps per pipeline")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of all pipelines in turn; medians are reported")
    ap.add_argument("--h36m", action="store_true", help="use the real shared Human3.6M (every 20th frame)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    ap.add_argument("--peak-tflops", type=float, default=790.0, help="CUDA: dense bf16 peak in TFLOP/s (H200: 790)")
    ap.add_argument("--default-heap", action="store_true",
                    help="leave glibc's malloc as it is for every pipeline (default: keep freed memory)")
    ap.add_argument("--bf16", default="auto", choices=BF16_CHOICES,
                    help="time our bf16 pipeline: auto = where the device has native bf16 (default), on, off")
    args = ap.parse_args()
    heap_kept = not args.default_heap and keep_freed_memory()  # before any pipeline, so that all run alike
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    data = ({"dataset": "h36m", "frame_step": 20, "test_frame_step": 2000} if args.h36m else
            {"synthetic_train": 200 * (args.steps + 2), "synthetic_val": 200, "synthetic_test": 200})
    config = TrainConfig().with_overrides({
        **data, "name": "bench", "epochs": 1, "max_steps_per_epoch": args.steps + 1, "progress": False,
        "device": device.type, "batch_size": 200, "keep_freed_memory": heap_kept})
    with_bf16 = times_bf16(args.bf16, device)
    pipelines: dict[str, Callable[[], float]] = {
        "ours_fp32": lambda: ours(config, "none"), **({"ours_bf16": lambda: ours(config, "bf16")} if with_bf16 else {}),
        "official_style_fp32": lambda: official_style(config, args.steps, device),
        "ours_fp32_gemms_alone": lambda: gemm_ceiling(config, device)}
    rounds: dict[str, list[float]] = {name: [] for name in pipelines}
    for _ in range(args.rounds):  # in turn, so that the machine's drift hits every pipeline alike
        for name, run in pipelines.items():
            rounds[name].append(run())
    figures = {name: statistics.median(v) for name, v in rounds.items()}

    def ratio(name: str, base: str = "official_style_fp32") -> float:
        """Median over rounds of the ratio within each round."""
        return round(statistics.median(a / b for a, b in zip(rounds[name], rounds[base])), 3)

    frames = h36m_frames_in_data()
    result = {
        "machine": machine(device), "device": device.type, "heap_kept": heap_kept, "batch": 200,
        "data": "h36m" if args.h36m else "synthetic", "steps": args.steps, "rounds": args.rounds, "bf16_timed": with_bf16,
        "samples_per_s": {k: round(v, 1) for k, v in figures.items()},
        "samples_per_s_each_round": {k: [round(x, 1) for x in v] for k, v in rounds.items()},
        "ratio_ours_fp32_vs_official_style": ratio("ours_fp32"),
        "ratio_ours_bf16_vs_official_style": ratio("ours_bf16") if with_bf16 else None,
        "ratio_gemms_alone_vs_official_style": ratio("ours_fp32_gemms_alone"),
        "ours_fp32_of_gemms_alone": ratio("ours_fp32", "ours_fp32_gemms_alone"),
        "h36m_epoch_poses": H36M_TRAIN_POSES, "h36m_epoch_poses_in_shared_data": frames,
        "h36m_epoch_minutes": {k: round(H36M_TRAIN_POSES / v / 60, 1) for k, v in figures.items()},
        "note": "official_style = per-sample numpy SGT in __getitem__ + DataLoader(num_workers=0) + unfold D-GridConv",
    }
    if device.type == "cuda":  # naive FLOPs (3x the forward's) against the tensor-core peaks
        flops = 3 * flops_per_pose(build_model(config.model))
        result["frac_gpu_peak"] = {"ours_fp32_vs_tf32": figures["ours_fp32"] * flops / (args.peak_tflops * 0.5e12),
                                   "ours_bf16_vs_bf16": figures.get("ours_bf16", float("nan")) * flops / (args.peak_tflops * 1e12)}
    print(json.dumps(result, indent=2))
    atomic_write_text(Path(__file__).parent / "results" / f"bench_train_{device.type}.json",
                      json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

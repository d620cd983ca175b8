"""bf16 autocast vs fp32 training curves of the default D-GridConv on real Human3.6M, same seed (issue 9).

Both runs see the same samples in the same order (same seed, GT 2D input): train on S1 (every 10th
frame), validate on S8 (every 50th frame) after each epoch, ``--epochs`` x ``--steps`` Adam steps of
batch 200. The bf16 curve "matches" when its validation MPJPE differs from fp32's by no more than the
noise scale printed beside it: the standard error of the fp32 validation MPJPE over its frames, and
(with ``--noise-seed``) the gap between two fp32 runs that differ only in their seed.

    .venv/bin/python benchmarks/bf16_vs_fp32.py [--epochs 3] [--steps 150] [--noise-seed 1]

Human3.6M may not be redistributed: the runs go to a temporary folder and only metric values are
written to ``results/bf16_vs_fp32.json``.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench_model import machine
from gridconv_core.amp import native_bf16
from gridconv_core.evaluate import predict
from gridconv_core.io import atomic_write_text
from gridconv_core.metrics import mpjpe
from gridconv_core.train import TrainConfig, train
from gridconv_core.train.trainer import load_train_val

RESULTS = Path(__file__).resolve().parent / "results"


def run(base: TrainConfig, val: Any, amp: str, seed: int) -> dict[str, Any]:
    """One training run: its per-epoch curve, and the per-frame validation errors of its selected weights."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = train(base.with_overrides({"out_dir": tmp, "name": f"{amp}-{seed}", "amp": amp, "seed": seed}))
    per_frame = np.asarray(mpjpe(predict(result.model, val.pose2d) * 1000, val.pose3d * 1000, per_frame=True))
    return {
        "amp": amp, "seed": seed, "seconds": round(time.perf_counter() - t0, 1),
        "epochs": [{k: r[k] for k in ("epoch", "train_loss", "val_mpjpe", "samples_per_s")} for r in result.history],
        "val_mpjpe_selected_mm": float(per_frame.mean()),
        "val_mpjpe_standard_error_mm": float(per_frame.std(ddof=1) / np.sqrt(len(per_frame))),
        "test_p1star_mm": float(result.test["P1*"]) if result.test is not None else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=150, help="Adam steps (batch 200) per epoch")
    ap.add_argument("--noise-seed", type=int, default=None, help="also train fp32 with this seed (run-to-run noise)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()
    base = TrainConfig().with_overrides({
        "dataset": "h36m", "source": "gt", "train_subjects": ["S1"], "val_subjects": ["S8"], "frame_step": 10,
        "val_frame_step": 50, "test_frame_step": 200, "epochs": args.epochs, "max_steps_per_epoch": args.steps,
        "batch_size": 200, "progress": False, "device": args.device})
    device, (_, val) = torch.device(args.device), load_train_val(base)
    runs = [run(base, val, "none", 0), run(base, val, "bf16", 0)]
    if args.noise_seed is not None:
        runs.append(run(base, val, "none", args.noise_seed))
    fp32, bf16 = runs[0], runs[1]
    gaps = [b["val_mpjpe"] - f["val_mpjpe"] for f, b in zip(fp32["epochs"], bf16["epochs"])]
    result: dict[str, Any] = {
        "machine": machine(device), "native_bf16": native_bf16(device),
        "setup": "GT 2D, train S1 every 10th frame, validate S8 every 50th, test S9/S11 every 200th; batch 200, "
                 f"{args.epochs} epochs x {args.steps} steps, Adam lr 1e-3 (x0.96 per epoch), default D-GridConv",
        "runs": runs,
        "val_gap_bf16_minus_fp32_mm": [round(g, 3) for g in gaps],
        "val_standard_error_fp32_mm": round(fp32["val_mpjpe_standard_error_mm"], 3),
    }
    if args.noise_seed is not None:
        result["val_gap_seed_fp32_mm"] = [round(o["val_mpjpe"] - f["val_mpjpe"], 3)
                                          for f, o in zip(fp32["epochs"], runs[2]["epochs"])]
    print(json.dumps(result, indent=2))
    atomic_write_text(RESULTS / "bf16_vs_fp32.json", json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

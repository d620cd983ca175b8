"""CPU-budget study on real Human3.6M: SimpleBaseline vs GridConv vs D-GridConv (handcrafted, AutoGrids).

Every model gets the same budget: the same number of Adam steps of the same batch size on the same
training subjects, model selection on a held-out training subject (never on the test set), and the
selected weights are scored on S9/S11 under P1* and P2 (trained and tested on ground-truth 2D) and P1
and P2 (trained and tested on the SH detections). The paper's ordering (D-GridConv > GridConv >
SimpleBaseline; learnable > handcrafted) is the hypothesis under test, not a result to force.

    python benchmarks/h36m_budget_study.py --epochs 2 --steps-per-epoch 300 --out benchmarks/results/h36m_budget_study.json

Human3.6M may not be redistributed: runs (checkpoints) go to --runs-dir, outside version control;
only the metric values are written to --out.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from bench_model import machine
from gridconv_core import GLNConfig, build_model
from gridconv_core.data import h36m_root
from gridconv_core.io import atomic_write_text
from gridconv_core.metrics import mpjpe
from gridconv_core.train import TrainConfig, load_splits, train

MODELS: dict[str, GLNConfig] = {
    "SimpleBaseline": GLNConfig(model="simple_baseline"),
    "GridConv (handcrafted)": GLNConfig(model="gridconv"),
    "D-GridConv (handcrafted)": GLNConfig(),
    "D-GridConv (AutoGrids)": GLNConfig(sgt="autogrids"),
}


def run_one(name: str, model: GLNConfig, source: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train one model on one 2D source under the shared budget and return its test metrics.

    A finished run (its ``report.json`` exists) is read back, an interrupted one is resumed from its
    last checkpoint: a killed study continues where it stopped.
    """
    config = TrainConfig(
        model=model,
        name=f"{name.split()[0].lower()}-{model.sgt}-{source}",
        out_dir=str(args.runs_dir),
        dataset="h36m",
        data_root=str(args.data_root),
        source=source,
        frame_step=args.frame_step,
        test_frame_step=args.test_frame_step,
        epochs=args.epochs,
        max_steps_per_epoch=args.steps_per_epoch,
        noise_off_epoch=max(1, math.ceil(0.3 * args.epochs)),  # paper: noise for the first 30% of training
        seed=args.seed,
        device="cpu",
        progress=False,
    )
    if not (config.run_dir / "report.json").exists():
        train(config, resume=(config.run_dir / "last.pt").exists())
    report = json.loads((config.run_dir / "report.json").read_text())
    last = json.loads((config.run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    protocols = report["protocols"]
    return {
        "source": source,
        "train_seconds": round(last["elapsed_s"], 1),
        "best_epoch": last["best_epoch"],
        "val_mpjpe": round(last["best_val_mpjpe"], 2),
        "mean_pose_mpjpe": round(mean_pose_mpjpe(config), 2),
        "test_frames": report["num_frames"],
        "test": {k: round(v["action_mean"], 2) for k, v in protocols.items()},
        "test_frame_mean": {k: round(v["frame_mean"], 2) for k, v in protocols.items()},
        "parameters": sum(p.numel() for p in build_model(model).parameters()),
    }


@functools.cache
def _mean_pose_mpjpe(source: str, frame_step: int, test_frame_step: int, data_root: str) -> float:
    config = TrainConfig(dataset="h36m", data_root=data_root, source=source, frame_step=frame_step,
                         test_frame_step=test_frame_step)
    train_set, _, test_set = load_splits(config)
    return mpjpe(train_set.pose3d.mean(dim=0).expand_as(test_set.pose3d), test_set.pose3d) * 1000.0


def mean_pose_mpjpe(config: TrainConfig) -> float:
    """Reference: MPJPE (mm) of always predicting the mean training pose, on the same test frames."""
    return _mean_pose_mpjpe(config.source, config.frame_step, config.test_frame_step, config.data_root)


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown table: one row per model, P1*, P2 (GT), P1, P2 (SH), action-wise means in mm."""
    lines = ["| model | params | P1* (GT) | P2 (GT) | P1 (SH) | P2 (SH) | train s |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, runs in results.items():
        by = {r["source"]: r for r in runs}
        gt, sh = by.get("gt", {}).get("test", {}), by.get("sh", {}).get("test", {})
        secs = sum(r["train_seconds"] for r in runs)
        params = runs[0]["parameters"] if runs else 0
        cells = [gt.get("P1*"), gt.get("P2"), sh.get("P1"), sh.get("P2")]
        lines.append(f"| {name} | {params:,} | " + " | ".join("-" if c is None else f"{c:.1f}" for c in cells)
                     + f" | {secs:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=None, help="Human3.6M folder (default: GRIDCONV_H36M or ../shared)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps-per-epoch", type=int, default=300)
    parser.add_argument("--frame-step", type=int, default=5, help="keep every n-th training/validation frame")
    parser.add_argument("--test-frame-step", type=int, default=1, help="1 = every S9/S11 test frame")
    parser.add_argument("--sources", default="gt,sh")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated names from: " + ", ".join(MODELS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/budget_study"),
                        help="run folders (checkpoints: never commit them); a rerun reuses or resumes them")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/h36m_budget_study.json"))
    args = parser.parse_args()
    args.data_root = args.data_root or h36m_root()
    names = [n.strip() for n in args.models.split(",")]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    results: dict[str, list[dict[str, Any]]] = {}
    start = time.perf_counter()
    for name in names:
        for source in args.sources.split(","):
            results.setdefault(name, []).append(run_one(name, MODELS[name], source, args))
            print(f"{name} [{source}]: {results[name][-1]['test']}", flush=True)
    report = {
        "command": "python benchmarks/h36m_budget_study.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("data_root", "out", "runs_dir")),
        "machine": machine(torch.device("cpu")),
        "budget": {"epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch, "batch": 200,
                   "samples_seen": args.epochs * args.steps_per_epoch * 200, "frame_step": args.frame_step,
                   "test_frame_step": args.test_frame_step, "train_subjects": "S1 S5 S6 S7",
                   "validation": "S8 (model selection)", "test": "S9 S11"},
        "seconds_this_invocation": round(time.perf_counter() - start, 1),
        "results": results,
        "table_markdown": table(results),
    }
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(report["table_markdown"])
    print(f"{report['seconds_this_invocation']:.0f} s in this invocation; written to {args.out}")


if __name__ == "__main__":
    main()

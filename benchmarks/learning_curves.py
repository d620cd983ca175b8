"""Learning curves on real Human3.6M: validation MPJPE against training samples and seconds.

Two phases, kept apart so that the test subjects are read once, at the end:

``search``
    Candidate recipes (optimiser, schedule, peak LR, batch size, ...) for each model, trained for the
    same sample budget on S1, S5, S6, S7 and validated on the held-out training subject S8. S9/S11 are
    never read. The recipe is chosen from these curves.
``final``
    The chosen recipe of each model trained once on the paper's five training subjects with a fixed
    schedule (``selection="last"``: no model selection at all), then scored once on S9/S11.

::

    python benchmarks/learning_curves.py search --models dgridconv,simple_baseline --budget 240000
    python benchmarks/learning_curves.py final --runs dgridconv:fast,simple_baseline:fast --budget 1200000
    python benchmarks/learning_curves.py plot benchmarks/results/recipe_search.json

Runs (checkpoints: never commit them, Human3.6M may not be redistributed) go to ``--runs-dir``; a rerun
reads finished runs back and resumes interrupted ones. Only metrics go to ``--out`` (JSON) and the
figure (HTML, and PNG when kaleido can render it).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from bench_model import machine
from gridconv_core.data import h36m_root
from gridconv_core.io import atomic_write_text
from gridconv_core.train import TrainConfig, train
from gridconv_core.train.config import recipe_overrides
from gridconv_core.train.curves import curve_figure, curve_points, write_figure

MODELS: dict[str, dict[str, Any]] = {
    "dgridconv": {},  # the paper's D-GridConv, handcrafted SGT: 4,790,406 parameters
    "dgridconv_autogrids": {"model.sgt": "autogrids"},
    "gridconv": {"model.model": "gridconv"},
    "simple_baseline": {"model.model": "simple_baseline"},
}
_COSINE = {"optimizer": "adamw", "weight_decay": 0.01, "lr_schedule": "cosine", "warmup_frac": 0.05}
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {"optimizer": "adam", "lr": 1e-3, "lr_schedule": "official"},  # A.3 as the authors' code runs it
    "cos1e-3": {**_COSINE, "lr": 1e-3},
    "cos2e-3": {**_COSINE, "lr": 2e-3},
    "cos4e-3": {**_COSINE, "lr": 4e-3},
    "cos2e-3-clip1": {**_COSINE, "lr": 2e-3, "grad_clip": 1.0},
    "cos2e-3-drop0.1": {**_COSINE, "lr": 2e-3, "model.dropout": 0.1},
    "cos4.5e-3-b1000": {**_COSINE, "lr": 4.5e-3, "batch_size": 1000},  # batch x5, LR x sqrt(5)
}
SEARCH_SPLIT = {"train_subjects": ["S1", "S5", "S6", "S7"], "val_subjects": ["S8"], "test_subjects": [],
                "selection": "best_val"}  # no test subjects: a search never reads S9/S11
FINAL_SPLIT = {"train_subjects": ["S1", "S5", "S6", "S7", "S8"], "val_subjects": [], "test_subjects": ["S9", "S11"],
               "selection": "last"}


def recipe(name: str) -> dict[str, Any]:
    """A recipe's overrides: a key of :data:`RECIPES` or a packaged config (``fast`` -> ``fast_dgridconv.json``)."""
    return RECIPES[name] if name in RECIPES else recipe_overrides(f"{name}_dgridconv")


def run_config(model: str, recipe_name: str, phase: str, args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of one (model, recipe) run under the phase's split and the shared sample budget."""
    overrides = {**MODELS[model], **recipe(recipe_name)}
    batch = int(overrides.get("batch_size", 200))
    steps = max(1, args.budget // (args.points * batch))
    base = {
        "name": f"{phase}-{model}-{recipe_name}-{args.budget // 1000}k", "out_dir": str(args.runs_dir),
        "dataset": "h36m", "data_root": str(args.data_root), "source": "gt", "amp": args.amp, "device": args.device,
        "frame_step": args.frame_step, "val_frame_step": args.val_frame_step, "test_frame_step": args.test_frame_step,
        "epochs": args.points, "max_steps_per_epoch": steps, "noise_off_epoch": max(1, round(0.3 * args.points)),
        "seed": args.seed, "progress": False, **(SEARCH_SPLIT if phase == "search" else FINAL_SPLIT),
    }
    return TrainConfig().with_overrides({**base, **overrides})


def run_one(config: TrainConfig) -> dict[str, Any]:
    """Train (or read back, or resume) one run and summarise its curve."""
    metrics_file = config.run_dir / "metrics.jsonl"
    done = metrics_file.exists() and len(metrics_file.read_text().splitlines()) == config.epochs
    if not done or (config.test_subjects and not (config.run_dir / "report.json").exists()):
        train(config, resume=(config.run_dir / "last.pt").exists())
    history = [json.loads(line) for line in metrics_file.read_text().splitlines()]
    curve = curve_points(history, config.batch_size)
    samples = curve[-1]["samples"]
    summary: dict[str, Any] = {"config": config.to_dict(), "curve": curve, "wall_s": history[-1]["elapsed_s"],
                               "samples": samples, "samples_per_s": round(samples / history[-1]["elapsed_s"], 1)}
    if config.selection == "best_val":
        summary["best_val_mpjpe"] = min(r["val_mpjpe"] for r in curve)
    else:  # the final phase: the test subjects, read once by train() after the last epoch
        report = json.loads((config.run_dir / "report.json").read_text())
        summary["test"] = {k: round(v["action_mean"], 2) for k, v in report["protocols"].items()}
        summary["test_frames"] = report["num_frames"]
    return summary


def figure(results: dict[str, Any], path: Path) -> list[Path]:
    """The runs' validation curves against samples and seconds, as HTML and (with kaleido) PNG."""
    curves = {key: run["curve"] for key, run in results["runs"].items()}
    title = f"Learning curves on Human3.6M ({results['phase']}, validation on S8), {results['machine']['cpu']}"
    return write_figure(curve_figure(curves, title), path, self_contained=False)


def table(results: dict[str, Any]) -> str:
    """Markdown summary: one row per run."""
    final = results["phase"] == "final"
    head = "| run | samples | wall s | samples/s | " + ("P1* (mm) | P2 (mm) |" if final else
                                                        "best val (mm) | val at each point (mm) |")
    lines = [head, "|---|---:|---:|---:|---:|---|" if not final else "|---|---:|---:|---:|---:|---:|"]
    for key, run in results["runs"].items():
        cells = ([f"{run['test'].get('P1*', float('nan')):.1f}", f"{run['test'].get('P2', float('nan')):.1f}"] if final
                 else [f"{run['best_val_mpjpe']:.1f}", " / ".join(f"{p['val_mpjpe']:.0f}" for p in run["curve"])])
        lines.append(f"| {key} | {run['samples']:,} | {run['wall_s']:.0f} | {run['samples_per_s']:.0f} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=("search", "final", "plot"))
    parser.add_argument("results", nargs="?", type=Path, help="plot: the results JSON to draw")
    parser.add_argument("--models", default="dgridconv,simple_baseline", help=f"search: from {', '.join(MODELS)}")
    parser.add_argument("--recipes", default="paper,cos2e-3,cos4e-3", help=f"search: from {', '.join(RECIPES)}")
    parser.add_argument("--runs", default="", help="final: model:recipe pairs, e.g. dgridconv:fast,simple_baseline:fast")
    parser.add_argument("--budget", type=int, default=240_000, help="training samples per run")
    parser.add_argument("--points", type=int, default=6, help="validation points (epochs) per run")
    parser.add_argument("--frame-step", type=int, default=5)
    parser.add_argument("--val-frame-step", type=int, default=25)
    parser.add_argument("--test-frame-step", type=int, default=5)
    parser.add_argument("--amp", default="bf16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/learning_curves"))
    parser.add_argument("--out", type=Path, default=None, help="default benchmarks/results/recipe_<phase>.json")
    args = parser.parse_args()
    if args.phase == "plot":
        results = json.loads(args.results.read_text())
        print("\n".join(str(p) for p in figure(results, args.results)))
        return
    args.data_root = args.data_root or h36m_root()
    out = args.out or Path(f"benchmarks/results/recipe_{args.phase}.json")
    if args.phase == "search":
        pairs = [(m, r) for m in args.models.split(",") for r in args.recipes.split(",")]
    else:
        pairs = [tuple(p.split(":", 1)) for p in args.runs.split(",") if p]
    unknown = [m for m, _ in pairs if m not in MODELS]
    if unknown or not pairs:
        raise SystemExit(f"unknown or no model(s) {unknown}; choose from {list(MODELS)}")
    results: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    results.update({"phase": args.phase, "machine": machine(torch.device(args.device)), "budget": args.budget,
                    "split": SEARCH_SPLIT if args.phase == "search" else FINAL_SPLIT})
    start = time.perf_counter()
    for model, recipe_name in pairs:
        config = run_config(model, recipe_name, args.phase, args)
        key = f"{model}:{recipe_name}@{args.budget // 1000}k"
        results["runs"][key] = {"command": "python " + " ".join(sys.argv), **run_one(config)}
        results["table_markdown"] = table(results)
        atomic_write_text(out, json.dumps(results, indent=1) + "\n")
        print(results["table_markdown"].splitlines()[-1], flush=True)
    print(results["table_markdown"])
    print(f"{time.perf_counter() - start:.0f} s in this invocation; written to {out}")
    if args.phase == "search":  # final runs hold no validation data, so they have no validation curve
        print("figure:", ", ".join(str(p) for p in figure(results, out)))


if __name__ == "__main__":
    main()

"""The paper's full Human3.6M protocol in one GPU run, resumable, inside a wall-clock deadline (issue 11).

Protocol (paper 4.1, A.3): train on S1, S5, S6, S7, S8, every frame, all 4 cameras, ground-truth 2D;
the schedule of a packaged config (default ``configs/fast_dgridconv.json``, else
``paper_dgridconv.json``); no model selection (``selection="last"``: the fixed schedule's final
weights); test once on S9/S11 (P1*, P2). D-GridConv handcrafted first, AutoGrids next if time is left.
Data come from the packed folder (``python -m gridconv_core.data.pack``, 46 MB, git-ignored), since the
GPU machine receives the repository and at most 64 MiB besides.

Expected speed (worked out before any GPU run; the measured figures go beside it):

* A training step costs ~3x the forward: 0.711 GFLOP/sample as the paper counts the layer (0.237 per
  pose, branches unfused), 0.441 GFLOP/sample as the fused layer computes it (0.147, 38% less).
* 150M samples (100 epochs x 1.56M poses; the shared files hold 1,464,400) in ~9 minutes needs
  ~280k samples/s (271k for ours): 0.441 x 280k = 123 TFLOP/s of fused work, 16% of the H200's
  measured 790 TFLOP/s bf16 dense (25% in the paper's count).
* Assumed MFU: 20% of 790 TFLOP/s on the fused FLOPs. The GEMMs are ``(B*25, 9*256) x (9*256, 256)`` for the
  base and ``(B*5, 3*256) x (3*256, 256)`` per border band (N = 256, four bands per layer): large in M but narrow, 40-60% of peak at best, and
  the patch gather ``G @ X`` (K = 25), BN, ReLU, dropout, attention and Adam are memory-bound
  (~4-5 MB of bf16 traffic per sample and step, ~1M samples/s at 4.3 TB/s). 20% gives 158 TFLOP/s:
  **~2.8 us/sample (358k samples/s), 11.4 ms per step at batch 4096, 4.1 s per epoch of 1.46M poses,
  6.8 min for 100 epochs** (4.4 s and 7.3 min for 1.56M).
  Eager mode adds ~1,500 kernel launches per step (~8-15 ms): at batch 4096 that alone halves the rate,
  hence ``compile=true`` (or batch >= 8192). Validation is off (no selection), the test pass is 0.52M
  forwards (< 1 s).

Stopping: before each epoch the script predicts the epoch's end from the last epoch's wall time and
stops cleanly (the last checkpoint is at the previous epoch) when it would pass ``--deadline-s`` minus
``--reserve-s``; ``--resume`` continues from ``runs/`` (a warm device machine keeps ignored folders).
``--fit-epochs`` first measures samples/s on synthetic data with the same trainer and shortens the
schedule to what fits (recorded in the JSON). ``--dry-run`` runs all of it on CPU at a tiny size, from
a tiny packed folder that it writes itself (real frames when the shared data are present, else
synthetic). Results and curves (metrics only, never weights) go to ``--out/gpu_reproduce.json``.

    python benchmarks/gpu_reproduce.py --packed packed/h36m --out $OUT --deadline-s 540 --fit-epochs
    python benchmarks/gpu_reproduce.py --dry-run --out /tmp/gpu_dry
"""
from __future__ import annotations

import argparse
import math
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

START = time.monotonic()
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from gridconv_core.data import h36m_root  # noqa: E402
from gridconv_core.data.pack import pack_h36m, pack_sequences, synthetic_h36m  # noqa: E402
from gridconv_core.data.packed import PACKED_FILE, PackedSequences  # noqa: E402
from gridconv_core.errors import DataError  # noqa: E402
from gridconv_core.io import write_json  # noqa: E402
from gridconv_core.train import Callback, ConfigError, TrainConfig, train  # noqa: E402
from gridconv_core.train.config import default_config_path  # noqa: E402

PAPER = {"handcrafted": {"P1*": 37.15, "P2": 28.32}, "autogrids": {"P1*": 36.4, "P2": 28.3}}
PAPER_EPOCHS = 100  # paper 4.2 / the authors' README
"""The paper's D-GridConv, ground-truth 2D, mm: handcrafted SGT (ablation) and with AutoGrids (Table 1)."""
FLOP_PER_SAMPLE = {"paper_count": 3 * 0.237e9, "fused": 3 * 0.147e9}
H200_BF16_FLOPS = 790e12  # measured on the lent H200 (8192^3 bf16 GEMM, random data)
ASSUMED_MFU = 0.20
TRAIN_SUBJECTS = ["S1", "S5", "S6", "S7", "S8"]
CAMERAS = 4
FULL_TRAIN_POSES = 1_464_400  # S1 S5 S6 S7 S8 x 4 cameras in the shared files (1,559,752 in the full dataset)
CURVE_KEYS = ("epoch", "train_loss", "val_mpjpe", "lr", "steps", "time_s", "samples_per_s", "elapsed_s")


class _Stop(Exception):
    """Raised between epochs (the previous epoch is checkpointed) to end this call cleanly."""


def predicted_stop(elapsed_s: float, epoch_s: float, deadline_s: float, reserve_s: float) -> bool:
    """Whether one more epoch of ``epoch_s`` (+10%) would end past the deadline less the final reserve."""
    return elapsed_s + 1.1 * epoch_s + reserve_s > deadline_s


def expected(batch_size: int, train_poses: int, epochs: int) -> dict[str, float]:
    """The FLOP-based forecast of the module doc for a batch size, data size and epoch count."""
    per_sample = FLOP_PER_SAMPLE["fused"] / (ASSUMED_MFU * H200_BF16_FLOPS)
    return {"assumed_mfu_fused": ASSUMED_MFU, "us_per_sample": round(per_sample * 1e6, 3),
            "step_ms": round(per_sample * batch_size * 1e3, 2), "samples_per_s": round(1 / per_sample),
            "epoch_s": round(per_sample * train_poses, 2), "run_min": round(per_sample * train_poses * epochs / 60, 2),
            "mfu_fused_needed_for_9_min": round(FLOP_PER_SAMPLE["fused"] * train_poses * epochs / 540 / H200_BF16_FLOPS, 3)}


class Guard(Callback):
    """Stops between epochs at the deadline (or after ``stop_after`` epochs of this call); reports each epoch."""

    def __init__(self, deadline_s: float, reserve_s: float, stop_after: int, on_record: Any) -> None:
        self.deadline_s, self.reserve_s, self.stop_after, self.on_record = deadline_s, reserve_s, stop_after, on_record
        self.done, self.last_end, self.epoch_s = 0, time.monotonic(), 0.0

    def on_epoch_start(self, epoch: int, model: nn.Module) -> None:
        if self.done and ((self.stop_after and self.done >= self.stop_after)
                          or predicted_stop(time.monotonic() - START, self.epoch_s, self.deadline_s, self.reserve_s)):
            raise _Stop(epoch)

    def on_epoch_end(self, metrics: dict[str, Any], model: nn.Module) -> None:
        now = time.monotonic()
        self.epoch_s, self.last_end, self.done = now - self.last_end, now, self.done + 1
        self.on_record(metrics)


def protocol_config(sgt: str, args: argparse.Namespace, device: str) -> TrainConfig:
    """The paper's data protocol (module doc) on top of the recipe file's model, optimiser, schedule and batch.

    AutoGrids takes ``<recipe>_autogrids.json`` when there is one (the paper configs), else the same recipe.
    """
    own = args.config.with_name(f"{args.config.stem}_autogrids.json")
    base = TrainConfig.from_json(own if sgt == "autogrids" and own.exists() else args.config)
    return base.with_overrides({
        "model.sgt": sgt, "name": sgt, "out_dir": str(args.runs), "dataset": "h36m", "data_root": str(args.packed),
        "source": "gt", "train_subjects": TRAIN_SUBJECTS, "val_subjects": [], "val_tail": 0.0, "selection": "last",
        "test_subjects": ["S9", "S11"], "frame_step": 1, "test_frame_step": 1, "device": device, "progress": False,
        "time_budget_s": 0.0, "max_steps_per_epoch": 0, "epochs": PAPER_EPOCHS, "amp": "auto",
    }).with_overrides(args.set)


def train_poses(config: TrainConfig) -> int:
    """Training poses of the protocol: every frame of the training subjects, 4 cameras each."""
    packed = PackedSequences(Path(config.data_root) / PACKED_FILE)
    return CAMERAS * sum(n for k, n in packed.lengths.items() if k.partition("/")[0] in config.train_subjects)


def measure_rate(config: TrainConfig, steps: int) -> float:
    """Training samples/s of ``config``'s model, batch, AMP and compile through :func:`train` on synthetic data."""
    with tempfile.TemporaryDirectory() as tmp:
        history = train(config.with_overrides({
            "dataset": "synthetic", "data_root": "", "out_dir": tmp, "name": "probe", "epochs": 2,
            "synthetic_train": config.batch_size * steps, "synthetic_val": 64, "synthetic_test": 64})).history
    return float(history[-1]["samples_per_s"])  # epoch 2: after warm-up and compilation


def machine() -> dict[str, Any]:
    """Device, torch and CUDA versions for the results file."""
    info: dict[str, Any] = {"torch": torch.__version__, "python": platform.python_version(), "device": "cpu"}
    if torch.cuda.is_available():
        info.update(device=torch.cuda.get_device_name(0), cuda=torch.version.cuda,
                    gpu_memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
    return info


def dry_run_data(folder: Path) -> tuple[Path, str]:
    """A tiny packed folder: real frames (2 sequences x 20 frames a subject) when present, else synthetic."""
    try:
        return pack_h36m(h36m_root(), folder, sequences_per_subject=2, frames_per_sequence=20), "h36m subset"
    except DataError:
        sequences, cameras = synthetic_h36m(frames_per_subject=40, seed=0)
        return pack_sequences(sequences, cameras, folder), "synthetic"


def summary(results: dict[str, Any]) -> str:
    """The printed table: status, epochs, speed, wall time, P1*/P2 beside the paper's."""
    lines = [f"{'model':<12} {'status':<9} {'epochs':>7} {'samples/s':>10} {'epoch s':>8} {'wall s':>7} {'P1*':>6} {'P2':>6}  paper"]
    for sgt, r in results["models"].items():
        test = r.get("test", {})
        lines.append(f"{sgt:<12} {r['status']:<9} {r['epochs_done']:>3}/{r['epochs']:<3} {r.get('samples_per_s', 0):>10.0f} "
                     f"{r.get('epoch_s', 0):>8.2f} {r.get('wall_s', 0):>7.1f} {test.get('P1*', math.nan):>6.1f} "
                     f"{test.get('P2', math.nan):>6.1f}  {PAPER[sgt]['P1*']} / {PAPER[sgt]['P2']}")
    return "\n".join(lines)


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2] if values else math.nan


def run_model(sgt: str, args: argparse.Namespace, device: str, results: dict[str, Any], write: Any) -> None:
    """Train (or resume) one model; fills ``results["models"][sgt]`` and writes the JSON after every epoch."""
    config = protocol_config(sgt, args, device)
    entry: dict[str, Any] = {"status": "starting", "epochs": config.epochs, "epochs_done": 0, "curve": []}
    results["models"][sgt] = entry
    resume = args.resume and (config.run_dir / "last.pt").exists()
    if resume:  # keep the schedule length the run started with
        config = config.with_overrides({"epochs": TrainConfig.from_json(config.run_dir / "config.json").epochs})
    elif args.fit_epochs:
        try:
            rate = measure_rate(config, args.probe_steps)
        except Exception as err:  # a compiler/backend failure must not cost the one GPU call: run eager
            if not config.compile:
                raise
            print(f"[{sgt}] torch.compile failed ({type(err).__name__}: {str(err)[:200]}); training eager", flush=True)
            config = config.with_overrides({"compile": False})
            entry["compile_failed"] = f"{type(err).__name__}: {str(err)[:500]}"
            rate = measure_rate(config, args.probe_steps)
        epoch_s = train_poses(config) / rate
        fit = int((args.deadline_s - (time.monotonic() - START) - args.reserve_s) / (1.1 * epoch_s))
        entry.update(probe_samples_per_s=round(rate), probe_epoch_s=round(epoch_s, 2))
        if fit < config.epochs:
            print(f"[{sgt}] PROTOCOL SHORTENED: {config.epochs} -> {max(fit, 0)} epochs fit before the deadline "
                  f"({rate:.0f} samples/s measured)", flush=True)
            entry["shortened_from"] = config.epochs
            if fit < args.min_epochs:
                entry.update(status="skipped", epochs=max(fit, 0))
                write()
                return
            config = config.with_overrides({"epochs": fit})
    entry.update(epochs=config.epochs, train_poses=train_poses(config), config=config.to_dict())
    t0 = time.monotonic()

    def record(metrics: dict[str, Any]) -> None:
        entry["curve"].append({k: metrics[k] for k in CURVE_KEYS if k in metrics})
        entry.update(epochs_done=int(metrics["epoch"]), status="running", wall_s=round(time.monotonic() - t0, 1))
        print(f"[{sgt}] epoch {metrics['epoch']}/{config.epochs} loss {metrics['train_loss']:.5f} "
              f"{metrics['samples_per_s']:.0f} samples/s {metrics['time_s']:.2f} s", flush=True)
        write()

    try:
        result = train(config, [Guard(args.deadline_s, args.reserve_s, args.stop_after, record)], resume=resume)
    except _Stop:
        entry.update(status="stopped", wall_s=round(time.monotonic() - t0, 1))
        write()
        return
    history = result.history  # the whole run, earlier calls included
    entry.update(status="complete", epochs_done=len(history), wall_s=round(time.monotonic() - t0, 1),
                 curve=[{k: r[k] for k in CURVE_KEYS if k in r} for r in history],
                 samples_per_s=round(_median([r["samples_per_s"] for r in history[1:] or history])),
                 epoch_s=round(_median([r["time_s"] for r in history[1:] or history]), 3),
                 train_elapsed_s=history[-1]["elapsed_s"], mean_pose_mpjpe=result.mean_pose_mpjpe,
                 test={name: r.value for name, r in result.test.results.items()} if result.test else {},
                 test_report=result.test.to_dict() if result.test else None)
    write()


def main(argv: list[str] | None = None) -> int:
    """CLI entry (module doc)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=None,
                        help="recipe JSON (default: configs/fast_dgridconv.json, else configs/paper_dgridconv.json)")
    parser.add_argument("--packed", type=Path, default=REPO / "packed" / "h36m", help="packed data folder")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "gpu_reproduce_out", help="results folder ($OUT)")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "gpu_reproduce", help="checkpoints (git-ignored)")
    parser.add_argument("--models", default="handcrafted,autogrids", help="comma list: handcrafted, autogrids")
    parser.add_argument("--deadline-s", type=float, default=540.0, help="wall clock from start: stop cleanly before")
    parser.add_argument("--reserve-s", type=float, default=20.0, help="kept for the test pass and writing")
    parser.add_argument("--min-start-s", type=float, default=60.0, help="start a model only with this much left")
    parser.add_argument("--fit-epochs", action="store_true", help="shorten the schedule to what fits the deadline")
    parser.add_argument("--min-epochs", type=int, default=10, help="with --fit-epochs: skip a model if fewer fit")
    parser.add_argument("--probe-steps", type=int, default=30, help="steps per epoch of the throughput probe")
    parser.add_argument("--stop-after", type=int, default=0, help="stop after this many epochs of this call (0: no)")
    parser.add_argument("--resume", action="store_true", help="continue the runs in --runs")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny data and width, 2 epochs")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. batch_size=4096")
    args = parser.parse_args(argv)
    note = ""
    if args.config is None:
        args.config = default_config_path("fast_dgridconv")
        if not args.config.exists():
            args.config, note = default_config_path("paper_dgridconv"), "configs/fast_dgridconv.json not found: paper recipe"
    device = "cuda" if torch.cuda.is_available() and not args.dry_run else "cpu"
    data = "packed"
    out = args.out / "gpu_reproduce.json"
    try:
        if args.dry_run:
            args.packed, data = dry_run_data(args.out / "packed")
            args.runs = args.out / "runs"
            if not args.resume:
                shutil.rmtree(args.runs, ignore_errors=True)  # the dry run's own scratch checkpoints
            torch.set_num_threads(1)  # tiny tensors: threads only contend
            args.set = ["epochs=2", "batch_size=32", "eval_batch_size=256", "model.channels=32", "compile=false", *args.set]
            args.probe_steps, args.min_epochs, args.min_start_s = 2, 1, 0.0
        elif not (args.packed / PACKED_FILE).is_file():
            raise DataError(f"no packed data in {args.packed}; run python -m gridconv_core.data.pack first")
        first, recipe = protocol_config("handcrafted", args, device), TrainConfig.from_json(args.config)
        results: dict[str, Any] = {
            "what": "GridConv paper protocol (issue 11): train S1 S5 S6 S7 S8 every frame, GT 2D, no selection, test S9 S11",
            "config_file": args.config.name, "config_note": note, "data": data, "machine": machine(),
            "dry_run": args.dry_run, "deadline_s": args.deadline_s, "paper": PAPER, "models": {},
            "expected_h200": (expected(recipe.batch_size, FULL_TRAIN_POSES, recipe.epochs) if args.dry_run
                              else expected(first.batch_size, train_poses(first), first.epochs)),
        }

        def write() -> None:
            results["wall_s"] = round(time.monotonic() - START, 1)
            write_json(results, out)

        if note:
            print(f"note: {note}", flush=True)
        for sgt in [m.strip() for m in args.models.split(",") if m.strip()]:
            if sgt not in PAPER:
                raise ConfigError(f"unknown model {sgt!r}; choose handcrafted, autogrids")
            if time.monotonic() - START + args.reserve_s + args.min_start_s >= args.deadline_s:
                results["models"][sgt] = {"status": "no time", "epochs": 0, "epochs_done": 0}
                continue
            run_model(sgt, args, device, results, write)
        write()
    except (ConfigError, DataError) as err:  # our error family: one line
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary(results))
    print(f"wrote {out} ({results['wall_s']} s, {results['machine']['device']}, torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

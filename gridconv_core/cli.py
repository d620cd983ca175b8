"""The ``gridconv`` command: train, evaluate, predict, export, layouts.

Every command reports bad input as one line on stderr with a non-zero exit status, and writes its
outputs atomically (no partial files).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .amp import AMP_MODES
from .errors import CliError
from .heap import keep_freed_memory
from .io import atomic_path, atomic_write_bytes, atomic_write_text
from .sgt import GridLayout

__all__ = ["main", "build_parser"]

EXIT_ERROR = 1


# ---------------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace) -> None:
    from .train import TrainConfig, train
    from .train.config import default_config_path
    from .train.curves import curve_figure, curve_points, curve_table, write_figure

    if isinstance(args.resume, str):  # --resume RUN_DIR: the run's own config, then overrides
        run_dir = Path(args.resume)
        if not (run_dir / "last.pt").is_file():
            raise CliError(f"nothing to resume: {run_dir / 'last.pt'} does not exist")
        config = TrainConfig.from_json(run_dir / "config.json")
        config = config.with_overrides({"out_dir": str(run_dir.parent), "name": run_dir.name})
    else:
        config = TrainConfig.from_json(Path(args.config) if args.config else default_config_path())
    config = config.with_overrides([pair for pairs in args.set or [] for pair in pairs])
    if args.out:
        config = config.with_overrides({"out_dir": args.out})
    if args.resume is True and not config.name:
        raise CliError("--resume needs the run folder (--resume runs/NAME) or --set name=NAME")
    result = train(config, resume=bool(args.resume))
    if args.json:
        print(json.dumps({"run_dir": str(result.run_dir), "best_epoch": result.best_epoch,
                          "best_val_mpjpe": None if math.isnan(result.best_val_mpjpe) else result.best_val_mpjpe,
                          "history": result.history,
                          "mean_pose_mpjpe": result.mean_pose_mpjpe,
                          "test": result.test.to_dict() if result.test else None}, indent=2))
        return
    points = curve_points(result.history, config.batch_size)
    print(curve_table(points))
    try:
        figures = write_figure(curve_figure({config.model.model: points}, f"Learning curve: {result.run_dir.name}"),
                               result.run_dir / "curve", png=False)
        print("learning curve: " + ", ".join(str(p) for p in figures))
    except ImportError:  # a training-only install without plotly
        pass
    chosen = "the last epoch" if config.selection == "last" else "best validation epoch"
    val = "" if math.isnan(result.best_val_mpjpe) else f": {result.best_val_mpjpe:.1f} mm MPJPE"
    print(f"run: {result.run_dir}  ({chosen} {result.best_epoch}{val})")
    if result.test is not None:
        print(result.test.table())
    print(f"reference: always predicting the mean training pose gives {result.mean_pose_mpjpe:.1f} mm MPJPE")


# ---------------------------------------------------------------------- evaluate
def cmd_evaluate(args: argparse.Namespace) -> None:
    from . import data
    from .data.formats import load_generic_npz, load_mpi_inf_3dhp
    from .evaluate import check_protocols, evaluate, evaluate_h36m
    from .train import model_from_checkpoint
    from .train.trainer import synthetic_split

    device = torch.device("cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu")
    model, config = model_from_checkpoint(args.checkpoint, device, "model" if args.last else "best_state")
    protocols = check_protocols(p.strip() for p in args.protocols.split(",")) if args.protocols else None
    kind, _, path = args.data.partition(":")
    if kind == "h36m":
        root = args.data_root or config.data_root or data.h36m_root()
        subjects = args.subjects.split(",") if args.subjects else config.test_subjects
        report = evaluate_h36m(model, config.source, root, subjects, args.frame_step, protocols, args.cross,
                               args.batch_size, args.amp)
    else:
        if kind == "synthetic":
            ps = synthetic_split(config, "test")
        elif kind in ("generic", "3dhp") and path:
            loader = load_generic_npz if kind == "generic" else load_mpi_inf_3dhp
            ps = loader(path)
        else:
            raise CliError(f"--data must be h36m, synthetic, generic:PATH or 3dhp:PATH, got {args.data!r}")
        report = evaluate(model, ps, protocols, args.batch_size, args.amp)
    print(report.to_json() if args.json else report.table())


# ---------------------------------------------------------------------- predict
def read_keypoints(path: Path, image_size: Sequence[float] | None, keypoints: str | None
                   ) -> tuple[np.ndarray, float, float, str]:
    """Read 2D keypoints ``(N, 17, 2)`` in pixels, the image size and the keypoint format from a file."""
    if not path.is_file():
        raise CliError(f"input file not found: {path}")
    suffix = path.suffix.lower()
    meta: dict[str, Any] = {}
    try:
        if suffix == ".json":
            doc = json.loads(path.read_text())
            if isinstance(doc, dict):
                meta = doc
                doc = doc.get("keypoints")
            raw = np.asarray(doc, dtype=np.float64)
        elif suffix == ".csv":
            rows = [r for r in csv.reader(io.StringIO(path.read_text())) if r and any(c.strip() for c in r)]
            if rows and not _is_number(rows[0][0]):
                rows = rows[1:]  # header
            raw = np.asarray([[float(c) for c in r] for r in rows], dtype=np.float64)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                meta = {k: z[k].tolist() for k in z.files if k != "keypoints"}
                if "keypoints" not in z.files:
                    raise CliError(f"{path}: npz needs a 'keypoints' array (N, 17, 2)")
                raw = np.asarray(z["keypoints"], dtype=np.float64)
        else:
            raise CliError(f"{path}: unsupported input type {suffix!r} (use .json, .csv or .npz)")
    except (json.JSONDecodeError, ValueError, TypeError, OSError) as err:
        if isinstance(err, CliError):
            raise
        raise CliError(f"{path}: malformed keypoint file ({str(err).splitlines()[0][:120]})") from None
    fmt = keypoints or str(meta.get("skeleton", meta.get("format", "h36m17")))
    if fmt not in ("h36m17", "coco17"):
        raise CliError(f"{path}: keypoint format {fmt!r} is not h36m17 or coco17")
    if raw.ndim == 2 and raw.shape[1] in (34, 51):  # flat rows x0,y0[,s0],x1,...
        raw = raw.reshape(len(raw), 17, raw.shape[1] // 17)
    if raw.ndim != 3 or raw.shape[0] == 0 or raw.shape[1] != 17 or raw.shape[2] not in (2, 3):
        raise CliError(f"{path}: keypoints have shape {raw.shape}, expected (N, 17, 2) or (N, 17, 3) with N >= 1")
    uv = raw[..., :2]
    bad = np.flatnonzero(~np.isfinite(uv).all(axis=(1, 2)))
    if bad.size:
        raise CliError(f"{path}: {bad.size} rows contain NaN/inf (first row {bad[0]})")
    size = image_size if image_size is not None else meta.get("image_size")
    try:
        w, h = (float(v) for v in size)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise CliError(f"{path}: no image size; pass --image-size W H or an 'image_size': [W, H] field") from None
    if not (w > 0 and h > 0):
        raise CliError(f"image size must be positive, got {w} x {h}")
    return uv, w, h, fmt


def cmd_predict(args: argparse.Namespace) -> None:
    from . import data
    from .evaluate import predict
    from .train import model_from_checkpoint

    out = Path(args.out)
    if out.suffix.lower() not in (".json", ".npz"):
        raise CliError(f"output must end in .json or .npz, got {out}")
    uv, w, h, fmt = read_keypoints(Path(args.input), args.image_size, args.keypoints)
    model, _ = model_from_checkpoint(args.checkpoint)
    if model.skeleton.name != "h36m17":
        raise CliError(f"the checkpoint's model uses skeleton {model.skeleton.name}; predict needs an h36m17 model")
    if fmt == "coco17":
        uv = data.coco17_to_h36m17(uv)
    x = data.normalize_wild(uv, w, h)  # scaled by max(W, H) / 2 as the authors recommend, centred
    pose3d = predict(model, torch.as_tensor(np.asarray(x), dtype=torch.float32)).numpy()
    names = list(model.skeleton.joint_names)
    if out.suffix.lower() == ".json":
        atomic_write_text(out, json.dumps({"joints": names, "unit": "m", "root_relative": True,
                                           "pose3d": np.round(pose3d, 6).tolist()}) + "\n")
    else:
        buf = io.BytesIO()
        np.savez(buf, pose3d=pose3d, joints=np.asarray(names))
        atomic_write_bytes(out, buf.getvalue())
    print(f"wrote {len(pose3d)} 3D poses to {out}")


# ---------------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> None:
    import onnxruntime as ort

    from .train import model_from_checkpoint

    out = Path(args.out)
    model, _ = model_from_checkpoint(args.checkpoint)
    j = model.skeleton.num_joints
    example = torch.randn(args.batch, j, 2, generator=torch.Generator().manual_seed(0)) * 0.3
    with atomic_path(out) as tmp:  # written only when onnxruntime agrees with PyTorch
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), str(tmp), dynamo=False, input_names=["pose2d"],
                              output_names=["pose3d"], dynamic_axes={"pose2d": {0: "batch"}, "pose3d": {0: "batch"}},
                              opset_version=args.opset)
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        checks = (example, torch.randn(3 * args.batch + 1, j, 2, generator=torch.Generator().manual_seed(1)) * 0.3)
        with torch.no_grad():  # the export's batch and another one: the batch axis must stay dynamic
            diff = max(float(np.abs(session.run(None, {"pose2d": x.numpy()})[0] - model(x).numpy()).max())
                       for x in checks)
        if not diff <= args.tolerance:
            raise CliError(f"ONNX output differs from PyTorch by {diff:.3g} > {args.tolerance:g}; not written")
    print(f"wrote {out}; onnxruntime vs PyTorch max abs diff {diff:.3g} m on batches of {args.batch} "
          f"and {3 * args.batch + 1} poses")


# ---------------------------------------------------------------------- layouts
def cmd_layouts(args: argparse.Namespace) -> None:
    from .layout_families import FAMILIES, get_layout

    if args.action == "list":
        width = max(map(len, FAMILIES))
        for name, text in FAMILIES.items():
            print(f"{name.ljust(width)}  {text}")
        return
    if not args.target:
        raise CliError(f"layouts {args.action} needs a layout name or file")
    if args.action == "validate":
        layout = GridLayout.from_json(Path(args.target))
    else:
        shape = tuple(args.shape) if args.shape else None
        layout = get_layout(args.target, args.skeleton, shape, args.seed)
    topo = layout.topology()
    h, p = layout.shape
    label = f"{layout.name or args.target}: {h}x{p} layout of {layout.skeleton_name}"
    edges = f"eq. 2: {len(topo.kept)}/{len(topo.kept) + len(topo.broken)} skeleton edges grid-adjacent"
    if args.action == "validate":
        print(f"valid {label}; {edges}")
        return
    print(label)
    print(layout)
    names = layout.skeleton.joint_names
    broken = ", ".join(f"{names[a]}-{names[b]}" for a, b in topo.broken) or "none"
    print(f"{edges}; broken: {broken}")


# ---------------------------------------------------------------------- plumbing
def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridconv", description="GridConv Lab: 2D-to-3D pose lifting (AAAI 2023)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model (default: D-GridConv on the built-in pose generator)")
    p.add_argument("--config", help="training config JSON (default: the packaged default.json)")
    p.add_argument("--set", action="append", nargs="+", metavar="KEY=VALUE",
                   help="overrides, several after one --set or one per --set: --set model.sgt=autogrids epochs=3")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN_DIR",
                   help="continue a run from its last.pt (the run folder, or the config's out_dir/name)")
    p.add_argument("--out", help="parent folder of run folders (default ./runs)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint under the paper's protocols")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", default="h36m", help="h36m | synthetic | generic:PATH | 3dhp:PATH")
    p.add_argument("--protocols", help="comma-separated: P1,P1*,P2,MPJPE,PCK,AUC (default: the data's own, see evaluate.py)")
    p.add_argument("--cross", nargs="?", const="auto", metavar="SOURCE",
                   help="h36m: score on another 2D source than the checkpoint was trained on, labelled cross "
                        "(default other source: sh for a GT-trained model, gt for a detection-trained one)")
    p.add_argument("--data-root", help="Human3.6M folder (default: the checkpoint's, else the shared copy)")
    p.add_argument("--subjects", help="comma-separated test subjects (default: the checkpoint's)")
    p.add_argument("--frame-step", type=int, default=1, help="evaluate every n-th frame")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--amp", choices=AMP_MODES, default="none", help="auto: bf16 where the hardware has it")
    p.add_argument("--device", choices=("auto", "cpu"), default="auto")
    p.add_argument("--last", action="store_true", help="use the last epoch's weights, not the selected ones")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="lift a file of 2D keypoints (H36M-17 or COCO-17) to 3D")
    p.add_argument("input", help="keypoints in .json, .csv or .npz (pixels)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="output .json or .npz")
    p.add_argument("--keypoints", choices=("h36m17", "coco17"), help="keypoint format (default: the file's, else h36m17)")
    p.add_argument("--image-size", type=float, nargs=2, metavar=("W", "H"))
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="export a checkpoint to ONNX, checked with onnxruntime")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--batch", type=int, default=8, help="poses in the check batch")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--tolerance", type=float, default=1e-4, help="max abs difference allowed (metres)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("layouts", help="list, show or validate grid layouts")
    p.add_argument("action", choices=("list", "show", "validate"))
    p.add_argument("target", nargs="?", help="family name or layout JSON file")
    p.add_argument("--skeleton", default="h36m17")
    p.add_argument("--shape", type=int, nargs=2, metavar=("H", "P"))
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_layouts)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gridconv``; returns the exit status."""
    args = build_parser().parse_args(argv)
    keep_freed_memory()  # the command owns its process: big CPU buffers are reused, not page-faulted anew
    try:
        args.func(args)
    except (ValueError, OSError) as err:
        print(f"gridconv {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"gridconv {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the command line never shows a traceback
        print(f"gridconv {args.command}: unexpected {type(err).__name__}: {_one_line(err)}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _one_line(err: BaseException) -> str:
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    if isinstance(err, OSError) and err.filename:
        text = f"{err.strerror or text}: {err.filename}"
    lines = text.strip().splitlines()
    return lines[0] if lines else type(err).__name__


if __name__ == "__main__":
    sys.exit(main())

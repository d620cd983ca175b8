"""A/B of ``gridconv_core`` at two git revisions: a training step and inference of the default D-GridConv.

Each revision's package is exported (``git archive``) into a temporary folder and runs in its own child processes,
which alternate (A, B, A, B...) so that the machine's drift hits both alike; a process imports one revision only, so
this is how two versions of the same module are compared. In each child, with freed memory kept
(:mod:`gridconv_core.heap`), the calls are timed in turn: a training step (MSE, Adam) at ``--train-batch`` and
``no_grad`` eval inference at each of ``--batches``. Figures are medians over the calls and then over the children of
a revision; each ratio ``B / A`` of speed is the median of the ratios of children run side by side.

    .venv/bin/python benchmarks/bench_revisions.py OLD [NEW] [--children 3] [--steps 8] [--batches 1,1000] [--paddings c,z]

``NEW`` defaults to the working tree (``.``). Results go to ``results/bench_revisions_cpu.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def export(revision: str, folder: Path) -> Path:
    """A folder whose ``gridconv_core`` is the package at ``revision`` (``.``: the working tree as it is)."""
    if revision == ".":
        return REPO
    target = folder / revision.replace("/", "_")
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "gridconv_core"], capture_output=True,
                             check=False)
    if archive.returncode:
        raise SystemExit(f"bench_revisions: git cannot export gridconv_core at {revision!r}: "
                         f"{archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def child(train_batch: int, batches: list[int], steps: int, paddings: str) -> dict[str, float]:
    """One process, one revision: median ms of each call, timed in turn (``paddings``: the branches, e.g. ``c,z``;
    empty: the default network)."""
    import torch
    from torch.nn import functional as F

    import gridconv_core
    from gridconv_core.heap import keep_freed_memory
    from gridconv_core.model import build_model

    keep_freed_memory()
    torch.manual_seed(0)
    overrides = {"paddings": tuple(paddings.split(","))} if paddings else {}
    model = build_model(**overrides)
    joints = model.skeleton.num_joints
    x, target = torch.randn(train_batch, joints, 2) * 0.3, torch.randn(train_batch, joints, 3) * 0.2
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    eval_model = build_model(**overrides).eval()
    inputs = {b: torch.randn(b, joints, 2) * 0.3 for b in batches}

    def train_step() -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        F.mse_loss(model(x), target).backward()
        optimizer.step()

    def infer(batch: int) -> None:
        with torch.no_grad():
            eval_model(inputs[batch])

    fns = {f"train_b{train_batch}": (train_step, 1)}  # name: (call, calls in a row per turn: 64 // batch)
    fns |= {f"infer_b{b}": (lambda b=b: infer(b), max(1, 64 // b)) for b in batches}
    for fn, _ in [*fns.values()] * 2:  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(steps):
        for name, (fn, repeats) in fns.items():
            start = time.perf_counter()
            for _ in range(repeats):
                fn()
            times[name].append((time.perf_counter() - start) / repeats)
    medians = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    return {"package": str(Path(gridconv_core.__file__).parent), **medians}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", nargs="?", help="git revision A")
    ap.add_argument("new", nargs="?", default=".", help="git revision B (default: the working tree)")
    ap.add_argument("--children", type=int, default=3, help="processes per revision, alternating")
    ap.add_argument("--steps", type=int, default=8, help="timed turns per process")
    ap.add_argument("--train-batch", type=int, default=200)
    ap.add_argument("--batches", default="1,1000", help="inference batch sizes")
    ap.add_argument("--paddings", default="", help="padding branches of every grid convolution, e.g. c,z (Table D)")
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "bench_revisions_cpu.json")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    if args.child:
        print(json.dumps(child(args.train_batch, batches, args.steps, args.paddings)))
        return
    if args.old is None:
        ap.error("name the revision to compare against, e.g. HEAD~1")
    revisions = {"A": args.old, "B": args.new}
    runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    with tempfile.TemporaryDirectory() as tmp:
        roots = {key: export(rev, Path(tmp) / key) for key, rev in revisions.items()}
        for _ in range(args.children):
            for key, root in roots.items():
                env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
                out = subprocess.run(
                    [sys.executable, __file__, "--child", "--steps", str(args.steps), "--train-batch",
                     str(args.train_batch), "--batches", args.batches, "--paddings", args.paddings],
                    capture_output=True, text=True, env=env)
                if out.returncode:
                    raise SystemExit(f"bench_revisions: the child for {revisions[key]!r} failed: "
                                     f"{(out.stderr.strip().splitlines() or ['no output'])[-1]}")
                runs[key].append(json.loads(out.stdout.splitlines()[-1]))
                print(revisions[key], runs[key][-1], flush=True)
    # imported here, not at the top: the children import the exported revision's package and nothing of this tree's
    import torch
    from bench_model import machine
    from gridconv_core.io import atomic_write_text

    calls = [k for k in runs["A"][0] if k != "package"]
    result: dict[str, object] = {
        "machine": machine(torch.device("cpu")), "revisions": revisions, "paddings": args.paddings or "default",
        "children": args.children,
        "steps": args.steps, "ms": {key: {c: statistics.median(r[c] for r in rs) for c in calls}
                                    for key, rs in runs.items()},
        "speedup_b_over_a": {c: statistics.median(a[c] / b[c] for a, b in zip(runs["A"], runs["B"])) for c in calls},
    }
    print(json.dumps(result, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

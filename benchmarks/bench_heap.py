"""Heap benchmark: a training step of ours and of the authors' network, with glibc's default heap and with freed
memory kept (:mod:`gridconv_core.heap`), page faults counted.

The heap is a setting of the whole process, so each setting runs in its own child process; the children
alternate (default, kept, default, kept...) so that the machine's drift hits both alike. In each child the two
networks' steps (batch 200, MSE, Adam; ``bench_model.adam_step``) are timed in turn; figures are medians over
the steps and then over the children of a setting, and ratios the median of the ratios within a child.

    .venv/bin/python benchmarks/bench_heap.py [--children 2] [--steps 6]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from bench_model import adam_step, machine, swapped, unfold_convolve
from gridconv_core.heap import keep_freed_memory
from gridconv_core.io import atomic_write_text
from gridconv_core.model import build_model

SETTINGS = ("default", "kept")


def child(setting: str, steps: int) -> dict[str, dict[str, float]]:
    """One process: both networks' steps in turn; median ms and mean minor page faults per step."""
    if setting == "kept" and not keep_freed_memory():
        raise SystemExit("bench_heap: this C library takes no malloc settings (not glibc): nothing to compare")
    torch.manual_seed(0)
    x, target = torch.randn(200, 17, 2) * 0.3, torch.randn(200, 17, 3) * 0.2
    ours = build_model().train()
    fns = {"ours": adam_step(ours, x, target), "authors": adam_step(swapped(ours, unfold_convolve), x, target)}
    for fn in [*fns.values()] * 2:  # warm-up: two steps each
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    faults = dict.fromkeys(fns, 0)
    for _ in range(steps):
        for name, fn in fns.items():
            before, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
            faults[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return {name: {"ms": statistics.median(t) * 1e3, "faults": faults[name] / steps} for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--children", type=int, default=2, help="processes per setting, alternating")
    ap.add_argument("--steps", type=int, default=6, help="timed steps per network in each process")
    ap.add_argument("--child", choices=SETTINGS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.steps)))
        return
    runs: dict[str, list[dict[str, dict[str, float]]]] = {s: [] for s in SETTINGS}
    for _ in range(args.children):
        for setting in SETTINGS:
            out = subprocess.run([sys.executable, __file__, "--child", setting, "--steps", str(args.steps)],
                                 capture_output=True, text=True, check=True)
            runs[setting].append(json.loads(out.stdout.splitlines()[-1]))
            print(setting, runs[setting][-1], flush=True)
    result: dict[str, object] = {"machine": machine(torch.device("cpu")), "batch": 200, "steps": args.steps,
                                 "children": args.children}
    for setting, rs in runs.items():
        result[setting] = {
            name: {key: statistics.median(r[name][key] for r in rs) for key in ("ms", "faults")} for name in rs[0]}
        result[f"ratio_authors_vs_ours_{setting}"] = statistics.median(r["authors"]["ms"] / r["ours"]["ms"] for r in rs)
    print(json.dumps(result, indent=2))
    atomic_write_text(Path(__file__).parent / "results" / "bench_heap_cpu.json", json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

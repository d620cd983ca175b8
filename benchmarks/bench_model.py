"""Model benchmark: default GLN latency and throughput vs the machine's fp32 GEMM bound (issues 2 and 9).

Prints, in one run, the fp32 and bf16 GEMM rates (``torch.matmul``, and on CPU oneDNN's packed fp32
GEMM, which our layers use), the FLOPs per pose counted from the layer shapes (all branches and taps:
the fused form does fewer), a latency table (batch 1, 8, 64, 1000; ours and the authors'-style unfold
network, fp32 and bf16 autocast, eval, no_grad; on CPU also ours with its GEMMs on ``torch.matmul``),
inference poses/s at batch 1000 beside the unfused selection form, and the training-step rate (batch
200, forward + backward + Adam) of ours (fp32, bf16, BLAS GEMMs), the unfused and the unfold form.
Beside each fp32 figure of ours, its dense GEMMs alone (:func:`gemms_alone`: recorded once, replayed on the same
operands, timed in turn): the ceiling with everything else free.
The "GEMM bound" is the paper's FLOPs at the ``torch.matmul`` 4096^2 rate (the naive bound of issue 9).
Figures are the best and the median of ``--repeats`` turns timed in turn (ABAB), as the machine may be
shared; latencies below batch 64 time ``64 // batch`` calls in a row per turn (warm weights, see
:func:`interleaved`).
On CUDA the rates are also given as fractions of the tensor-core peak (``--peak-tflops``, bf16 dense;
tf32 is half of it, and fp32 GEMMs run as tf32).
Usage: ``python benchmarks/bench_model.py [--device cuda] [--repeats 5] [--json out.json]``.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import time
import types
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from gridconv_core import KernelScale, build_model
from gridconv_core.amp import BF16_CPU_FLAGS, cpu_flags, native_bf16, resolve_amp
from gridconv_core import gridconv, inference
from gridconv_core.gridconv import DGridConv, tap_sources
from gridconv_core.heap import keep_freed_memory
from gridconv_core.io import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"


def interleaved(
    fns: dict[str, Callable[[], object]], device: torch.device, repeats: int, block: int = 1
) -> dict[str, tuple[float, float]]:
    """Best and median seconds of each function, timed in turn (ABAB...) so load changes hit all alike.

    With ``block > 1`` each turn makes ``block + 1`` calls in a row and times the last ``block``: the
    steady state of one model whose weights stay in cache (a video's frames one by one), where a
    single call per turn would time the cache refill after the other models' calls."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            for call in range(block + 1 if block > 1 else 1):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                fn()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if block == 1 or call:
                    times[name].append(time.perf_counter() - start)
    return {name: (min(t), statistics.median(t)) for name, t in times.items()}


def rate(work: float, fn: Callable[[], object], device: torch.device, repeats: int) -> tuple[float, float]:
    """``work`` per second: (best, median)."""
    best, median = interleaved({"fn": fn}, device, repeats)["fn"]
    return work / best, work / median


def gemm_gflops(device: torch.device, dtype: torch.dtype, repeats: int, n: int = 4096) -> tuple[float, float]:
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    return rate(2 * n**3 / 1e9, lambda: a @ b, device, repeats)


def onednn_gemm_gflops(repeats: int, n: int = 4096) -> tuple[float, float]:
    """fp32 ``n x n`` GEMM rate of oneDNN with a prepacked operand (what our CPU layers run), or NaN without it."""
    if not gridconv.ONEDNN:
        return math.nan, math.nan
    a = torch.randn(n, n)
    kernel = gridconv.eval_kernel(torch.randn(n, n), None, "cpu")
    return rate(2 * n**3 / 1e9, lambda: gridconv.gemm(a, kernel), torch.device("cpu"), repeats)


def switched_off(module: types.ModuleType, flag: str, fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` with a module's boolean switch off: ``gridconv.ONEDNN`` (GEMMs on ``torch.matmul``; give it its own
    model copy, as its caches hold other kernels) or ``inference.ENABLED`` (eval runs the modules, unfolded)."""
    def run() -> object:
        saved = getattr(module, flag)
        setattr(module, flag, False)
        try:
            return fn()
        finally:
            setattr(module, flag, saved)
    return run


GEMM_OPS = (torch.ops.aten.mm.default, torch.ops.aten.addmm.default,
            *((torch.ops.mkldnn._linear_pointwise.default,) if gridconv.ONEDNN else ()))
"""The dense GEMMs that carry a layer's FLOPs on CPU and CUDA (``torch.matmul``, ``F.linear``, oneDNN's linear). The
backward's batched products with the 0/1 selection (``bmm``) are data movement written as GEMMs and are left out."""


class _GemmRecorder(TorchDispatchMode):
    """Records every :data:`GEMM_OPS` call with its operands (detached) and its FLOPs."""

    def __init__(self) -> None:
        super().__init__()
        self.calls, self.flops = [], 0.0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if func in GEMM_OPS:
            operands = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)
            self.calls.append((func, operands, kwargs or {}))
            a = tensors[1] if func is torch.ops.aten.addmm.default else tensors[0]
            self.flops += 2.0 * a.numel() * out.shape[-1]  # (M, K) x (K, N): 2 M K N
        return out


def gemms_alone(fn: Callable[[], object]) -> tuple[Callable[[], None], float]:
    """Runs ``fn`` once, recording its dense GEMMs (:data:`GEMM_OPS`); returns a function that runs just those
    GEMMs again, in order, on the same operands, and their GFLOP. Timed beside ``fn``, it is the time ``fn``
    would take if everything but its GEMMs (gathers, placing, BN, the optimiser) were free: the ceiling of ``fn``
    at this machine's in-situ GEMM rate."""
    with _GemmRecorder() as recorder:
        fn()
    calls = recorder.calls

    def run() -> None:
        with torch.no_grad():
            for func, args, kwargs in calls:
                func(*args, **kwargs)
    return run, recorder.flops / 1e9


def adam_step(net: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, lr: float = 1e-3) -> Callable[[], None]:
    """One training step of ``net`` on a fixed batch per call: MSE loss, backward, Adam (its own optimiser)."""
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.mse_loss(net(x), target).backward()
        optimizer.step()
    return step


def machine(device: torch.device) -> dict[str, str | int]:
    """CPU model, cores and versions for the results file."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    info: dict[str, str | int] = {
        "cpu": cpu, "cores": os.cpu_count() or 0, "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(),
        "bf16_cpu_flags": " ".join(sorted(cpu_flags() & (BF16_CPU_FLAGS | {"amx_tile"}))) or "none",
        "amp_auto": resolve_amp("auto", device),
        "load_avg_1min": round(os.getloadavg()[0], 2),  # above the core count: timings are shared
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def flops_per_pose(model: torch.nn.Module) -> float:
    """Multiply-adds x 2 of every D-GridConv layer (all branches, taps and cells) and attention FC."""
    total = 0.0
    cells = model.grid_shape[0] * model.grid_shape[1]
    for conv in model.convs():
        total += 2 * len(conv.paddings) * cells * conv.in_channels * conv.out_channels * conv.kernel_size**2
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):  # the attention FCs act on one pooled vector
            total += 2 * module.weight.numel()
    return total


def unfold_convolve(self: DGridConv, x: torch.Tensor, scale: KernelScale | None = None) -> torch.Tensor:
    """The authors' D-GridConv: pad, ``F.unfold`` the patches, scale by alpha, GEMM per branch."""
    b, c, h, p = x.shape
    k, r = self.kernel_size, self.kernel_size // 2
    alpha = scale.taps.expand(b, k * k, h, p).reshape(b, 1, k * k, h * p)
    out = 0
    for n, mode in enumerate(self.paddings):
        padded = F.pad(x, (r, r, r, r), mode="constant" if mode == "zeros" else mode)
        patches = (F.unfold(padded, k).view(b, c, k * k, h * p) * alpha).view(b, c * k * k, h * p)
        out = out + (self.branch_weights()[n].view(self.out_channels, -1) @ patches).view(b, -1, h, p)
    if self.has_bias:
        out = out + sum(self.branch_biases()).view(1, -1, 1, 1)
    return out


def unfused_convolve(self: DGridConv, x: torch.Tensor, scale: KernelScale | None = None) -> torch.Tensor:
    """The unfused selection form: ``G = alpha * T`` over every branch and tap, ``G @ X``, one GEMM."""
    b, c, h, p = x.shape
    hp, kk, n_branch = h * p, self.kernel_size**2, len(self.paddings)
    src = torch.from_numpy(tap_sources(self.grid_shape, self.kernel_size, self.paddings)).to(x.device)
    select = F.one_hot(src.clamp(min=0), hp).to(x.dtype) * (src >= 0)[..., None]  # (HP, N, K*K, HP)
    alpha = scale.taps.expand(b, kk, h, p).reshape(b, kk, hp).transpose(1, 2)
    cells = x.permute(0, 2, 3, 1).reshape(b, hp, c)
    weight = torch.stack(self.branch_weights()).permute(0, 3, 4, 2, 1).reshape(n_branch * kk * c, self.out_channels)
    step = max(1, 1250 // hp)
    outs = []
    for start in range(0, b, step):
        g = (alpha[start : start + step, :, None, :, None] * select).reshape(-1, hp * n_branch * kk, hp)
        outs.append(torch.bmm(g, cells[start : start + step]).reshape(-1, n_branch * kk * c) @ weight)
    out = torch.cat(outs)
    if self.has_bias:
        out = out + sum(self.branch_biases())
    return out.view(b, h, p, self.out_channels).permute(0, 3, 1, 2)


def swapped(model: torch.nn.Module, convolve: Callable[..., torch.Tensor]) -> torch.nn.Module:
    """A copy of ``model`` whose D-GridConv layers run ``convolve``."""
    other = copy.deepcopy(model)
    for conv in other.convs():
        conv.forward = types.MethodType(convolve, conv)
    return other


BF16_CHOICES = ("auto", "on", "off")


def times_bf16(choice: str, device: torch.device) -> bool:
    """Whether to time bf16 autocast: ``"auto"`` where the device multiplies bf16 natively (:func:`native_bf16`).
    Elsewhere bf16 is emulated, about 90x slower than fp32 on a 2-core AVX2 EPYC (0.9 against 79 GFLOP/s per core
    at 1024^2), and the authors' batch-1000 call alone would take minutes; ``"on"`` times it anyway."""
    return choice == "on" or (choice == "auto" and native_bf16(device))


def bf16(fn: Callable[[], object], device: torch.device) -> Callable[[], object]:
    """``fn`` under bf16 autocast."""
    def run() -> object:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return fn()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--json", type=Path, default=None, help="results file (default benchmarks/results/bench_model_<device>.json)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", default="1,8,64,1000", help="latency table batch sizes")
    parser.add_argument("--peak-tflops", type=float, default=790.0,
                        help="CUDA: dense bf16 peak in TFLOP/s (H200: 790, as measured by issue 9); tf32 is taken as half")
    parser.add_argument("--default-heap", action="store_true",
                        help="leave glibc's malloc as it is (default: keep freed memory, as `gridconv` and training do)")
    parser.add_argument("--bf16", default="auto", choices=BF16_CHOICES,
                        help="time bf16 autocast: auto = where the device has native bf16 (default), on, off")
    args = parser.parse_args()
    heap_kept = not args.default_heap and keep_freed_memory()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 GEMMs on tensor cores, reported against the tf32 peak
    torch.manual_seed(0)
    reps = args.repeats

    model = build_model().to(device).eval()
    flops = flops_per_pose(model)
    fp32_gemm = gemm_gflops(device, torch.float32, reps)
    with_bf16 = times_bf16(args.bf16, device)
    bf16_gemm = gemm_gflops(device, torch.bfloat16, reps) if with_bf16 else (math.nan, math.nan)
    onednn_gemm = onednn_gemm_gflops(reps) if device.type == "cpu" else (math.nan, math.nan)
    bound = fp32_gemm[0] * 1e9 / flops  # poses/s if every FLOP ran at the best fp32 GEMM rate
    res: dict[str, object] = {
        "machine": machine(device), "device": str(device), "heap_kept": heap_kept, "repeats": reps, "bf16_timed": with_bf16,
        "gflop_per_pose": flops / 1e9,
        "gemm_gflops_fp32": fp32_gemm, "gemm_gflops_bf16": bf16_gemm, "gemm_bound_poses_s": bound,
        "gemm_gflops_fp32_onednn": onednn_gemm, "onednn_gemm_bound_poses_s": onednn_gemm[0] * 1e9 / flops,
    }
    unfused, unfold = swapped(model, unfused_convolve), swapped(model, unfold_convolve)
    on_blas = copy.deepcopy(model)  # its kernel caches hold plain tensors for torch.matmul
    latency: dict[str, dict[str, tuple[float, float]]] = {}
    gemm_gflop: dict[str, float] = {}  # per latency batch, from the capture of its GEMMs
    with torch.no_grad():
        for batch in (int(b) for b in args.batches.split(",")):
            x = torch.randn(batch, 17, 2, device=device) * 0.3
            fns = {"ours_fp32": lambda x=x: model(x), "authors_fp32": lambda x=x: unfold(x)}
            if with_bf16:
                fns |= {"ours_bf16": bf16(fns["ours_fp32"], device), "authors_bf16": bf16(fns["authors_fp32"], device)}
            fns["ours_fp32_modules"] = switched_off(inference, "ENABLED", fns["ours_fp32"])
            fns["ours_fp32_gemms_alone"], gemm_gflop[str(batch)] = gemms_alone(fns["ours_fp32"])
            if device.type == "cpu":
                fns["ours_fp32_blas"] = switched_off(gridconv, "ONEDNN", lambda x=x: on_blas(x))
            times = interleaved(fns, device, reps, block=max(1, 64 // batch))
            latency[str(batch)] = {k: (best * 1e3, median * 1e3) for k, (best, median) in times.items()}
        res["latency_ms"] = latency
        res["latency_of_gemms_alone"] = {  # the fraction of its ceiling that each batch reaches (medians, same turns)
            batch: row["ours_fp32_gemms_alone"][1] / row["ours_fp32"][1] for batch, row in latency.items()}
        res["latency_speedup_vs_authors"] = {  # issue 9: never slower than the authors' network (medians, same turns)
            batch: row["authors_fp32"][1] / row["ours_fp32"][1] for batch, row in latency.items()}
        x = torch.randn(1000, 17, 2, device=device) * 0.3
        ref = model(x)
        res["infer_gemms_gflop"] = gemm_gflop.get("1000", math.nan)
        times = interleaved({"fused": lambda: model(x), "unfused": lambda: unfused(x)}, device, reps)
        res["infer_fp32_poses_s"] = tuple(1000 / t for t in times["fused"])
        res["infer_unfused_poses_s"] = tuple(1000 / t for t in times["unfused"])
        res["infer_unfold_poses_s"] = tuple(1e6 / t for t in latency.get("1000", {}).get("authors_fp32", (math.nan,) * 2))
        if with_bf16:
            res["infer_bf16_poses_s"] = tuple(1e6 / t for t in latency.get("1000", {}).get("ours_bf16", (math.nan,) * 2))
        res["infer_gemms_alone_poses_s"] = tuple(
            1e6 / t for t in latency.get("1000", {}).get("ours_fp32_gemms_alone", (math.nan,) * 2))
        res["unfused_max_abs_diff"] = float((unfused(x) - ref).abs().max())
        res["unfold_max_abs_diff"] = float((unfold(x) - ref).abs().max())
        if with_bf16:
            res["bf16_max_abs_diff"] = float((bf16(lambda: model(x), device)().float() - ref).abs().max())

    xt, target = x[:200], torch.randn(200, 17, 3, device=device) * 0.2
    steps = {name: adam_step(net.train(), xt, target)
             for name, net in (("train", model), ("train_unfused", unfused), ("train_unfold", unfold))}
    if with_bf16:
        steps["train_bf16"] = bf16(steps["train"], device)
    if device.type == "cpu":
        steps["train_blas"] = switched_off(gridconv, "ONEDNN", steps["train"])
    steps["train_gemms_alone"], res["train_gemms_gflop"] = gemms_alone(steps["train"])
    for name, (best, median) in interleaved(steps, device, reps).items():
        res[f"{name}_poses_s"] = (200 / best, 200 / median)

    def frac(key: str, flop_factor: float = 1.0) -> tuple[float, float]:
        best, median = res[key]  # type: ignore[misc]
        return best * flop_factor / bound, median * flop_factor / bound

    for key in ("infer_fp32", "infer_bf16", "infer_unfused", "infer_unfold", "infer_gemms_alone"):
        if f"{key}_poses_s" in res:
            res[f"{key}_frac_gemm"] = frac(f"{key}_poses_s")
    for key in ("train", "train_bf16", "train_unfused", "train_unfold", "train_blas", "train_gemms_alone"):
        if f"{key}_poses_s" in res:
            res[f"{key}_frac_gemm"] = frac(f"{key}_poses_s", 3.0)  # forward + 2x backward
    if device.type == "cuda":  # naive FLOPs against the tensor-core peaks
        peaks = {"bf16": args.peak_tflops * 1e12, "fp32": args.peak_tflops * 1e12 / 2}
        res["gpu_peak_tflops"] = {"bf16": args.peak_tflops, "tf32": args.peak_tflops / 2}
        for key, factor, dtype in (("infer_fp32", 1, "fp32"), ("infer_bf16", 1, "bf16"), ("train", 3, "fp32"),
                                   ("train_bf16", 3, "bf16")):
            if f"{key}_poses_s" in res:
                res[f"{key}_frac_gpu_peak"] = res[f"{key}_poses_s"][0] * flops * factor / peaks[dtype]  # type: ignore[index]
    for key, base in (("fused_vs_unfused", "infer_unfused"), ("fused_vs_unfold", "infer_unfold"),
                      ("train_fused_vs_unfused", "train_unfused"), ("train_fused_vs_unfold", "train_unfold"),
                      ("train_fused_vs_gemms_alone", "train_gemms_alone")):
        ours = res["train_poses_s" if key.startswith("train") else "infer_fp32_poses_s"]
        res[key] = tuple(o / b for o, b in zip(ours, res[f"{base}_poses_s"]))  # type: ignore[call-overload]

    def show(label: str, key: str, extra: str = "") -> None:
        if f"{key}_poses_s" not in res:
            print(f"{label:26s} not timed (--bf16 {args.bf16}; amp='auto' resolves to {res['machine']['amp_auto']!r} here)")  # type: ignore[index]
            return
        (best, median), (fb, fm) = res[f"{key}_poses_s"], res[f"{key}_frac_gemm"]  # type: ignore[misc]
        gpu = f", {res[f'{key}_frac_gpu_peak']:.1%} of GPU peak" if f"{key}_frac_gpu_peak" in res else ""
        print(f"{label:26s} best {best:7.0f} / median {median:7.0f} poses/s  ({fb:.0%} / {fm:.0%} of GEMM bound{gpu}){extra}")

    print(f"{res['machine']}")
    print(f"fp32 GEMM best {fp32_gemm[0]:.0f} / median {fp32_gemm[1]:.0f} GFLOP/s; bf16 GEMM best {bf16_gemm[0]:.0f} / "
          f"median {bf16_gemm[1]:.0f} GFLOP/s; {flops / 1e9:.4f} GFLOP/pose -> bound {bound:.0f} poses/s")
    print(f"fp32 GEMM through oneDNN, packed: best {onednn_gemm[0]:.0f} / median {onednn_gemm[1]:.0f} GFLOP/s -> "
          f"bound {res['onednn_gemm_bound_poses_s']:.0f} poses/s")
    columns = [k for k in ("ours_fp32", "authors_fp32", "ours_bf16", "authors_bf16", "ours_fp32_modules", "ours_fp32_blas",
                           "ours_fp32_gemms_alone")
               if k in latency[next(iter(latency))]]
    print("latency, median ms (best):  batch | " + " | ".join(columns))
    for batch, row in latency.items():
        cells = " | ".join(f"{row[k][1]:8.2f} ({row[k][0]:.2f})" for k in columns)
        print(f"  {batch:>5s} | {cells}")
    print("fp32 latency as a fraction of its GEMMs alone, by batch: " +
          ", ".join(f"{b}: {f:.0%}" for b, f in res["latency_of_gemms_alone"].items()))  # type: ignore[attr-defined]
    speedups: dict[str, float] = res["latency_speedup_vs_authors"]  # type: ignore[assignment]
    print("fp32 speed-up over the authors' network, by batch: " + ", ".join(f"{b}: {f:.2f}x" for b, f in speedups.items())
          + f"; lowest {min(speedups.values()):.2f}x at batch {min(speedups, key=speedups.__getitem__)}")
    show("inference fp32 (fused)", "infer_fp32")
    show("inference bf16 autocast", "infer_bf16", f", max |bf16 - fp32| = {res.get('bf16_max_abs_diff', math.nan):.2e}")
    show("inference fp32 unfused", "infer_unfused", f", max diff {res['unfused_max_abs_diff']:.1e}")
    show("inference fp32 unfold", "infer_unfold", f", max diff {res['unfold_max_abs_diff']:.1e}")
    show("  its GEMMs alone", "infer_gemms_alone", f", {res['infer_gemms_gflop']:.1f} GFLOP per call")
    show("training step (fused)", "train", " [3x FLOPs]")
    show("training step bf16", "train_bf16", " [3x FLOPs]")
    show("training step unfused", "train_unfused", " [3x FLOPs]")
    show("training step unfold", "train_unfold", " [3x FLOPs]")
    if "train_blas_poses_s" in res:
        show("training step, BLAS GEMMs", "train_blas", " [3x FLOPs]")
    show("  its GEMMs alone", "train_gemms_alone", f" [3x FLOPs], {res['train_gemms_gflop']:.1f} GFLOP per step")
    for key in ("fused_vs_unfused", "fused_vs_unfold", "train_fused_vs_unfused", "train_fused_vs_unfold",
                "train_fused_vs_gemms_alone"):
        print(f"ratio {key:24s} best {res[key][0]:.2f}x / median {res[key][1]:.2f}x")  # type: ignore[index]
    path = args.json or RESULTS / f"bench_model_{device.type}.json"
    atomic_write_text(path, json.dumps(res, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

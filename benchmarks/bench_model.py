"""Model benchmark: default GLN throughput vs the machine's fp32 GEMM bound (issue 2, "Speed").

Prints the fp32 GEMM rate, the FLOPs per pose counted from the layer shapes, inference poses/s
(batch 1000, eval, no_grad) in fp32 and under bf16 autocast (with the largest output difference),
the training-step rate (batch 200, forward + backward + Adam) and the authors'-style unfold
implementation in the same run. Usage: ``python benchmarks/bench_model.py [--device cuda] [--json out.json]``.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
import types
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional as F

from gridconv_core import KernelScale, build_model
from gridconv_core.gridconv import DGridConv
from gridconv_core.layout import atomic_write_text


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Best wall time of ``repeats`` calls after one warm-up."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def gemm_gflops(device: torch.device, n: int = 4096) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    return 2 * n**3 / timed(lambda: a @ b, device, 3) / 1e9


def flops_per_pose(model: torch.nn.Module) -> float:
    """Multiply-adds x 2 of every D-GridConv layer (all branches, taps and cells) and attention FC."""
    total = 0.0
    cells = model.grid_shape[0] * model.grid_shape[1]
    for conv in model._convs():
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this JSON file")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)

    model = build_model().to(device).eval()
    flops = flops_per_pose(model)
    peak = gemm_gflops(device)
    bound = peak * 1e9 / flops  # poses/s if every FLOP ran at the GEMM rate
    x = torch.randn(1000, 17, 2, device=device) * 0.3
    res: dict[str, float | str] = {"device": str(device), "gemm_gflops": peak, "gflop_per_pose": flops / 1e9}

    with torch.no_grad():
        ref = model(x)
        res["infer_fp32_poses_s"] = 1000 / timed(lambda: model(x), device, args.repeats)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out_bf16 = model(x)
            res["infer_bf16_poses_s"] = 1000 / timed(lambda: model(x), device, args.repeats)
        res["bf16_max_abs_diff"] = float((out_bf16.float() - ref).abs().max())
        naive = copy.deepcopy(model)
        for conv in naive._convs():
            conv.forward = types.MethodType(unfold_convolve, conv)
        res["unfold_max_abs_diff"] = float((naive(x) - ref).abs().max())
        res["infer_unfold_poses_s"] = 1000 / timed(lambda: naive(x), device, 1)

    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, target = x[:200], torch.randn(200, 17, 3, device=device) * 0.2

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.mse_loss(model(xt), target).backward()
        optimizer.step()

    res["train_poses_s"] = 200 / timed(step, device, args.repeats)

    for key in ("infer_fp32", "infer_bf16", "infer_unfold"):
        res[f"{key}_frac_gemm"] = res[f"{key}_poses_s"] / bound  # type: ignore[operator]
    res["train_frac_gemm"] = res["train_poses_s"] * 3 / bound  # type: ignore[operator]  # fwd + 2x bwd
    res["speedup_vs_unfold"] = res["infer_fp32_poses_s"] / res["infer_unfold_poses_s"]  # type: ignore[operator]

    print(f"device {device}; fp32 GEMM {peak:.0f} GFLOP/s; {flops / 1e9:.4f} GFLOP/pose -> bound {bound:.0f} poses/s")
    print(f"inference fp32   {res['infer_fp32_poses_s']:8.0f} poses/s  ({res['infer_fp32_frac_gemm']:.0%} of GEMM bound)")
    print(f"inference bf16   {res['infer_bf16_poses_s']:8.0f} poses/s  ({res['infer_bf16_frac_gemm']:.0%} of fp32 bound), "
          f"max |bf16 - fp32| = {res['bf16_max_abs_diff']:.2e}")
    print(f"inference unfold {res['infer_unfold_poses_s']:8.0f} poses/s  ({res['infer_unfold_frac_gemm']:.0%}), "
          f"ours is {res['speedup_vs_unfold']:.2f}x, max diff {res['unfold_max_abs_diff']:.1e}")
    print(f"training step    {res['train_poses_s']:8.0f} poses/s  ({res['train_frac_gemm']:.0%} of bound at 3x FLOPs)")
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()

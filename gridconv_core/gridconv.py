"""Grid convolutions: vanilla GridConv (eq. 6) and Dynamic GridConv (eq. 7-8), multi-branch padding.

A layer has one kernel ``W_n`` ``(C_out, C_in, K, K)`` and bias per padding branch (paper A.2,
Table D); the branch outputs are summed. With tap factors ``alpha[b, k, p]`` (eq. 7) eq. 8 reads

    out[b, :, p] = sum_n bias_n + sum_n sum_k alpha[b, k, p] * W_n[:, :, k] @ Xpad_n[b, :, p + k].

Fast fused form: padding and the tap shift are a fixed 0/1 selection ``T[(p, n, k), q]`` (cell
``q`` seen by output cell ``p`` through tap ``k`` of branch ``n``; an all-zero row where zero
padding sees nothing). Scaling it by ``alpha`` gives ``G[b] = alpha * T``; then the layer is two
batched GEMMs: ``patches[b] = G[b] @ X[b]`` (all branches and taps of all cells) and
``patches @ [W_1; ...; W_N]`` (every branch, tap and input channel in one reduction). On CPU the
batch is processed in cache-sized blocks of samples. Grids are channels-first ``(B, C, H, P)``;
outputs are channels-last in memory, so the next layer reads them without a copy.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .attention import KernelScale

__all__ = ["PADDING_MODES", "normalise_paddings", "tap_selection", "GridConv", "DGridConv"]

PADDING_MODES = ("circular", "replicate", "zeros")
_ALIASES = {"c": "circular", "r": "replicate", "z": "zeros", "zero": "zeros", "constant": "zeros"}
CPU_BLOCK_CELLS = 1250
"""Grid cells (samples x H x P) per block on CPU: keeps the patch matrix of a block in cache."""


def normalise_paddings(paddings: str | Sequence[str]) -> tuple[str, ...]:
    """Full padding-mode names for 1, 2 or 4 branches; accepts the official letters ``c``/``r``/``z``."""
    items = (paddings,) if isinstance(paddings, str) else tuple(paddings)
    modes = tuple(_ALIASES.get(str(m), str(m)) for m in items)
    bad = [m for m in modes if m not in PADDING_MODES]
    if bad or len(modes) not in (1, 2, 4):
        raise ValueError(
            f"paddings {list(items)} invalid: need 1, 2 or 4 branches of {', '.join(PADDING_MODES)} (or c/r/z)"
        )
    return modes


def tap_selection(grid_shape: tuple[int, int], kernel_size: int, paddings: Sequence[str]) -> np.ndarray:
    """The 0/1 padding-and-shift matrix ``T`` of shape ``(HP, N, K*K, HP)`` (see the module doc)."""
    h, p = grid_shape
    r = kernel_size // 2
    sel = np.zeros((h * p, len(paddings), kernel_size**2, h * p), dtype=np.float32)
    rows, cols = np.divmod(np.arange(h * p), p)
    for n, mode in enumerate(paddings):
        for k in range(kernel_size**2):
            src_r, src_c = rows + k // kernel_size - r, cols + k % kernel_size - r
            if mode == "circular":
                src_r, src_c = src_r % h, src_c % p
            elif mode == "replicate":
                src_r, src_c = src_r.clip(0, h - 1), src_c.clip(0, p - 1)
            inside = (src_r >= 0) & (src_r < h) & (src_c >= 0) & (src_c < p)
            cells = np.arange(h * p)[inside]
            sel[cells, n, k, (src_r * p + src_c)[inside]] = 1.0
    return sel


class GridConv(nn.Module):
    """Vanilla GridConv, eq. 6: ``D_out = W * D_in`` on an ``H x P`` grid, summed over padding branches.

    Parameters use the official names ``branch{n}_weight`` ``(C_out, C_in, K, K)`` and
    ``branch{n}_bias`` (``n`` from 1); init as ``nn.Conv2d``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        grid_shape: tuple[int, int],
        paddings: str | Sequence[str] = ("circular", "replicate"),
        bias: bool = True,
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.grid_shape = (int(grid_shape[0]), int(grid_shape[1]))
        self.paddings = normalise_paddings(paddings)
        self.has_bias = bias
        fan_in = in_channels * kernel_size**2
        for n in range(1, len(self.paddings) + 1):
            weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
            self.register_parameter(f"branch{n}_weight", weight)
            if bias:
                self.register_parameter(f"branch{n}_bias", nn.Parameter(torch.empty(out_channels).uniform_(-1, 1) / math.sqrt(fan_in)))
        sel = tap_selection(self.grid_shape, kernel_size, self.paddings)
        self.register_buffer("tap_select", torch.from_numpy(sel), persistent=False)

    def branch_weights(self) -> list[Tensor]:
        return [getattr(self, f"branch{n}_weight") for n in range(1, len(self.paddings) + 1)]

    def branch_biases(self) -> list[Tensor]:
        return [getattr(self, f"branch{n}_bias") for n in range(1, len(self.paddings) + 1)] if self.has_bias else []

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, P) -> (B, C_out, H, P)``."""
        return self._convolve(x, None)

    def _convolve(self, x: Tensor, scale: KernelScale | None) -> Tensor:
        """The fused multi-branch convolution of eq. 6 / eq. 8 (module doc)."""
        b, c, h, p = x.shape
        if c != self.in_channels or (h, p) != self.grid_shape:
            raise ValueError(
                f"grid feature {tuple(x.shape)} does not fit this layer (C_in={self.in_channels}, grid {self.grid_shape})"
            )
        if scale is not None and scale.channels is not None:
            x = x * scale.channels
        taps = None if scale is None else scale.taps
        hp, kk, n_branch = h * p, self.kernel_size**2, len(self.paddings)
        cells = x.permute(0, 2, 3, 1).reshape(b, hp, c)  # a view for channels-last inputs
        weight = torch.stack(self.branch_weights()).permute(0, 3, 4, 2, 1).reshape(n_branch * kk * c, self.out_channels)
        select = self.tap_select.to(x.dtype)
        step = max(1, CPU_BLOCK_CELLS // hp) if x.device.type == "cpu" else b
        outs = []
        for start in range(0, b, step):
            block = cells[start : start + step]
            if taps is None:
                patches = torch.matmul(select.view(hp * n_branch * kk, hp), block)
            else:
                alpha = taps[start : start + step].reshape(block.shape[0], taps.shape[1], hp).transpose(1, 2)
                g = alpha[:, :, None, :, None] * select  # (n, HP, N, K*K, HP): G = alpha * T
                patches = torch.bmm(g.reshape(block.shape[0], hp * n_branch * kk, hp), block)
            outs.append(torch.matmul(patches.reshape(-1, n_branch * kk * c), weight))
        out = outs[0] if len(outs) == 1 else torch.cat(outs)
        if self.has_bias:
            out = out + sum(self.branch_biases())
        return out.view(b, h, p, self.out_channels).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, grid={self.grid_shape}, "
            f"paddings={self.paddings}, bias={self.has_bias}"
        )


class DGridConv(GridConv):
    """Dynamic GridConv, eq. 8: ``D_out_ij = (alpha_ij * W) * D_in_delta_ij`` with ``alpha`` from eq. 7.

    The attention is computed outside (the official network keeps it in a sibling module) and
    passed as a :class:`KernelScale`; its taps ``(B, K*K or 1, H, P)`` scale the kernel per cell.
    """

    def forward(self, x: Tensor, scale: KernelScale | None = None) -> Tensor:  # type: ignore[override]
        """``(B, C_in, H, P) -> (B, C_out, H, P)``; without ``scale`` it is the vanilla eq. 6."""
        return self._convolve(x, scale)

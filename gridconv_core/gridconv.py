"""Grid convolutions: vanilla GridConv (eq. 6) and Dynamic GridConv (eq. 7-8), multi-branch padding.

A layer has one kernel ``W_n`` ``(C_out, C_in, K, K)`` and bias per padding branch (paper A.2,
Table D); the branch outputs are summed. With tap factors ``alpha[b, k, p]`` (eq. 7) eq. 8 reads

    out[b, :, p] = sum_n bias_n + sum_n sum_k alpha[b, k, p] * W_n[:, :, k] @ Xpad_n[b, :, p + k].

Fast fused form ("fused where the maths allows"): ``tap_sources`` gives the cell ``q`` that cell
``p`` reads through tap ``k`` of branch ``n`` (none where zero padding reads outside the grid; a zero cell stands
in). Branches differ only where a tap reads outside the grid, so eq. 8 is a base term per (cell, tap) with the
summed kernel ``sum_n W_n[:, :, k]``, read through one base padding (per axis the branches' most common mode), plus
border corrections ``alpha * W_n[:, :, k] (X[+] - X[-])`` for the branches that pad a border otherwise
(:func:`fused_terms`). Corrections on the same cells form a band: for a 5x5 grid, 3x3 kernel and (c, r), 225 base
terms and four bands (the border rows and columns, 5 cells x 3 taps), 285 instead of 450 terms per pose. The
fused kernels are a sum and a pick of the branch kernels (:meth:`GridConv.fused_weights`), cheap to rebuild in
every training step. A fixed selection ``T`` (``+1``, and ``-1`` for a band's second read) scaled by ``alpha``
gives ``G[b] = alpha * T``, ``patches[b] = G[b] @ X[b]``, and one GEMM ``patches @ W`` for the base and one per
band, whose sums are added at the bands' cells. The bands' patches are one term set (one ``G @ X``, split into
their GEMMs) and their sums are added at once. On CPU the base and the bands run in cache-sized blocks of
samples, ``G @ X`` is a row gather scaled by ``alpha`` (:class:`_ScaledGather`, the same product without the
GEMM) and the sums go in by ``index_add``; on CUDA and under graph capture both stay GEMMs (with a fixed 0/1
placement of the sums, as a corner's two sums must add up).

Zero padding makes the bands cancel terms that vanish: for (c, z), the paper's detected-input setting, 285 terms
where the cell groups (:func:`cell_groups`) need 225. Groups merge the branches that read the same cell at a tap and
drop vanishing terms, and the cells with the same term list share one GEMM with merged kernels ``(T_g * C_in,
C_out)`` (for 5x5, 3x3: interior, four edges, four corners). Their kernels are large (21 MB per 256-channel layer
for (c, z), 30 MB for (c, r)) and a GEMM to build, which costs in every training step, so only inference without
autograd runs them (the ``"grouped"`` path, kernels cached), and only where they save at least a tenth of the terms
(:data:`GROUPS_AT`).
Grids are channels-first ``(B, C, H, P)``; outputs are channels-last in memory, so the next
layer reads them without a copy.

Small batches (at most :data:`SMALL_BATCH_CELLS` cells) skip the fusion (the ``"stacked"`` path): every
tap of every branch is gathered (a zero cell stands in for zero padding) and multiplied by the stacked
branch kernels in one GEMM. It does all 450 terms, but in one gather and one GEMM where the fused path runs
two gathers and five GEMMs (base and bands), and that overhead is what costs at batch 1. Layers with few output
channels (at most ``C_in /`` :data:`TAPWISE_RATIO`, the 256 -> 3 output layer) take the ``"tapwise"`` path at every
batch: eq. 8 read from the output side, one GEMM ``X W_{n,k}`` for every source cell and (branch, tap) at once,
then each cell gathers its terms, scales them by ``alpha`` and sums them; it moves ``C_out`` values per
term instead of ``C_in`` and builds no patch matrix. :meth:`GridConv.path` picks the path and
:meth:`GridConv.convolve_cells` runs it with given kernels, which is also how the folded eval network
(:mod:`gridconv_core.inference`) calls a layer. In eval mode without autograd every path's kernels
are cached, keyed by the parameters' identity, storage and version counters (every in-place update
through the parameter, e.g. an optimiser step or ``load_state_dict``, bumps them); switching between
train and eval mode drops the cache. Edits through ``param.data`` bypass the version counter: switch
modes after them (``model.train().eval()``).

GEMMs on CPU run in oneDNN (:data:`ONEDNN`), which runs these shapes 1.3-2x faster than the BLAS behind
``torch.matmul`` on AMD EPYC (194 against 140 GFLOP/s at 4096^2; on a Xeon with AMX the two are within the
machine's noise): eval caches hold the kernels
reordered once (:class:`PackedKernel`), which also skips the per-call packing that dominates small
batches; fp32 training runs the forward and the input-gradient GEMM through oneDNN (:class:`_OneDNNGemm`).
Autocast, graph capture and torch.compile keep ``torch.matmul``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .attention import KernelScale
from .errors import ConfigError, InputError

__all__ = ["AXIS_MODES", "PADDING_MODES", "normalise_paddings", "tap_sources", "fused_terms", "cell_groups", "eager",
           "GridConv", "DGridConv"]

AXIS_MODES = ("circular", "replicate", "zeros")
PADDING_MODES = AXIS_MODES + tuple(f"{h}:{v}" for h in AXIS_MODES for v in AXIS_MODES if h != v)
"""One mode on both axes, or a per-axis mix ``"horizontal:vertical"`` (Table D #3 ``circular:replicate``:
columns wrap, rows replicate; #4 ``replicate:circular``)."""
_ALIASES = {"c": "circular", "r": "replicate", "z": "zeros", "zero": "zeros", "constant": "zeros"}
TAPWISE_RATIO = 4
"""Layers with ``C_out`` at most ``C_in / TAPWISE_RATIO`` (the output layer, 256 -> 3) run the tapwise path (module
doc): it gathers ``C_out`` instead of ``C_in`` values per tap and builds no patch matrix."""
CPU_BLOCK_CELLS = 1250
"""Grid cells (samples x H x P) per block on CPU: keeps the patch matrix of a block in cache."""
GROUPS_AT = 0.9
"""Inference without autograd runs the cell groups instead of base and bands when they have at most this fraction of
the terms (module doc): (c, z) 225 against 285 (0.79), while (c, r)'s 281 against 285 keep the bands."""
SMALL_BATCH_CELLS = 175
"""Up to this many grid cells per call run the unfused per-branch GEMM (module doc). Measured crossover of the default
network, packed oneDNN kernels, stacked vs fused (poses of 25 cells, medians of 9-11 turns of 16 calls), 2-core AVX2
EPYC, with the bands as one term set: 6 poses 22.2 vs 22.9 ms, 7 poses 23.7 vs 24.8, 22.9 vs 22.5 and 21.8 vs 22.4,
8 poses 26.5 vs 25.7, 24.3 vs 22.9 and 24.4 vs 22.9, 10 poses 30.2 vs 28.4. (With one gather per band, the AVX512
EPYC crossed near 8 poses: 6 poses 9.71 vs 10.72 ms, 8 poses 11.54 vs 11.28.)"""


def _axis_modes(mode: str) -> tuple[str, str]:
    """``(horizontal, vertical)`` padding of a mode in :data:`PADDING_MODES`."""
    horizontal, _, vertical = mode.partition(":")
    return horizontal, vertical or horizontal


def normalise_paddings(paddings: str | Sequence[str]) -> tuple[str, ...]:
    """Full padding-mode names for 1, 2 or 4 branches; accepts the official letters ``c``/``r``/``z``
    and per-axis mixes ``"h:v"`` (e.g. ``"c:r"``; ``"c:c"`` is ``"circular"``)."""
    items = (paddings,) if isinstance(paddings, str) else tuple(paddings)
    modes = []
    for m in items:
        axes = tuple(_ALIASES.get(a, a) for a in str(m).split(":"))
        modes.append(axes[0] if len(axes) == 2 and axes[0] == axes[1] else ":".join(axes))
    bad = [m for m in modes if m not in PADDING_MODES]
    if bad or len(modes) not in (1, 2, 4):
        raise ConfigError(
            f"paddings {list(items)} invalid: need 1, 2 or 4 branches of {', '.join(AXIS_MODES)} (or c/r/z), "
            f"or per-axis mixes horizontal:vertical such as c:r"
        )
    return tuple(modes)


def _pad_index(index: np.ndarray, size: int, mode: str) -> np.ndarray:
    """Index into an axis of ``size`` after padding by ``mode`` (out of range for zeros)."""
    if mode == "circular":
        return index % size
    if mode == "replicate":
        return index.clip(0, size - 1)
    return index


def tap_sources(grid_shape: tuple[int, int], kernel_size: int, paddings: Sequence[str]) -> np.ndarray:
    """Source cell ``q`` that output cell ``p`` reads through tap ``k`` of branch ``n``: ``(HP, N, K*K)``.

    ``-1`` where zero padding reads outside the grid (that term of eq. 8 vanishes). Padding is
    separable: rows follow the branch's vertical mode, columns its horizontal mode.
    """
    h, p = grid_shape
    r = kernel_size // 2
    src = np.full((h * p, len(paddings), kernel_size**2), -1, dtype=np.int64)
    rows, cols = np.divmod(np.arange(h * p), p)
    for n, mode in enumerate(paddings):
        horizontal, vertical = _axis_modes(mode)
        for k in range(kernel_size**2):
            src_r = _pad_index(rows + k // kernel_size - r, h, vertical)
            src_c = _pad_index(cols + k % kernel_size - r, p, horizontal)
            inside = (src_r >= 0) & (src_r < h) & (src_c >= 0) & (src_c < p)
            src[inside, n, k] = (src_r * p + src_c)[inside]
    return src


class Band(NamedTuple):
    """Border corrections of eq. 8 that share one cell set: ``T`` branch taps on ``M`` cells (module doc).

    ``taps`` ``(T,)``: the branch taps ``n * K*K + k`` whose kernels the band multiplies; ``sources`` ``(M*T, 2)``:
    per (cell, tap), the cell whose features count with ``+`` and the one with ``-`` (``HP``: the zero cell);
    ``alpha_index`` ``(M*T,)``: the entry ``k * HP + p`` of the flattened tap factors.
    """

    cells: np.ndarray
    taps: np.ndarray
    sources: np.ndarray
    alpha_index: np.ndarray


class FusedTerms(NamedTuple):
    """Eq. 8 as one base term per tap on every cell plus border corrections (module doc).

    ``base_sources`` ``(HP*K*K,)``: the cell that cell ``p`` reads through tap ``k`` under the base padding
    (row ``p * K*K + k``; ``HP``: the zero cell), ``base_alpha_index`` the matching tap factor ``k * HP + p``.
    ``count``: the terms per pose (cell-terms of ``C_in x C_out``), base and bands.
    """

    base_mode: str
    base_sources: np.ndarray
    base_alpha_index: np.ndarray
    bands: tuple[Band, ...]

    @property
    def count(self) -> int:
        return len(self.base_sources) + sum(len(band.alpha_index) for band in self.bands)


def _base_mode(paddings: Sequence[str]) -> str:
    """Per axis, the branches' most common mode (the first on a tie): the base reads through it, so branches
    that pad that axis the same way need no correction there."""
    axes = list(zip(*(_axis_modes(m) for m in paddings)))
    horizontal, vertical = (max(dict.fromkeys(modes), key=modes.count) for modes in axes)
    return horizontal if horizontal == vertical else f"{horizontal}:{vertical}"


def fused_terms(grid_shape: tuple[int, int], kernel_size: int, paddings: Sequence[str]) -> FusedTerms:
    """The base and the bands of eq. 8 for these branches (module doc).

    With the base padding ``(bh, bv)`` and branch ``n``'s ``(h_n, v_n)``, what branch ``n`` reads at row ``i``,
    column ``j`` telescopes as ``X[v_n(i), h_n(j)] = X[bv(i), bh(j)] + (X[v_n(i), h_n(j)] - X[bv(i), h_n(j)])
    + (X[bv(i), h_n(j)] - X[bv(i), bh(j)])``: the first difference vanishes unless row ``i`` lies outside the grid
    and ``v_n != bv``, the second unless column ``j`` does and ``h_n != bh``. So eq. 8 is ``sum_k alpha_k
    (sum_n W_{n,k}) X[base]`` on every cell, plus ``alpha_k W_{n,k} (X[+] - X[-])`` on border cells; corrections
    with the same cells form a band.
    """
    h, p = grid_shape
    r, kk, hp = kernel_size // 2, kernel_size**2, h * p
    rows, cols = np.divmod(np.arange(hp), p)
    base_mode = _base_mode(paddings)
    base_h, base_v = _axis_modes(base_mode)

    def cell(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return np.where((i >= 0) & (i < h) & (j >= 0) & (j < p), i * p + j, hp)

    offsets = [(k // kernel_size - r, k % kernel_size - r) for k in range(kk)]
    base = np.stack([cell(_pad_index(rows + dy, h, base_v), _pad_index(cols + dx, p, base_h)) for dy, dx in offsets], 1)
    corrections: dict[tuple[int, ...], list[tuple[int, int, np.ndarray]]] = {}  # cells -> (branch tap, k, +/- rows)
    for n, mode in enumerate(paddings):
        horizontal, vertical = _axis_modes(mode)
        for k, (dy, dx) in enumerate(offsets):
            i, j = rows + dy, cols + dx
            bv, bh = _pad_index(i, h, base_v), _pad_index(j, p, base_h)
            vn, hn = _pad_index(i, h, vertical), _pad_index(j, p, horizontal)
            for differs, outside, plus, minus in (
                (vertical != base_v, (i < 0) | (i >= h), cell(vn, hn), cell(bv, hn)),
                (horizontal != base_h, (j < 0) | (j >= p), cell(bv, hn), cell(bv, bh)),
            ):
                if differs and outside.any():
                    pairs = np.stack([plus, minus], 1)[outside]
                    corrections.setdefault(tuple(np.flatnonzero(outside)), []).append((n * kk + k, k, pairs))
    bands = []
    for cells, terms in corrections.items():
        index = np.array(cells)
        bands.append(Band(
            cells=index,
            taps=np.array([t for t, _, _ in terms]),
            sources=np.stack([pairs for _, _, pairs in terms], 1).reshape(-1, 2),
            alpha_index=(np.array([k for _, k, _ in terms]) * hp + index[:, None]).reshape(-1),
        ))
    return FusedTerms(base_mode, base.reshape(-1), (np.arange(kk) * hp + np.arange(hp)[:, None]).reshape(-1),
                      tuple(bands))


class CellGroups(NamedTuple):
    """Eq. 8 with branches merged where they read the same cell, cells grouped by term list (module doc).

    Cells are listed group by group (``cells``, ``group_cells[g]`` of them per group). Group ``g`` has
    ``group_terms[g]`` terms, each a tap ``k`` and the branches reading one source cell through it; ``combine``
    ``(sum_g T_g, N*K*K)`` sums those branches' tap kernels, ``sources`` ``(sum_g M_g*T_g,)`` lists each cell's source
    per term and ``alpha_index`` the matching tap factor ``k * HP + p``.
    """

    cells: np.ndarray
    group_cells: tuple[int, ...]
    group_terms: tuple[int, ...]
    combine: np.ndarray
    sources: np.ndarray
    alpha_index: np.ndarray

    @property
    def count(self) -> int:
        return sum(m * t for m, t in zip(self.group_cells, self.group_terms))


def cell_groups(grid_shape: tuple[int, int], kernel_size: int, paddings: Sequence[str]) -> CellGroups:
    """Group the grid cells by their term signature (per tap: the branches partitioned by source cell); terms of
    zero padding that read outside the grid vanish."""
    src = tap_sources(grid_shape, kernel_size, paddings)
    hp, n_branch, kk = src.shape
    groups: dict[tuple[tuple[int, tuple[int, ...]], ...], list[int]] = {}
    cell_sources: list[list[int]] = []
    for cell in range(hp):
        signature, sources = [], []
        for k in range(kk):
            for q in dict.fromkeys(int(s) for s in src[cell, :, k] if s >= 0):  # distinct, in branch order
                signature.append((k, tuple(n for n in range(n_branch) if src[cell, n, k] == q)))
                sources.append(q)
        groups.setdefault(tuple(signature), []).append(cell)
        cell_sources.append(sources)
    combine, sources, alpha_index = [], [], []
    for signature, cells in groups.items():
        for k, branches in signature:
            row = np.zeros(n_branch * kk, dtype=np.float32)
            row[[n * kk + k for n in branches]] = 1.0
            combine.append(row)
        for cell in cells:
            sources += cell_sources[cell]
            alpha_index += [k * hp + cell for k, _ in signature]
    return CellGroups(
        cells=np.array([c for cells in groups.values() for c in cells], dtype=np.int64),
        group_cells=tuple(len(cells) for cells in groups.values()),
        group_terms=tuple(len(signature) for signature in groups),
        combine=np.stack(combine),
        sources=np.array(sources, dtype=np.int64),
        alpha_index=np.array(alpha_index, dtype=np.int64),
    )


class PackedKernel(NamedTuple):
    """A ``(K, N)`` kernel reordered for oneDNN's CPU GEMM; only eval-mode caches hold one (module doc)."""

    packed: Tensor
    dtype: torch.dtype


def _onednn_available() -> bool:
    """True when this torch build has oneDNN's prepacked linear ops (x86 and ARM CPU wheels do)."""
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
    except (AttributeError, RuntimeError):
        return False


ONEDNN = _onednn_available()
"""Whether CPU GEMMs go through oneDNN (module doc); benchmarks and tests switch it off to compare."""


def _onednn_bf16() -> bool:
    """True when oneDNN has a bf16 GEMM on this CPU (AVX512 BW/VL/DQ or AVX-NE-CONVERT; not on AVX2 alone, where
    packing a bf16 kernel raises)."""
    try:
        return ONEDNN and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


ONEDNN_PACKS = (torch.float32, *((torch.bfloat16,) if _onednn_bf16() else ()))
"""The dtypes that eval caches pack for oneDNN on this CPU; other kernels stay plain for ``torch.matmul``."""


def _pack(kernel: Tensor) -> PackedKernel:
    """Reorder a ``(K, N)`` kernel once for :func:`gemm` (oneDNN takes it as a ``(N, K)`` linear weight)."""
    return PackedKernel(torch.ops.mkldnn._reorder_linear_weight(kernel.t().contiguous()), kernel.dtype)


def eval_kernel(kernel: Tensor, dtype: torch.dtype | None, device_type: str) -> Tensor | PackedKernel:
    """A ``(K, N)`` kernel as eval caches keep it for :func:`gemm`: in the autocast ``dtype`` if any, packed for
    oneDNN on CPU in the dtypes it multiplies there (:data:`ONEDNN_PACKS`; never float64)."""
    kernel = kernel if dtype is None else kernel.to(dtype)
    packable = device_type == "cpu" and ONEDNN and kernel.dtype in ONEDNN_PACKS
    return _pack(kernel) if packable else kernel


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor] | None] = {"none": None, "relu": torch.relu, "sigmoid": torch.sigmoid}
"""What :func:`gemm` applies after the bias (a oneDNN post-op for packed kernels)."""
_IN_PLACE = {"relu": torch.relu_, "sigmoid": torch.sigmoid_}


def _linear(a: Tensor, weight: Tensor, bias: Tensor | None = None, activation: str = "none") -> Tensor:
    """oneDNN's ``act(a @ weight.T + bias)`` on CPU (``weight`` ``(N, K)``, packed or plain, any strides)."""
    return torch.ops.mkldnn._linear_pointwise(a, weight, bias, activation, [], "")


class _OneDNNGemm(torch.autograd.Function):
    """``a @ kernel`` for fp32 training on CPU: the forward and the input gradient ``grad @ kernel.T`` in
    oneDNN; the kernel gradient ``a.T @ grad`` stays on ``torch.matmul``, which reads the transposed ``a``
    in place (oneDNN would copy it: 2x slower)."""

    @staticmethod
    def forward(ctx, a: Tensor, kernel: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(a, kernel)
        return _linear(a, kernel.t())

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:  # type: ignore[override]
        a, kernel = ctx.saved_tensors
        grad_a = _linear(grad, kernel) if ctx.needs_input_grad[0] else None
        grad_kernel = torch.matmul(a.t(), grad) if ctx.needs_input_grad[1] else None
        return grad_a, grad_kernel


def gemm(a: Tensor, kernel: Tensor | PackedKernel, bias: Tensor | None = None, activation: str = "none") -> Tensor:
    """``act(a @ kernel + bias)`` for a ``(M, K)`` matrix, ``act`` one of :data:`ACTIVATIONS`.

    oneDNN on CPU: a packed kernel (:func:`eval_kernel`) in its own dtype, with a bias of that dtype and the
    activation as post-ops of the GEMM (a bias in another dtype is added after and promotes the sum, as autocast's
    fp32 biases do); plain fp32 kernels through :class:`_OneDNNGemm`. ``torch.matmul`` elsewhere and under
    autocast or graph capture.
    """
    if isinstance(kernel, PackedKernel) and (bias is None or bias.dtype == kernel.dtype):
        return _linear(a.to(kernel.dtype), kernel.packed, bias, activation)
    if isinstance(kernel, PackedKernel):
        out = _linear(a.to(kernel.dtype), kernel.packed)
    elif ONEDNN and a.device.type == "cpu" and a.dtype == kernel.dtype == torch.float32 and eager() \
            and not torch.is_autocast_enabled(a.device.type):
        out = _OneDNNGemm.apply(a, kernel)
    else:
        out = torch.matmul(a, kernel)
    return _epilogue(out, bias, activation)


def _epilogue(out: Tensor, bias: Tensor | None, activation: str) -> Tensor:
    """``act(out + bias)`` as separate ops, where no GEMM post-op can take them."""
    out = out if bias is None else out + bias
    act = ACTIVATIONS[activation]
    return out if act is None else act(out)


def _scaled_rows(table: Tensor, index: Tensor, weights: Tensor) -> Tensor:
    """``sum_j weights[i, j] * table[index[i, j]]`` for every row ``i`` of ``index`` in one pass (``embedding_bag``
    with bags of ``index.shape[1]`` rows)."""
    return F.embedding_bag(index, table, mode="sum", per_sample_weights=weights.to(table.dtype))


def _gather_rows(block: Tensor, sources: Tensor, alpha: Tensor | None) -> Tensor:
    """The rows of :class:`_ScaledGather` (its forward, which the grouped path runs alone, without autograd)."""
    (n, hp, c), (rows, reads) = block.shape, sources.shape
    index = (torch.arange(n, device=block.device)[:, None, None] * hp + sources).view(n * rows, reads)
    table = block.reshape(n * hp, c)
    if reads == 1 and alpha is None:
        patches = table.index_select(0, index.view(-1))
    else:
        signs = torch.tensor([1.0, -1.0], dtype=table.dtype, device=table.device)[:reads]
        patches = _scaled_rows(table, index, signs.expand(n * rows, reads) if alpha is None
                               else alpha.reshape(-1, 1).to(table.dtype) * signs)
    return patches.view(n, rows, c)


def _scatter_rows(grad: Tensor, sources: Tensor, alpha: Tensor | None, cells: int) -> Tensor:
    """The transpose of :func:`_gather_rows`, ``T^T @ (alpha * grad)``, as a gather: each of the ``cells`` table rows
    sums its readers' rows ``sign * alpha[b, r] * grad[b, r]`` (``embedding_bag`` with a bag per cell; a cell that no
    row reads gets zeros) -> ``(n, cells, C)``."""
    (n, rows, c), reads = grad.shape, sources.shape[1]
    flat = sources.reshape(-1)
    order = torch.argsort(flat, stable=True)  # the reads, cell by cell
    counts = torch.bincount(flat, minlength=cells)
    readers = order // reads
    signs = torch.tensor([1.0, -1.0], dtype=grad.dtype, device=grad.device)[:reads].repeat(rows)[order]
    weights = signs.expand(n, -1) if alpha is None else alpha.index_select(1, readers).to(grad.dtype) * signs
    samples = torch.arange(n, device=grad.device)[:, None]
    index = (samples * rows + readers).view(-1)
    offsets = (samples * flat.numel() + (counts.cumsum(0) - counts)).view(-1)
    out = F.embedding_bag(index, grad.reshape(n * rows, c), offsets, mode="sum", per_sample_weights=weights.reshape(-1))
    return out.view(n, cells, c)


class _ScaledGather(torch.autograd.Function):
    """A block's patches ``G @ X`` with ``G = alpha * T``, as a row gather (module doc).

    Row ``r`` reads one cell (``sources`` ``(R, 1)``, a base row: ``alpha[b, r] * X[b, s]``) or the difference of
    two (``(R, 2)``, a band row: ``alpha[b, r] * (X[b, s+] - X[b, s-])``); ``T`` ``(R, HP)`` would hold the same as
    ``+1`` and ``-1``, and ``alpha`` ``None`` stands for 1. About 2x faster than the batched GEMM ``G @ X`` on CPU.
    The gather and the scaling are one pass, ``embedding_bag`` with ``alpha`` (and the signs) as the per-sample
    weights (0.10 against 0.16 ms for ``index_select`` then ``mul_`` on 1,250 cells). The backward is that GEMM's,
    as gathers too: ``grad_X = G^T @ grad`` (:func:`_scatter_rows`) and ``grad_alpha[b, r] = <grad[b, r], (T @
    X[b])[r]>``, the rows gathered again without ``alpha`` and dotted with ``grad`` in one batched product. On a
    training batch's base rows (200 poses, 2-core AVX2 EPYC, freed memory kept) they take 3.8 and 9.5 ms, where the
    batched GEMMs with ``G^T`` and with ``X^T`` (read at the sources) took 10.8 and 15.2 ms.
    """

    @staticmethod
    def forward(ctx, block: Tensor, sources: Tensor, alpha: Tensor | None) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(block, alpha, sources)
        return _gather_rows(block, sources, alpha)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        block, alpha, sources = ctx.saved_tensors
        grad_block = grad_alpha = None
        if ctx.needs_input_grad[0]:
            grad_block = _scatter_rows(grad, sources, alpha, block.shape[1])
        if alpha is not None and ctx.needs_input_grad[2]:
            grad_alpha = torch.einsum("brc,brc->br", grad, _gather_rows(block, sources, None))
        return grad_block, None, grad_alpha


def _capturing() -> bool:
    """True while a graph is traced or exported: then the batch is one block and the selection GEMMs stand in for
    the row gathers (module doc)."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


def eager() -> bool:
    """Neither graph capture nor torch.compile: the eager-only fast paths (kernel cache, oneDNN, row gather) apply."""
    return not (_capturing() or torch.compiler.is_compiling())


def _sample_blocks(batch: int, cells_per_sample: int, blocked: bool) -> list[slice]:
    """The samples in blocks of about :data:`CPU_BLOCK_CELLS` rows of ``cells_per_sample`` each, or one block."""
    step = max(1, CPU_BLOCK_CELLS // cells_per_sample) if blocked else batch
    return [slice(start, min(batch, start + step)) for start in range(0, batch, step)]


def _term_alphas(alpha: Tensor | None, index: Tensor, rows: list[int]) -> list[Tensor | None]:
    """Each term set's tap factors ``(B, rows[i])``, picked from the flattened ``alpha`` by ``index`` (``None``: 1)."""
    return [None] * len(rows) if alpha is None else list(alpha.index_select(1, index).split(rows, 1))


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
            raise ConfigError(f"kernel_size must be a positive odd number, got {kernel_size}")
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
        hp = self.grid_shape[0] * self.grid_shape[1]
        src = tap_sources(self.grid_shape, kernel_size, self.paddings)
        self.reads_zero_cell = bool((src < 0).any())  # then every path reads an appended zero cell, index hp
        one_hot = np.eye(hp + 1, dtype=np.float32)[:, : hp + self.reads_zero_cell]
        terms = fused_terms(self.grid_shape, kernel_size, self.paddings)
        self.term_count = terms.count
        groups = cell_groups(self.grid_shape, kernel_size, self.paddings)
        self.group_shapes = tuple(zip(groups.group_cells, groups.group_terms))
        self.groups_for_inference = groups.count <= GROUPS_AT * terms.count  # e.g. (c, z): 225 against 285 terms
        self.band_shapes = tuple((len(band.cells), len(band.taps)) for band in terms.bands)
        empty = Band(*(np.zeros((0, *shape), dtype=np.int64) for shape in ((), (), (2,), ())))
        bands = [*terms.bands, empty]  # an empty band keeps the concatenations below defined without bands
        buffers = {
            "base_sources": torch.from_numpy(terms.base_sources[:, None]),
            "band_sources": torch.from_numpy(np.concatenate([b.sources for b in bands])),
            "band_cells": torch.from_numpy(np.concatenate([b.cells for b in bands])),
            "band_place": torch.from_numpy(  # T's counterpart for the bands' sums: (HP, band cells), 1 where each lands
                np.eye(hp, dtype=np.float32)[:, np.concatenate([b.cells for b in bands])]),
            "band_taps": torch.from_numpy(np.concatenate([b.taps for b in bands])),
            "fused_alpha_index": torch.from_numpy(
                np.concatenate([terms.base_alpha_index, *(b.alpha_index for b in bands)])),
            "fused_select": torch.from_numpy(np.concatenate(  # T of the module doc, base rows then band rows (+1, -1)
                [one_hot[terms.base_sources], *(one_hot[b.sources[:, 0]] - one_hot[b.sources[:, 1]] for b in bands)])),
            "branch_sources": torch.from_numpy(np.where(src < 0, hp, src).reshape(-1)),
            "group_combine": torch.from_numpy(groups.combine),
            "group_sources": torch.from_numpy(groups.sources[:, None]),
            "group_alpha_index": torch.from_numpy(groups.alpha_index),
            "group_cells": torch.from_numpy(groups.cells),
        }
        n_kk = len(self.paddings) * kernel_size**2  # tap product (q, n, k) is row q * N*K*K + n * K*K + k
        tapwise = src * n_kk + np.arange(n_kk).reshape(len(self.paddings), kernel_size**2)
        buffers["tapwise_sources"] = torch.from_numpy(np.where(src < 0, hp * n_kk, tapwise).reshape(-1))
        for name, value in buffers.items():
            self.register_buffer(name, value, persistent=False)
        self._cache: dict[tuple[str, torch.dtype | None], tuple[tuple[object, ...], object]] = {}

    def branch_weights(self) -> list[Tensor]:
        return [getattr(self, f"branch{n}_weight") for n in range(1, len(self.paddings) + 1)]

    def branch_biases(self) -> list[Tensor]:
        return [getattr(self, f"branch{n}_bias") for n in range(1, len(self.paddings) + 1)] if self.has_bias else []

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, P) -> (B, C_out, H, P)``."""
        return self._convolve(x, None)

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles leave the kernel cache behind (packed oneDNN kernels have no storage to copy)."""
        return {**self.__dict__, "_cache": {}}

    def train(self, mode: bool = True) -> GridConv:
        """As :meth:`nn.Module.train`; a change of mode also drops the cached kernels (module doc)."""
        if mode != self.training:
            self._cache.clear()
        return super().train(mode)

    def stacked_weights(self) -> Tensor:
        """Every branch's kernel stacked over (branch, tap, input channel): ``(N * K*K * C_in, C_out)``."""
        return torch.stack(self.branch_weights()).permute(0, 3, 4, 2, 1).reshape(-1, self.out_channels)

    def tapwise_weights(self) -> Tensor:
        """Every branch's kernel side by side over (branch, tap, output channel): ``(C_in, N * K*K * C_out)``."""
        return torch.stack(self.branch_weights()).permute(2, 0, 3, 4, 1).reshape(self.in_channels, -1)

    def kernels(self, kind: str) -> Tensor | list[Tensor]:
        """The kernels of a path (:meth:`path`): :meth:`stacked_weights`, :meth:`tapwise_weights` or :meth:`fused_weights`."""
        return {"stacked": self.stacked_weights, "tapwise": self.tapwise_weights, "fused": self.fused_weights,
                "grouped": self.grouped_weights}[kind]()

    def eval_kernels(
        self, kind: str, scale: Tensor | None = None, dtype: torch.dtype | None = None, device_type: str = "cpu"
    ) -> Tensor | PackedKernel | list[Tensor | PackedKernel]:
        """The :meth:`kernels` of a path as eval mode keeps them: output channels times ``scale`` (a folded
        BatchNorm, :mod:`gridconv_core.inference`), in ``dtype`` (autocast's), packed for oneDNN on CPU."""
        weights = self.kernels(kind)
        if scale is not None and kind == "tapwise":
            scale = scale.repeat(len(self.paddings) * self.kernel_size**2)
        kernels = [eval_kernel(w if scale is None else w * scale, dtype, device_type)
                   for w in (weights if isinstance(weights, list) else [weights])]
        return kernels if kind in ("fused", "grouped") else kernels[0]

    def _cached(self, kind: str, device_type: str) -> Any:
        """The ``"bias"`` or the kernels of a path (:meth:`kernels`) for a call, kept between calls in eval mode without
        autograd while the parameters are unchanged (module doc); built anew otherwise.

        Under autocast the cached kernels are already in the autocast dtype, so no cast runs per call.
        """
        if self.training or torch.is_grad_enabled() or not eager():
            return self.summed_bias() if kind == "bias" else self.kernels(kind)
        dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None
        params = [*self.branch_weights(), *self.branch_biases()]
        key = tuple((id(t), t.data_ptr(), t._version) for t in params)
        hit = self._cache.get((kind, dtype))  # one entry per dtype: fp32 and bf16 calls may alternate
        if hit is None or hit[0] != key:
            value = self.summed_bias() if kind == "bias" else self.eval_kernels(kind, None, dtype, device_type)
            hit = self._cache[(kind, dtype)] = (key, value)
        return hit[1]

    def summed_bias(self) -> Tensor:
        """The summed branch biases (eq. 8's ``sum_n bias_n``)."""
        return sum(self.branch_biases())  # type: ignore[return-value]

    def fused_weights(self) -> list[Tensor]:
        """The base kernel ``sum_n W_n`` over (tap, input channel), ``(K*K * C_in, C_out)``, then each band's branch
        taps stacked over input channels, ``(T * C_in, C_out)`` (module doc)."""
        n = len(self.paddings)
        stacked = self.stacked_weights()
        base = stacked.reshape(n, -1, self.out_channels).sum(0) if n > 1 else stacked
        taps = stacked.reshape(n * self.kernel_size**2, -1).index_select(0, self.band_taps)
        return [base, *(w.reshape(-1, self.out_channels) for w in taps.split([t for _, t in self.band_shapes]))]

    def grouped_weights(self) -> list[Tensor]:
        """Per cell group, the merged kernel of each term stacked over input channels, ``(T_g * C_in, C_out)``."""
        stacked = self.stacked_weights().reshape(len(self.paddings) * self.kernel_size**2, -1)
        merged = torch.matmul(self.group_combine.to(stacked.dtype), stacked)
        return [w.reshape(-1, self.out_channels) for w in merged.split([t for _, t in self.group_shapes])]

    def path(self, batch: int) -> str:
        """How a call on ``batch`` samples runs (module doc): ``"tapwise"`` for layers with few output channels,
        else ``"stacked"`` for small batches and above :data:`SMALL_BATCH_CELLS` ``"fused"`` (base and bands), or
        ``"grouped"`` without autograd where the cell groups have fewer terms."""
        if TAPWISE_RATIO * self.out_channels <= self.in_channels:
            return "tapwise"
        if batch * self.grid_shape[0] * self.grid_shape[1] <= SMALL_BATCH_CELLS:
            return "stacked"
        return "grouped" if self.groups_for_inference and not torch.is_grad_enabled() and eager() else "fused"

    def convolve_cells(
        self,
        cells: Tensor,
        alpha: Tensor | None,
        kernels: Tensor | PackedKernel | Sequence[Tensor | PackedKernel],
        bias: Tensor | None = None,
        activation: str = "none",
    ) -> Tensor:
        """Eq. 8 on cell-major features, ``(B, HP, C_in) -> (B, HP, C_out)``, with the given kernels.

        ``kernels``: the :meth:`kernels` of the batch's :meth:`path` (as such or as the eval cache keeps them);
        ``alpha`` ``(B, K*K * HP)`` tap factors or ``None``. ``bias`` ``(C_out,)`` and the activation
        (:data:`ACTIVATIONS`) are applied in the GEMMs (oneDNN post-ops for packed kernels).
        """
        run = {"stacked": self._branches, "tapwise": self._tapwise, "fused": self._fused,
               "grouped": self._grouped}[self.path(cells.shape[0])]
        return run(cells, alpha, kernels, bias, activation)  # type: ignore[operator]

    def _convolve(self, x: Tensor, scale: KernelScale | None) -> Tensor:
        """The fused multi-branch convolution of eq. 6 / eq. 8 (module doc)."""
        b, c, h, p = x.shape
        if c != self.in_channels or (h, p) != self.grid_shape:
            raise InputError(
                f"grid feature {tuple(x.shape)} does not fit this layer (C_in={self.in_channels}, grid {self.grid_shape})"
            )
        if scale is not None and scale.channels is not None:
            x = x * scale.channels
        hp, kk = h * p, self.kernel_size**2
        cells = x.permute(0, 2, 3, 1).reshape(b, hp, c)  # a view for channels-last inputs
        alpha = None if scale is None or scale.taps is None else scale.taps.expand(b, kk, h, p).reshape(b, kk * hp)
        device = x.device.type
        bias = self._cached("bias", device) if self.has_bias else None
        out = self.convolve_cells(cells, alpha, self._cached(self.path(b), device), bias)
        return out.view(b, h, p, self.out_channels).permute(0, 3, 1, 2)

    def _branches(
        self, cells: Tensor, alpha: Tensor | None, kernel: Tensor | PackedKernel, bias: Tensor | None, activation: str
    ) -> Tensor:
        """Small batches: all taps of all branches gathered, one GEMM with the stacked kernel -> ``(B, HP, C_out)``."""
        (b, hp, c), n, kk = cells.shape, len(self.paddings), self.kernel_size**2
        padded = torch.cat([cells, cells.new_zeros(b, 1, c)], 1) if self.reads_zero_cell else cells
        patches = padded.index_select(1, self.branch_sources)
        if alpha is not None:  # alpha (B, K*K * HP) scales tap k of every branch at cell p
            patches = patches.view(b, hp, n, kk, c) * alpha.view(b, 1, kk, hp).permute(0, 3, 1, 2)[..., None]
        return gemm(patches.reshape(b * hp, n * kk * c), kernel, bias, activation).view(b, hp, self.out_channels)

    def _tapwise(
        self, cells: Tensor, alpha: Tensor | None, kernel: Tensor | PackedKernel, bias: Tensor | None, activation: str
    ) -> Tensor:
        """Few output channels: every tap's product ``X[q] W_{n,k}`` for every source cell in one GEMM, then each
        cell gathers and sums its own (eq. 8 read from the output side) -> ``(B, HP, C_out)``."""
        (b, hp, c), n, kk = cells.shape, len(self.paddings), self.kernel_size**2
        taps = gemm(cells.reshape(b * hp, c), kernel).view(b, hp * n * kk, self.out_channels)
        if self.reads_zero_cell:
            taps = torch.cat([taps, taps.new_zeros(b, 1, self.out_channels)], 1)
        picked = taps.index_select(1, self.tapwise_sources).view(b, hp, n, kk, self.out_channels)
        if alpha is not None:
            picked = picked * alpha.view(b, 1, kk, hp).permute(0, 3, 1, 2)[..., None].to(picked.dtype)
        return _epilogue(picked.sum((2, 3)), bias, activation)

    def _fused(
        self, cells: Tensor, alpha: Tensor | None, kernels: Sequence[Tensor | PackedKernel], bias: Tensor | None,
        activation: str,
    ) -> Tensor:
        """The base and the bands of the module doc -> ``(B, HP, C_out)``.

        The bands are gathered as one term set (one gather for all their rows), split into one GEMM per band, and
        their sums added at their cells at once. On CPU, inference runs in cache-sized blocks of samples; with
        autograd on, the batch is one block (its patches are kept for the backward anyway, and one kernel gradient
        needs no accumulation)."""
        (b, hp, c), kk = cells.shape, self.kernel_size**2
        table = torch.cat([cells, cells.new_zeros(b, 1, c)], 1) if self.reads_zero_cell else cells
        band_rows = [m * t for m, t in self.band_shapes]
        rows = [hp * kk, sum(band_rows)]
        sources = [self.base_sources, self.band_sources]
        alphas = _term_alphas(alpha, self.fused_alpha_index, rows)
        gather = cells.device.type == "cpu" and eager()
        selects = [] if gather else self.fused_select.to(cells.dtype).split(rows)
        blocked = gather and not torch.is_grad_enabled()

        def patches(term: int, cells_per_sample: int) -> Iterator[tuple[slice, Tensor]]:
            """Term set ``term`` (0 the base, 1 the bands), gathered as the GEMMs consume them, in blocks of samples
            of about CPU_BLOCK_CELLS cells at ``cells_per_sample`` cells per sample."""
            for at in _sample_blocks(b, cells_per_sample, blocked):
                whole = at.stop - at.start == b
                a = alphas[term] if alphas[term] is None or whole else alphas[term][at]
                block = table if whole else table[at]
                yield at, (_ScaledGather.apply(block, sources[term], a) if gather
                           else torch.matmul(selects[term] if a is None else a[:, :, None] * selects[term], block))

        last = "none" if self.band_shapes else activation  # with bands, the activation follows their sum
        parts = [gemm(p.reshape(-1, kk * c), kernels[0], bias, last) for _, p in patches(0, hp)]
        out = (parts[0] if len(parts) == 1 else torch.cat(parts)).view(b, hp, self.out_channels)
        if not self.band_shapes:
            return out
        for at, p in patches(1, max(m for m, _ in self.band_shapes)):  # each band's GEMM as large as the base's
            sums = torch.cat([gemm(part.reshape(-1, t * c), kernel).view(-1, m, self.out_channels)
                              for part, (m, t), kernel in zip(p.split(band_rows, 1), self.band_shapes, kernels[1:])],
                             1).to(out.dtype)
            if blocked:
                (out if at.stop - at.start == b else out[at]).index_add_(1, self.band_cells, sums)
            elif gather:  # out of place: in place on the GEMM's view, autograd's backward would copy the whole grid
                out = out.index_add(1, self.band_cells, sums)
            else:  # the selection form places them by a GEMM too (ONNX's index_add kept one of a corner's two sums)
                out = out + torch.matmul(self.band_place.to(sums.dtype), sums)
        return _IN_PLACE[activation](out) if blocked and activation != "none" else _epilogue(out, None, activation)

    def _grouped(
        self, cells: Tensor, alpha: Tensor | None, kernels: Sequence[Tensor | PackedKernel], bias: Tensor | None,
        activation: str,
    ) -> Tensor:
        """The cell groups of the module doc, without autograd -> ``(B, HP, C_out)``: each group (on CPU in cache-sized
        blocks of samples) gathered and multiplied with bias and activation in its GEMM (every cell is in one group),
        its rows copied into place."""
        b, hp, c = cells.shape
        rows = [m * t for m, t in self.group_shapes]
        alphas = _term_alphas(alpha, self.group_alpha_index, rows)
        out: Tensor | None = None
        groups = zip(self.group_shapes, self.group_sources.split(rows), alphas, kernels,
                     self.group_cells.split([m for m, _ in self.group_shapes]))
        for (m, t), sources, a, kernel, cells_at in groups:
            for at in _sample_blocks(b, m, cells.device.type == "cpu"):
                patches = _gather_rows(cells[at], sources, None if a is None else a[at])
                part = gemm(patches.reshape(-1, t * c), kernel, bias, activation)
                out = part.new_empty(b * hp, self.out_channels) if out is None else out
                rows_at = (torch.arange(at.start, at.stop, device=cells.device)[:, None] * hp + cells_at).view(-1)
                out.index_copy_(0, rows_at, part.to(out.dtype))
        assert out is not None  # the path runs above SMALL_BATCH_CELLS: at least one block
        return out.view(b, hp, self.out_channels)

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

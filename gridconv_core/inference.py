"""The eval-mode GLN folded into one flat sequence of layers (the latency that ``predict`` and widgets feel).

In eval mode everything between the nonlinearities of eq. 7-9 is affine, so inference folds what training
keeps apart:

- each BatchNorm into the D-GridConv before it: ``W' = W s`` and ``b' = (b - mu) s + beta`` per output channel,
  with ``s = gamma / sqrt(var + eps)`` (:func:`fold_batch_norm`);
- eq. 7's attention head into two affine maps: its BN into the first FC and the temperature ``T`` into the
  second, ``alpha = sigmoid(W2' relu(W1' GAP(D) + b1') + b2')``;
- each layer's bias and ReLU into its GEMMs (oneDNN post-ops on CPU); Dropout2d is the identity.

Features stay cell-major ``(B, HP, C)`` from eq. 1 to eq. 12, so no layer permutes, and the SGT's matrices are
folded too (eq. 11's normalisation runs once). On a 2-core Xeon a single
pose takes 2.0 ms instead of 2.8 ms through the modules, and bf16 autocast runs 2.1x faster at batch 1000, as
its activations now stay bf16 from layer to layer (``benchmarks/README.md``). The GLN runs its
:class:`FoldedNetwork` in eval mode without autograd, eagerly, with no forward hooks on the modules it bypasses
and none of their ``forward`` replaced (:class:`FoldedCache`); anything else runs the modules.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .attention import KernelAttention
from .gridconv import GridConv, PackedKernel, eager
from .sgt import SGT, inverse_matrix, phi_cells

__all__ = ["ENABLED", "LayerParts", "GLNParts", "fold_batch_norm", "FoldedLayer", "FoldedNetwork", "FoldedCache"]

ENABLED = True
"""Whether eval calls run the folded network (module doc); benchmarks and tests switch it off to compare."""


class LayerParts(NamedTuple):
    """One GLN layer as the model holds it: the D-GridConv, its eq. 7 attention (``None``: static GridConv), the
    BatchNorm after it (``None``: none) and whether a ReLU follows."""

    conv: GridConv
    attention: KernelAttention | None
    batch_norm: nn.BatchNorm2d | None
    relu: bool

    def modules(self) -> list[nn.Module]:
        """The modules the folded layer stands in for: their hooks would not fire, and their state is what it folds."""
        att = [] if self.attention is None else [self.attention, *self.attention.children()]
        return [self.conv, *att, *([] if self.batch_norm is None else [self.batch_norm])]


class GLNParts(NamedTuple):
    """The GLN topology (paper 3.4): the SGT, a stem layer, residual blocks of two layers (``x + y``), a head; and
    the container modules (blocks, dropout) whose forward the folded network also bypasses."""

    sgt: SGT
    stem: LayerParts
    blocks: tuple[tuple[LayerParts, LayerParts], ...]
    head: LayerParts
    containers: tuple[nn.Module, ...]

    def layers(self) -> list[LayerParts]:
        return [self.stem, *(layer for block in self.blocks for layer in block), self.head]


def fold_batch_norm(bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """Eval-mode BatchNorm as ``x * scale + shift`` per channel."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    return scale, shift if bn.bias is None else shift + bn.bias


def _fold_attention(att: KernelAttention) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Eq. 7's head ``sigmoid(FC2(relu(BN(FC1(GAP)))) / T)`` as the two affine maps ``(W1', b1', W2', b2')`` of the
    module doc. ``W1'`` acts on the pooled cells ``(B, C)``: pooling first and then a ``C``-wide FC runs 1.1-1.9x
    faster than one FC folded over the flattened cells (``HP * C`` wide) from 1 to 1000 poses (2-core EPYC)."""
    scale, shift = fold_batch_norm(att.bn)
    w1 = att.fc.weight.flatten(1) * scale[:, None]
    b1 = shift if att.fc.bias is None else att.fc.bias * scale + shift
    t = att.temperature
    return w1, b1, att.position_fc.weight.flatten(1) / t, att.position_fc.bias / t


class FoldedLayer:
    """One layer of the folded network: its attention head, and its kernels with the following BN folded in.

    The kernels are in ``dtype`` (autocast's, or ``None``: as the parameters) and packed for oneDNN on CPU, built
    for each path of :meth:`GridConv.path` on first use. The attention head stays on ``F.linear``: at its sizes (``N`` = 16
    and 225) oneDNN's call costs 4x MKL's.
    """

    def __init__(self, parts: LayerParts, dtype: torch.dtype | None, device_type: str) -> None:
        conv = self.conv = parts.conv
        self.activation, self.dtype, self.device_type = "relu" if parts.relu else "none", dtype, device_type
        self.scale, bias = (None, None) if parts.batch_norm is None else fold_batch_norm(parts.batch_norm)
        if conv.has_bias:
            summed = conv.summed_bias()
            bias = summed if self.scale is None else summed * self.scale + bias
        self.bias = self._cast(bias)
        self.head = None if parts.attention is None else _fold_attention(parts.attention)
        self._kernels: dict[str, Tensor | PackedKernel | list[Tensor | PackedKernel]] = {}

    def _cast(self, bias: Tensor | None) -> Tensor | None:
        """A bias in the GEMMs' dtype, so that it is one post-op."""
        return bias if bias is None or self.dtype is None else bias.to(self.dtype)

    def __call__(self, cells: Tensor) -> Tensor:
        """``(B, HP, C_in) -> (B, HP, C_out)``: eq. 7, eq. 8, bias, folded BN and ReLU."""
        alpha = None
        if self.head is not None:
            w1, b1, w2, b2 = self.head
            alpha = torch.sigmoid(F.linear(torch.relu(F.linear(cells.mean(1), w1, b1)), w2, b2))
        kind = self.conv.path(cells.shape[0])
        kernels = self._kernels.get(kind)
        if kernels is None:
            kernels = self._kernels[kind] = self.conv.eval_kernels(kind, self.scale, self.dtype, self.device_type)
        return self.conv.convolve_cells(cells, alpha, kernels, self.bias, self.activation)


class FoldedNetwork:
    """:class:`GLNParts` with every layer folded (module doc), and the SGT's two matrices (eq. 1 and eq. 11), which
    are constants in eval mode (AutoGrids' argmax of ``S^prob``, eq. 5)."""

    def __init__(self, parts: GLNParts, dtype: torch.dtype | None, device_type: str) -> None:
        s, s_inv = parts.sgt.assignment()
        self.s, self.s_inverse = s, inverse_matrix(s_inv)
        self.stem = FoldedLayer(parts.stem, dtype, device_type)
        self.blocks = [(FoldedLayer(a, dtype, device_type), FoldedLayer(b, dtype, device_type)) for a, b in parts.blocks]
        self.head = FoldedLayer(parts.head, dtype, device_type)

    def __call__(self, joints: Tensor) -> tuple[Tensor, Tensor]:
        """Eq. 9 on 2D joints ``(B, J, 2)``: the network's output cells ``(B, HP, 3)`` and the 3D joints ``(B, J, 3)``."""
        y = self.stem(phi_cells(self.s, joints))
        for first, second in self.blocks:
            y = second(first(y)).add_(y)
        out = self.head(y)
        return out, torch.matmul(self.s_inverse.to(out.dtype), out)  # eq. 12


def _global_hooks() -> bool:
    """Whether a global forward hook is registered (it would see every bypassed module run)."""
    hooks = nn.modules.module
    return bool(hooks._global_forward_hooks or hooks._global_forward_pre_hooks)


class _Entry(NamedTuple):
    """A folded network with what it was folded from: the modules it stands in for, the tensors it read and
    their version counters, and the attention temperatures."""

    network: FoldedNetwork
    modules: list[nn.Module]
    tensors: list[Tensor]
    versions: list[int]
    attentions: list[KernelAttention]
    temperatures: list[float]

    @classmethod
    def fold(cls, parts: GLNParts, dtype: torch.dtype | None, device_type: str) -> _Entry:
        layers = parts.layers()
        modules = [parts.sgt, *parts.containers, *(m for layer in layers for m in layer.modules())]
        tensors = [t for m in modules for t in (m._parameters.values() if isinstance(m, GridConv) else
                   (*m._parameters.values(), *m._buffers.values())) if t is not None]  # not GridConv's index tables
        attentions = [layer.attention for layer in layers if layer.attention is not None]
        return cls(FoldedNetwork(parts, dtype, device_type), modules, tensors, [t._version for t in tensors],
                   attentions, [a.temperature for a in attentions])

    def current(self) -> bool:
        """No tensor was updated in place and no temperature changed since the fold."""
        return [t._version for t in self.tensors] == self.versions and \
            [a.temperature for a in self.attentions] == self.temperatures

    def bypassable(self) -> bool:
        """No module it stands in for has a forward hook or a ``forward`` replaced on the instance."""
        return not any(m._forward_hooks or m._forward_pre_hooks or "forward" in m.__dict__ for m in self.modules)


class FoldedCache:
    """A model's :class:`FoldedNetwork` per dtype and device, kept while what it was folded from is unchanged.

    A call checks only what the fold read: that no tensor's version counter moved (every in-place update bumps
    it: an optimiser step, ``load_state_dict``, BN statistics), that no temperature changed, and that none of the
    modules it stands in for gained a forward hook or a replaced ``forward`` (then the modules run). That takes
    about 70 us at batch 1, against 150 us for reading the model's structure again (its objects are out of
    cache after the GEMMs). So replacing a submodule or a parameter object, or editing ``param.data``, is not
    seen: switch modes after such edits (``model.train().eval()``), the rule of the kernel cache; the model drops
    its folded network on a change of mode and on ``.to()`` and the like.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[torch.dtype | None, str], _Entry] = {}

    def get(self, training: bool, parts: Callable[[], GLNParts], device_type: str) -> FoldedNetwork | None:
        """The folded network for a call now (folding ``parts()`` when needed), or ``None`` when the modules must
        run (training, autograd, graph capture or compile, forward hooks)."""
        if training or not ENABLED or torch.is_grad_enabled() or not eager() or _global_hooks():
            return None
        dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None
        entry = self._entries.get((dtype, device_type))
        if entry is None or not entry.current():
            entry = self._entries[(dtype, device_type)] = _Entry.fold(parts(), dtype, device_type)
        return entry.network if entry.bypassable() else None

    def clear(self) -> None:
        self._entries.clear()

    def __reduce__(self) -> tuple[type[FoldedCache], tuple[()]]:
        """Copies and pickles of the model start empty: packed oneDNN kernels have no storage to copy."""
        return FoldedCache, ()

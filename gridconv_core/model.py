"""The Grid Lifting Network (paper 3.4, eq. 9): ``G_3D = phi^-1(GLN(phi(G_2D)))``.

Topology (official code): input D-GridConv ``2 -> C`` + BN + ReLU + Dropout2d; ``num_blocks``
residual blocks of two (D-GridConv, BN, ReLU, Dropout2d) with ``x + y``; output D-GridConv
``C -> 3`` without bias. Each D-GridConv layer has its own attention computed from its input
(eq. 7). Module names follow the official state dicts (``w1``, ``batch_norm1``, ``atten_conv1``,
``linear_stages.{i}.{w1,w2,batch_norm1,batch_norm2,atten_conv1,atten_conv2}``, ``w2``,
``atten_conv2``); the SGT (``sgt``) is a fixed :class:`GridTransform` or the learnable :class:`AutoGrids`,
used through one interface (:class:`~gridconv_core.sgt.SGT`). In eval mode without autograd the network runs
folded (:mod:`gridconv_core.inference`); this topology, as :meth:`GridLiftingNetwork._parts`, is what it folds.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .attention import build_attention
from .autogrids import AutoGrids
from .baselines import build_baseline
from .errors import check_pose_input
from .gridconv import DGridConv
from .inference import FoldedCache, GLNParts, LayerParts
from .layout_families import default_shape, get_layout
from .lifting import LiftingModel
from .model_config import GLNConfig
from .sgt import SGT, GridTransform, phi, phi_inv
from .skeleton import Skeleton, get_skeleton

__all__ = ["LiftingModel", "GridLiftingNetwork", "build_sgt", "build_model"]


def _layer(
    config: GLNConfig, c_in: int, c_out: int, kernel: int, shape: tuple[int, int], bias: bool
) -> tuple[DGridConv, nn.Module | None]:
    """A D-GridConv layer (eq. 8) and its attention ``pi`` (eq. 7), or ``None`` for static GridConv."""
    conv = DGridConv(c_in, c_out, kernel, shape, config.paddings, bias)
    atten = build_attention(
        config.effective_attention, c_in, kernel, shape, config.attention_temperature, config.attention_hidden_min
    )
    return conv, atten


def _dynamic(conv: DGridConv, atten: nn.Module | None, x: Tensor) -> Tensor:
    """Eq. 7-8: ``conv(x, pi(x))`` (static GridConv without attention)."""
    return conv(x, None if atten is None else atten(x))


class _ResidualBlock(nn.Module):
    """Two (D-GridConv, BN, ReLU, Dropout2d) stages and the skip connection ``x + y``."""

    def __init__(self, config: GLNConfig, shape: tuple[int, int]) -> None:
        super().__init__()
        c, (_, kb, kc, _) = config.channels, config.kernel_pattern
        self.w1, self.atten_conv1 = _layer(config, c, c, kb, shape, True)
        self.batch_norm1 = nn.BatchNorm2d(c)
        self.w2, self.atten_conv2 = _layer(config, c, c, kc, shape, True)
        self.batch_norm2 = nn.BatchNorm2d(c)
        self.dropout = nn.Dropout2d(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        y = self.dropout(torch.relu(self.batch_norm1(_dynamic(self.w1, self.atten_conv1, x))))
        y = self.dropout(torch.relu(self.batch_norm2(_dynamic(self.w2, self.atten_conv2, y))))
        return x + y


def build_sgt(config: GLNConfig, skeleton: Skeleton) -> SGT:
    """The SGT of ``config.sgt``: a fixed layout's :class:`GridTransform`, or :class:`AutoGrids` from its start."""
    if config.sgt != "autogrids":
        return GridTransform(get_layout(config.sgt, skeleton, config.grid_shape))
    start = config.autogrids_start()
    if start == "random":
        shape = config.grid_shape or default_shape(skeleton)
        return AutoGrids.random(skeleton, shape, gumbel_tau=config.gumbel_tau)
    init = get_layout(start, skeleton, config.grid_shape)
    return AutoGrids.from_layout(init, config.autogrids_init_scale, gumbel_tau=config.gumbel_tau)


class GridLiftingNetwork(LiftingModel):
    """GLN of eq. 9 mapping normalised 2D joints ``(B, J, 2)`` to root-relative 3D ``(B, J, 3)`` (metres)."""

    sgt: SGT

    def __init__(self, config: GLNConfig, skeleton: Skeleton) -> None:
        super().__init__(config, skeleton, build_sgt(config, skeleton))
        shape = self.grid_shape = self.sgt.shape
        c, (ka, _, _, kd) = config.channels, config.kernel_pattern
        self.w1, self.atten_conv1 = _layer(config, 2, c, ka, shape, True)
        self.batch_norm1 = nn.BatchNorm2d(c)
        self.dropout = nn.Dropout2d(config.dropout)
        self.linear_stages = nn.ModuleList(_ResidualBlock(config, shape) for _ in range(config.num_blocks))
        self.w2, self.atten_conv2 = _layer(config, c, 3, kd, shape, False)
        self._folded = FoldedCache()

    def forward(self, x: Tensor) -> Tensor:
        """Eq. 9: ``(B, J, 2) -> (B, J, 3)``."""
        return self._lift(x)[1]

    def forward_grid(self, x: Tensor) -> Tensor:
        """The network's grid output ``(B, 3, H, P)``, before the inverse SGT."""
        return self._lift(x)[0]

    def convs(self) -> list[DGridConv]:
        """The D-GridConv layers, input to output."""
        return [self.w1, *(w for block in self.linear_stages for w in (block.w1, block.w2)), self.w2]

    def train(self, mode: bool = True) -> GridLiftingNetwork:
        """As :meth:`nn.Module.train`; a change of mode also drops the folded network, so that
        ``model.train().eval()`` after replacing a submodule or a parameter object folds again
        (:class:`~gridconv_core.inference.FoldedCache`). A call in the same mode keeps it: ``predict`` per video
        frame sets eval mode and restores the caller's mode on every call."""
        if mode != self.training:
            self._folded.clear()
        return super().train(mode)

    def _apply(self, fn, recurse: bool = True):  # type: ignore[no-untyped-def]
        """``.to()``, ``.half()`` and the like swap the tensors' storage: the folded network is built again."""
        self._folded.clear()
        return super()._apply(fn, recurse)

    def _lift(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_pose_input(x, self.skeleton.num_joints, self.skeleton.name, self.training)
        folded = self._folded.get(self.training, self._parts, x.device.type) if self._foldable() else None
        if folded is not None:  # eval without autograd: the folded network (gridconv_core.inference)
            cells, joints = folded(x)
            h, p = self.grid_shape
            return cells.view(cells.shape[0], h, p, cells.shape[2]).permute(0, 3, 1, 2), joints
        s, s_inv = self.sgt.assignment()
        grid = self._network(phi(s, x, self.grid_shape))
        return grid, phi_inv(s_inv, grid)

    def _foldable(self) -> bool:
        """Eq. 7's attention (or none) folds; the Fig. 8 variants run as modules."""
        return self.config.effective_attention in ("dynamic", "none")

    def _parts(self) -> GLNParts:
        """This network's topology as :class:`~gridconv_core.inference.GLNParts`, for the folded network."""
        blocks = tuple((LayerParts(b.w1, b.atten_conv1, b.batch_norm1, True), LayerParts(b.w2, b.atten_conv2, b.batch_norm2, True))
                       for b in self.linear_stages)
        containers = (self.dropout, *self.linear_stages, *(b.dropout for b in self.linear_stages))
        stem = LayerParts(self.w1, self.atten_conv1, self.batch_norm1, True)
        return GLNParts(self.sgt, stem, blocks, LayerParts(self.w2, self.atten_conv2, None, False), containers)

    def _network(self, d: Tensor) -> Tensor:
        y = self.dropout(torch.relu(self.batch_norm1(_dynamic(self.w1, self.atten_conv1, d))))
        for block in self.linear_stages:
            y = block(y)
        return _dynamic(self.w2, self.atten_conv2, y)


def build_model(config: GLNConfig | None = None, **overrides: object) -> LiftingModel:
    """Build the model of ``config`` (default: the paper's D-GridConv GLN) with optional field overrides.

    The config's skeleton name is resolved here, once; the model and its layout hold the :class:`Skeleton`."""
    config = config or GLNConfig()
    if overrides:
        config = config.replace(**overrides)
    skeleton = get_skeleton(config.skeleton)
    if config.model in ("dgridconv", "gridconv"):
        return GridLiftingNetwork(config, skeleton)
    return build_baseline(config, skeleton)

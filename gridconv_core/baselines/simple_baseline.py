"""SimpleBaseline (Martinez et al. 2017): the fully connected lifter of the paper's comparisons.

:class:`ResidualLifter` is Martinez's architecture with a pluggable layer: an input layer, residual
blocks of two (layer, BatchNorm, ReLU, Dropout) units, an output layer. With ``nn.Linear`` on the
flattened pose it is the SimpleBaseline (FCN, paper A.5 and Fig. A(a)); the graph baselines plug
in a graph layer (SemGCN and LCN use the same residual design).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..errors import check_pose_input
from ..lifting import LiftingModel
from ..model_config import GLNConfig
from ..skeleton import Skeleton

__all__ = ["ResidualLifter", "SimpleBaseline", "WIDTH_PER_CHANNEL"]

WIDTH_PER_CHANNEL = 4
"""SimpleBaseline width = 4 x ``config.channels``: Martinez's 1024 for the GLN's default 256."""

LayerFactory = Callable[[int, int], nn.Module]


class _Unit(nn.Module):
    """One (layer, BatchNorm over channels, ReLU, Dropout) unit on features ``(..., C)``."""

    def __init__(self, layer: nn.Module, channels: int, dropout: float) -> None:
        super().__init__()
        self.layer = layer
        self.bn = nn.BatchNorm1d(channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        y = self.layer(x)
        y = self.bn(y.reshape(-1, y.shape[-1])).reshape(y.shape)  # per-channel stats over all samples and joints
        return self.dropout(torch.relu(y))


class ResidualLifter(nn.Module):
    """Martinez et al. 2017 residual network around any layer ``factory(c_in, c_out)``."""

    def __init__(
        self, factory: LayerFactory, in_features: int, out_features: int, channels: int, num_blocks: int, dropout: float
    ) -> None:
        super().__init__()
        self.input = _Unit(factory(in_features, channels), channels, dropout)
        self.blocks = nn.ModuleList(
            nn.Sequential(*(_Unit(factory(channels, channels), channels, dropout) for _ in range(2)))
            for _ in range(num_blocks)
        )
        self.output = factory(channels, out_features)

    def forward(self, x: Tensor) -> Tensor:
        y = self.input(x)
        for block in self.blocks:
            y = y + block(y)
        return self.output(y)


class SimpleBaseline(LiftingModel):
    """Fully connected lifter: Linear 2J -> W, two residual blocks, Linear W -> 3J (Martinez 2017).

    ``W = WIDTH_PER_CHANNEL x config.channels`` (1024 by default)."""

    def __init__(self, config: GLNConfig, skeleton: Skeleton) -> None:
        super().__init__(config, skeleton)
        j = skeleton.num_joints
        self.net = ResidualLifter(nn.Linear, 2 * j, 3 * j, WIDTH_PER_CHANNEL * config.channels, config.num_blocks,
                                  config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, J, 2)`` normalised 2D to ``(B, J, 3)`` root-relative 3D."""
        check_pose_input(x, self.skeleton.num_joints, self.skeleton.name, self.training)
        return self.net(x.reshape(x.shape[0], -1)).reshape(x.shape[0], self.skeleton.num_joints, 3)

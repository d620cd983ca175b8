"""Comparison baselines in the lifting API (paper Table 4, A.5): ``(B, J, 2) -> (B, J, 3)``.

* ``simple_baseline``: Martinez et al. 2017 (FCN), width ``4 x config.channels`` (1024 by default).
* ``semgcn``: SemGCN-style semantic graph convolutions (Zhao et al. 2019).
* ``lcn``: LCN-style locally connected layers (Ci et al. 2019).

The graph baselines run on the skeleton graph (``config.graph == "skeleton"``) or on the
equivalent graph of the config's grid layout (``"grid"``, 4-neighbourhood: Table 4's G_craft;
for ``sgt="autogrids"`` the layout it starts from, ``autogrids_init``).
"""
from __future__ import annotations

from functools import partial
from typing import Any

from torch import Tensor, nn

from ..graph import adjacency, grid_graph, skeleton_graph
from ..layouts import get_layout
from ..skeleton import Skeleton, get_skeleton
from .lcn import LocallyConnected
from .sem_graph_conv import SemGraphConv
from .simple_baseline import WIDTH_PER_CHANNEL, ResidualLifter, SimpleBaseline, check_pose_input

__all__ = [
    "BASELINES",
    "GraphBaseline",
    "LocallyConnected",
    "SemGraphConv",
    "SimpleBaseline",
    "baseline_adjacency",
    "build_baseline",
]

_GRAPH_LAYERS = {"semgcn": SemGraphConv, "lcn": LocallyConnected}
BASELINES = ("simple_baseline", *_GRAPH_LAYERS)


class GraphBaseline(nn.Module):
    """Residual graph network (SemGCN / LCN design) of one graph layer type on a fixed adjacency."""

    def __init__(self, layer: type[nn.Module], adj: Tensor, channels: int, num_blocks: int, dropout: float) -> None:
        super().__init__()
        self.num_joints = adj.shape[0]
        self.net = ResidualLifter(partial(layer, adj=adj), 2, 3, channels, num_blocks, dropout)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, J, 2)`` normalised 2D to ``(B, J, 3)`` root-relative 3D."""
        check_pose_input(x, self.num_joints)
        return self.net(x)


def baseline_adjacency(config: Any, skeleton: str | Skeleton) -> Tensor:
    """``(J, J)`` adjacency of ``config.graph``: the skeleton, or the grid layout's equivalent graph."""
    sk = get_skeleton(skeleton)
    if config.graph == "skeleton":
        graph = skeleton_graph(sk)
    elif config.graph == "grid":
        spec = config.autogrids_init if config.sgt == "autogrids" else config.sgt
        shape = tuple(config.grid_shape) if config.grid_shape is not None else None
        graph = grid_graph(get_layout(spec, sk, shape))
    else:
        raise ValueError(f"unknown baseline graph {config.graph!r}; use 'skeleton' or 'grid'")
    return adjacency(graph, sk.num_joints)


def build_baseline(config: Any, skeleton: str | Skeleton) -> nn.Module:
    """The baseline ``config.model`` for ``skeleton``, sized by ``channels``, ``num_blocks``, ``dropout``.

    The module carries ``.skeleton`` and ``.config`` like every model of ``build_model``.
    """
    sk = get_skeleton(skeleton)
    net: nn.Module
    if config.model == "simple_baseline":
        net = SimpleBaseline(sk.num_joints, WIDTH_PER_CHANNEL * config.channels, config.num_blocks, config.dropout)
    elif config.model in _GRAPH_LAYERS:
        adj = baseline_adjacency(config, sk)
        net = GraphBaseline(_GRAPH_LAYERS[config.model], adj, config.channels, config.num_blocks, config.dropout)
    else:
        raise ValueError(f"unknown baseline {config.model!r}; choose one of {', '.join(BASELINES)}")
    net.skeleton, net.config = sk, config
    return net

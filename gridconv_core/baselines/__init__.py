"""Comparison baselines in the lifting API (paper Table 4, A.5): ``(B, J, 2) -> (B, J, 3)``.

* ``simple_baseline``: Martinez et al. 2017 (FCN), width ``4 x config.channels`` (1024 by default).
* ``semgcn``: SemGCN-style semantic graph convolutions (Zhao et al. 2019).
* ``lcn``: LCN-style locally connected layers (Ci et al. 2019).

The graph baselines take their graph from ``config.graph`` (Table 4):

* ``"skeleton"``: the skeleton graph, nodes = joints;
* ``"grid"``: G_craft, the equivalent graph of the config's grid layout (4-neighbourhood), nodes = joints;
* ``"grid_cells"``: D_craft, the grid pose itself: nodes = the ``H*P`` cells (replicas are separate
  nodes), each aggregating its 8 grid neighbours as in paper A.5, input by ``phi`` (eq. 1), output by
  ``phi^-1`` (eq. 11-12); ``"grid_cells4"`` uses the 4-neighbourhood ``N(p)`` of eq. 2 instead.

The layout is ``config.sgt``, or for ``sgt="autogrids"`` the fixed layout it starts from (``autogrids_init``).
"""
from __future__ import annotations

from functools import partial

import networkx as nx
from torch import Tensor, nn

from ..errors import ConfigError, check_pose_input
from ..graph import adjacency, grid_graph, skeleton_graph
from ..sgt import GridLayout, GridTransform, neighbour_pairs
from ..layout_families import get_layout
from ..lifting import LiftingModel
from ..model_config import GLNConfig
from ..skeleton import Skeleton, get_skeleton
from .lcn import LocallyConnected
from .sem_graph_conv import SemGraphConv
from .simple_baseline import ResidualLifter, SimpleBaseline

__all__ = [
    "BASELINES",
    "CELL_NEIGHBOURS",
    "GraphBaseline",
    "GridCellBaseline",
    "LocallyConnected",
    "SemGraphConv",
    "SimpleBaseline",
    "baseline_adjacency",
    "baseline_layout",
    "build_baseline",
    "cell_adjacency",
]

_GRAPH_LAYERS = {"semgcn": SemGraphConv, "lcn": LocallyConnected}
BASELINES = ("simple_baseline", *_GRAPH_LAYERS)


class GraphBaseline(LiftingModel):
    """Residual graph network (SemGCN / LCN design) of one graph layer type on a fixed adjacency."""

    def __init__(self, config: GLNConfig, skeleton: Skeleton, layer: type[nn.Module], adj: Tensor,
                 sgt: GridTransform | None = None) -> None:
        super().__init__(config, skeleton, sgt)
        self.net = ResidualLifter(partial(layer, adj=adj), 2, 3, config.channels, config.num_blocks, config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, J, 2)`` normalised 2D to ``(B, J, 3)`` root-relative 3D."""
        check_pose_input(x, self.skeleton.num_joints, self.skeleton.name, self.training)
        return self.net(x)


class GridCellBaseline(GraphBaseline):
    """Table 4's D_craft: the graph network on the grid pose, one node per cell of ``sgt``'s layout.

    ``(B, J, 2)`` goes through ``phi`` (eq. 1) to the ``H*P`` cells, the layers run on the cell
    adjacency (:func:`cell_adjacency`) and ``phi^-1`` (eq. 11-12) averages the replicas back to joints.
    """

    sgt: GridTransform

    def __init__(self, config: GLNConfig, skeleton: Skeleton, layer: type[nn.Module], sgt: GridTransform,
                 neighbours: int = 8) -> None:
        super().__init__(config, skeleton, layer, cell_adjacency(sgt.shape, neighbours), sgt)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, J, 2)`` normalised 2D to ``(B, J, 3)`` root-relative 3D via the ``(B, H*P, C)`` cells."""
        check_pose_input(x, self.skeleton.num_joints, self.skeleton.name, self.training)
        cells = self.sgt(x).flatten(2).transpose(1, 2)  # (B, HP, 2), p = row * P + col
        grid = self.net(cells).transpose(1, 2).unflatten(2, self.sgt.shape)  # (B, 3, H, P)
        return self.sgt.inverse(grid)


CELL_NEIGHBOURS = {"grid_cells": 8, "grid_cells4": 4}
"""Neighbourhood of each D_craft graph: 8 grid neighbours (paper A.5) or the 4 of eq. 2."""


def cell_adjacency(shape: tuple[int, int], neighbours: int = 8) -> Tensor:
    """``(HP, HP)`` 0/1 adjacency of an ``H x P`` grid's cells: 8 neighbours (A.5) or 4 (``N(p)`` of eq. 2)."""
    if neighbours not in (4, 8):
        raise ConfigError(f"grid cells have 4 or 8 neighbours, got {neighbours}")
    graph = nx.Graph(neighbour_pairs(shape, diagonal=neighbours == 8))
    return adjacency(graph, shape[0] * shape[1])


def baseline_layout(config: GLNConfig, skeleton: str | Skeleton) -> GridLayout:
    """The grid layout of the ``"grid"`` / ``"grid_cells"`` baselines: ``config.sgt`` or ``autogrids_init``."""
    spec = config.autogrids_start() if config.sgt == "autogrids" else config.sgt
    shape = tuple(config.grid_shape) if config.grid_shape is not None else None
    return get_layout(spec, skeleton, shape)


def baseline_adjacency(config: GLNConfig, skeleton: str | Skeleton) -> Tensor:
    """Adjacency of ``config.graph``: ``(J, J)`` for the skeleton or G_craft, ``(HP, HP)`` for D_craft."""
    sk = get_skeleton(skeleton)
    if config.graph == "skeleton":
        return adjacency(skeleton_graph(sk), sk.num_joints)
    if config.graph == "grid":
        return adjacency(grid_graph(baseline_layout(config, sk)), sk.num_joints)
    return cell_adjacency(baseline_layout(config, sk).shape, CELL_NEIGHBOURS[config.graph])


def build_baseline(config: GLNConfig, skeleton: str | Skeleton) -> LiftingModel:
    """The baseline ``config.model`` for ``skeleton``, sized by ``channels``, ``num_blocks``, ``dropout``."""
    sk = get_skeleton(skeleton)
    if config.model == "simple_baseline":
        return SimpleBaseline(config, sk)
    if config.model not in _GRAPH_LAYERS:
        raise ConfigError(f"unknown baseline {config.model!r}; choose one of {', '.join(BASELINES)}")
    layer = _GRAPH_LAYERS[config.model]
    if config.graph in CELL_NEIGHBOURS:
        return GridCellBaseline(config, sk, layer, GridTransform(baseline_layout(config, sk)),
                                CELL_NEIGHBOURS[config.graph])
    return GraphBaseline(config, sk, layer, baseline_adjacency(config, sk))

"""Grid to graph: the equivalent graph of a grid layout (paper Fig. 6, 3.5, A.5).

A layout's grid adjacency (the 4- or 8-neighbourhood of eq. 2, or a torus) induces a graph on
the joints: replicas merge into one node, two joints are linked when cells holding them are
neighbours, and a mixture cell links all its joints. Compared with the skeleton graph ``G``,
each edge is either a skeleton edge *kept* or a *new* one; skeleton edges absent are *lost*.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import networkx as nx
import torch
from torch import Tensor

from .errors import InputError
from .sgt import GridLayout, neighbour_pairs
from .skeleton import Skeleton, get_skeleton

__all__ = ["grid_graph", "skeleton_graph", "adjacency", "compare_graphs", "GraphComparison", "LONG_DISTANCE_HOPS"]

Edge = tuple[int, int]

LONG_DISTANCE_HOPS = 3
"""A new edge is long-distance when its joints are at least this many skeleton hops apart."""


def skeleton_graph(skeleton: str | Skeleton) -> nx.Graph:
    """The skeleton graph ``G`` (section 3.1): one node per joint (``name``), edges ``E``."""
    sk = get_skeleton(skeleton)
    graph = nx.Graph(skeleton=sk.name)
    graph.add_nodes_from((j, {"name": n}) for j, n in enumerate(sk.joint_names))
    graph.add_edges_from(sk.edges, kind="skeleton")
    return graph


def grid_graph(layout: GridLayout, diagonal: bool = False, wrap: bool = False) -> nx.Graph:
    """Equivalent graph of ``layout`` (Fig. 6) on the joints it holds.

    Edge attribute ``kind`` is ``"kept"`` (a skeleton edge) or ``"new"``; the graph attribute
    ``lost`` lists the skeleton edges that no pair of neighbouring cells (or mixture cell) realises.
    """
    sk = layout.skeleton
    skeleton_edges = {frozenset(e) for e in sk.edges}
    flat = layout.flat
    graph = nx.Graph(skeleton=sk.name, layout=layout.name, diagonal=diagonal, wrap=wrap)
    graph.add_nodes_from(
        (j, {"name": sk.joint_names[j]}) for j in sorted({j for cell in flat for j in cell})
    )
    pairs = [(i, j) for a, b in neighbour_pairs(layout.shape, diagonal, wrap) for i in flat[a] for j in flat[b]]
    pairs += [pair for cell in flat for pair in itertools.combinations(cell, 2)]
    for i, j in pairs:
        if i != j:
            graph.add_edge(i, j, kind="kept" if frozenset((i, j)) in skeleton_edges else "new")
    graph.graph["lost"] = tuple(e for e in layout.topology(diagonal, wrap).broken if not graph.has_edge(*e))
    return graph


def adjacency(graph: nx.Graph, num_joints: int, self_loops: bool = False) -> Tensor:
    """Symmetric 0/1 adjacency matrix ``(J, J)`` of a joint graph (optionally with the identity)."""
    bad = [n for n in graph.nodes if not (isinstance(n, int) and 0 <= n < num_joints)]
    if bad:
        raise InputError(f"graph nodes {bad} are not joint indices 0..{num_joints - 1}")
    adj = torch.zeros(num_joints, num_joints)
    if graph.number_of_edges():
        index = torch.tensor(list(graph.edges), dtype=torch.long)
        adj[index[:, 0], index[:, 1]] = 1.0
        adj[index[:, 1], index[:, 0]] = 1.0
    if self_loops:
        adj.fill_diagonal_(1.0)
    return adj


@dataclass(frozen=True)
class GraphComparison:
    """Summary of a layout's equivalent graph against the skeleton graph (Fig. 6)."""

    kept: tuple[Edge, ...]
    new: tuple[Edge, ...]
    lost: tuple[Edge, ...]
    long_distance: tuple[Edge, ...]
    """New edges whose joints are >= ``LONG_DISTANCE_HOPS`` apart on the skeleton (e.g. head-knee)."""
    diameter: int | None
    """Diameter of the equivalent graph; ``None`` when it is disconnected."""
    skeleton_diameter: int


def compare_graphs(layout: GridLayout, diagonal: bool = False, wrap: bool = False) -> GraphComparison:
    """Edges kept, new and lost, long-distance edges and diameters of ``layout``'s graph."""
    graph = grid_graph(layout, diagonal, wrap)
    skel = skeleton_graph(layout.skeleton)
    hops = dict(nx.all_pairs_shortest_path_length(skel))
    edges = sorted(tuple(sorted(e)) for e in graph.edges)
    new = tuple(e for e in edges if graph.edges[e]["kind"] == "new")
    return GraphComparison(
        kept=tuple(e for e in edges if graph.edges[e]["kind"] == "kept"),
        new=new,
        lost=graph.graph["lost"],
        long_distance=tuple(e for e in new if hops[e[0]][e[1]] >= LONG_DISTANCE_HOPS),
        diameter=nx.diameter(graph) if nx.is_connected(graph) else None,
        skeleton_diameter=nx.diameter(skel),
    )

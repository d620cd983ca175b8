"""Grid to graph (paper Fig. 6): equivalent graph of a layout against the skeleton graph."""
from __future__ import annotations

import networkx as nx
import pytest
import torch

from gridconv_core import layout_families
from gridconv_core.graph import adjacency, compare_graphs, grid_graph, skeleton_graph
from gridconv_core.sgt import GridLayout
from gridconv_core.skeleton import H36M17


def test_skeleton_graph_is_the_kinematic_tree() -> None:
    graph = skeleton_graph("h36m17")
    assert nx.is_tree(graph) and graph.number_of_nodes() == 17
    assert graph.nodes[10]["name"] == "Head" and graph.has_edge(9, 10)


def test_handcrafted_graph_keeps_every_skeleton_edge() -> None:
    graph = grid_graph(layout_families.handcrafted())
    kept = {tuple(sorted(e)) for e in graph.edges if graph.edges[e]["kind"] == "kept"}
    assert kept == {tuple(sorted(e)) for e in H36M17.edges}
    assert graph.graph["lost"] == ()
    # replicas merged: Spine (5 cells) is one node; it neighbours Pelvis and Thorax below it
    assert set(graph.neighbors(7)) >= {0, 8} and graph.number_of_nodes() == 17
    # a new (non-skeleton) edge: RHip (2,0) next to RShoulder (2,1)
    assert graph.edges[1, 14]["kind"] == "new"


def test_mixture_cell_links_its_joints() -> None:
    rows = [[[8, 9], 0, 1, 2, 3], [7, 4, 5, 6, 10], [11, 12, 13, 14, 15], [16, 8, 16, 9, 16]]
    layout = GridLayout.from_rows(rows)
    graph = grid_graph(layout)
    assert (8, 9) in layout.topology().broken  # no two neighbouring cells hold Thorax and Nose ...
    assert graph.edges[8, 9]["kind"] == "kept" and (8, 9) not in graph.graph["lost"]  # ... the mixture does
    assert graph.has_edge(9, 0) and graph.has_edge(8, 7)


def test_lost_edges_and_long_distance_edges() -> None:
    shuffled = layout_families.global_shuffle(layout_families.handcrafted(), 0)
    summary = compare_graphs(shuffled)
    assert summary.lost == shuffled.topology().broken and summary.lost
    skel = skeleton_graph("h36m17")
    for a, b in summary.long_distance:
        assert nx.shortest_path_length(skel, a, b) >= 3
    assert set(summary.long_distance) <= set(summary.new)
    assert len(summary.kept) + len(summary.lost) == 16
    assert summary.skeleton_diameter == 8  # RAnkle-RKnee-RHip-Pelvis-Spine-Thorax-LShoulder-LElbow-LWrist


def test_compare_handcrafted_against_learnt_prior() -> None:
    hand = compare_graphs(layout_families.handcrafted())
    learnt = compare_graphs(layout_families.official_prior("learnt_type3"))
    assert len(hand.kept) == 16 and not hand.lost
    assert len(learnt.kept) < 16 and learnt.lost  # Fig. 6: learnt patterns keep fewer skeleton edges
    assert len(learnt.long_distance) > 0  # ... and add long-distance edges (e.g. head to knee)
    assert hand.diameter is not None and hand.diameter < hand.skeleton_diameter


def test_diagonal_and_wrap_add_edges() -> None:
    hand = layout_families.handcrafted()
    base = grid_graph(hand).number_of_edges()
    assert grid_graph(hand, diagonal=True).number_of_edges() > base
    assert grid_graph(hand, wrap=True).number_of_edges() > base


def test_adjacency_matrix() -> None:
    graph = skeleton_graph("h36m17")
    adj = adjacency(graph, 17)
    assert adj.shape == (17, 17) and torch.equal(adj, adj.t())
    assert adj.sum().item() == 2 * 16 and adj[0, 1] == 1 and adj[0, 10] == 0
    assert torch.equal(adjacency(graph, 17, self_loops=True).diagonal(), torch.ones(17))
    with pytest.raises(ValueError, match="not joint indices"):
        adjacency(graph, 10)

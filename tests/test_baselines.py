"""Comparison baselines (paper Table 4): SimpleBaseline, SemGCN-style and LCN-style networks."""
from __future__ import annotations

import pytest
import torch

from gridconv_core import layout_families
from gridconv_core.baselines import (
    GraphBaseline, GridCellBaseline, LocallyConnected, SemGraphConv, SimpleBaseline, baseline_adjacency,
    build_baseline, cell_adjacency,
)
from gridconv_core.errors import ConfigError, InputError
from gridconv_core.model import build_model
from gridconv_core.model_config import GLNConfig
from gridconv_core.graph import adjacency, grid_graph, skeleton_graph

J = 17
SKELETON_ADJ = adjacency(skeleton_graph("h36m17"), J)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def config(model: str, **kw) -> GLNConfig:
    return GLNConfig(model=model, channels=kw.pop("channels", 32), num_blocks=kw.pop("num_blocks", 1), **kw)


@pytest.mark.parametrize("model", ["simple_baseline", "semgcn", "lcn"])
@pytest.mark.parametrize("graph", ["skeleton", "grid", "grid_cells", "grid_cells4"])
def test_shapes_and_gradients(model: str, graph: str) -> None:
    torch.manual_seed(0)
    net = build_baseline(config(model, graph=graph), "h36m17")
    x = torch.randn(6, J, 2, requires_grad=True)
    y = net(x)
    assert y.shape == (6, J, 3) and torch.isfinite(y).all()
    y.pow(2).sum().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_other_skeletons() -> None:
    net = build_baseline(config("lcn"), "coco17").eval()
    assert net(torch.randn(2, 17, 2)).shape == (2, 17, 3)
    net = build_baseline(config("semgcn", graph="grid", sgt="auto"), "humaneva15").eval()
    assert net(torch.randn(2, 15, 2)).shape == (2, 15, 3)


def _non_neighbour_check(layer: torch.nn.Module, adj: torch.Tensor) -> None:
    n = adj.shape[0]  # joints or grid cells: the layers only see nodes
    x = torch.randn(3, n, 4)
    base = layer(x)
    for k in range(n):
        bumped = x.clone()
        bumped[:, k] += 10.0
        changed = (layer(bumped) - base).abs().amax(dim=(0, 2)) > 1e-5
        allowed = adj[:, k].bool() | (torch.arange(n) == k)
        assert not (changed & ~allowed).any(), f"node {k} leaks to non-neighbours {torch.nonzero(changed & ~allowed)}"
        assert changed[k] and changed[allowed].all()


@pytest.mark.parametrize("layer_type", [SemGraphConv, LocallyConnected])
@pytest.mark.parametrize("graph", ["skeleton", "grid", "grid_cells", "grid_cells4"])
def test_graph_masks_are_respected(layer_type, graph: str) -> None:
    torch.manual_seed(0)
    adj = {
        "skeleton": lambda: SKELETON_ADJ,
        "grid": lambda: adjacency(grid_graph(layout_families.handcrafted()), J),
        "grid_cells": lambda: cell_adjacency((5, 5)),
        "grid_cells4": lambda: cell_adjacency((5, 5), 4),
    }[graph]()
    _non_neighbour_check(layer_type(4, 5, adj), adj)


@pytest.mark.parametrize("shape", [(5, 5), (7, 5), (3, 6)])
def test_cell_adjacency_is_the_grid_8_or_4_neighbourhood(shape: tuple[int, int]) -> None:
    h, p = shape
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(p), indexing="ij")
    r, c = rows.reshape(-1), cols.reshape(-1)  # cell index = row * P + col
    dr, dc = (r[:, None] - r[None, :]).abs(), (c[:, None] - c[None, :]).abs()
    assert torch.equal(cell_adjacency(shape), (torch.maximum(dr, dc) == 1).float())  # A.5: 8 neighbours, no wrap
    assert torch.equal(cell_adjacency(shape, 4), (dr + dc == 1).float())
    with pytest.raises(ValueError, match="4 or 8"):
        cell_adjacency(shape, 6)


@pytest.mark.parametrize("neighbours, reached", [(8, [18, 19, 23, 24]), (4, [19, 23, 24])])
def test_grid_cells_layer_ignores_a_non_neighbouring_cell(neighbours: int, reached: list[int]) -> None:
    torch.manual_seed(0)
    adj = cell_adjacency((5, 5), neighbours)
    for layer in (SemGraphConv(4, 5, adj), LocallyConnected(4, 5, adj)):
        x = torch.randn(2, 25, 4)
        bumped = x.clone()
        bumped[:, 24] += 10.0  # bottom-right corner: neighbours 19, 23 and (8-neighbourhood) diagonal 18
        diff = (layer(bumped) - layer(x)).abs().amax(dim=(0, 2))
        assert (diff[reached] > 1e-5).all()
        assert (diff[[i for i in range(25) if i not in reached]] == 0).all()


def test_grid_cells_network_runs_on_cells_and_averages_replicas() -> None:
    torch.manual_seed(0)
    net = build_baseline(config("lcn", graph="grid_cells"), "h36m17").eval()
    assert isinstance(net, GridCellBaseline) and net.grid_layout() == layout_families.handcrafted()
    first = net.net.input.layer
    assert first.weight.shape[1:] == (2, 32) and first.bias.shape == (25, 32)  # one node per cell
    # Spine fills the whole top row: its output is the mean of those five cells (eq. 11-12).
    x = torch.randn(4, J, 2)
    cells = net.net(net.sgt(x).flatten(2).transpose(1, 2))
    spine = layout_families.handcrafted().skeleton.joint_names.index("Spine")
    torch.testing.assert_close(net(x)[:, spine], cells[:, :5].mean(dim=1))


def test_grid_graph_differs_from_skeleton_graph() -> None:
    sk = build_baseline(config("semgcn"), "h36m17")
    grid = build_baseline(config("semgcn", graph="grid"), "h36m17")
    grid_adj = adjacency(grid_graph(layout_families.handcrafted()), J)
    assert grid_adj.sum() > SKELETON_ADJ.sum()
    extra_edges = int(grid_adj.sum() - SKELETON_ADJ.sum())
    assert n_params(grid) - n_params(sk) == (2 + 2 * 1) * extra_edges  # one weight per edge in each of 4 layers


def test_parameter_counts_from_formulas() -> None:
    c, b = 64, 2
    edges = int(SKELETON_ADJ.sum()) + J  # nonzeros with self loops: 2 * 16 + 17 = 49
    assert edges == 49
    bn = 2 * c
    units = 1 + 2 * b  # input unit + two units per residual block, each followed by BatchNorm

    # SimpleBaseline (Martinez 2017): width 4 x channels
    w = 4 * c
    simple = (2 * J * w + w) + b * 2 * (w * w + w) + (w * 3 * J + 3 * J) + units * 2 * w
    assert n_params(build_baseline(config("simple_baseline", channels=c, num_blocks=b), "h36m17")) == simple

    # SemGCN: 2 C_in C_out + edges + C_out per layer
    sem = (2 * 2 * c + edges + c) + 2 * b * (2 * c * c + edges + c) + (2 * c * 3 + edges + 3) + units * bn
    assert n_params(build_baseline(config("semgcn", channels=c, num_blocks=b), "h36m17")) == sem

    # LCN: edges C_in C_out + J C_out per layer
    lcn = (edges * 2 * c + J * c) + 2 * b * (edges * c * c + J * c) + (edges * c * 3 + J * 3) + units * bn
    assert n_params(build_baseline(config("lcn", channels=c, num_blocks=b), "h36m17")) == lcn


@pytest.mark.parametrize("graph", ["grid_cells", "grid_cells4"])
@pytest.mark.parametrize("sgt, shape", [("handcrafted", (5, 5)), ("auto", None)])
def test_grid_cells_parameter_counts_from_formulas(sgt: str, shape: tuple[int, int] | None, graph: str) -> None:
    c, b = 16, 2
    cfg = lambda model: config(model, channels=c, num_blocks=b, graph=graph, sgt=sgt)  # noqa: E731
    h, p = shape or layout_families.get_layout(sgt, "h36m17").shape
    n = h * p  # nodes = grid cells
    edges = 2 * (h * (p - 1) + (h - 1) * p) + n  # 4-neighbourhood nonzeros (both directions) + self loops
    if graph == "grid_cells":
        edges += 2 * 2 * (h - 1) * (p - 1)  # A.5: both diagonals of every 2x2 block
    units = 1 + 2 * b
    sem = (2 * 2 * c + edges + c) + 2 * b * (2 * c * c + edges + c) + (2 * c * 3 + edges + 3) + units * 2 * c
    lcn = (edges * 2 * c + n * c) + 2 * b * (edges * c * c + n * c) + (edges * c * 3 + n * 3) + units * 2 * c
    assert n_params(build_baseline(cfg("semgcn"), "h36m17")) == sem
    assert n_params(build_baseline(cfg("lcn"), "h36m17")) == lcn


def test_build_model_dispatches_to_baselines() -> None:
    cfg = config("lcn", graph="grid")
    net = build_model(cfg)
    assert isinstance(net, GraphBaseline) and net.config == cfg and net.skeleton.name == "h36m17"
    assert net.eval()(torch.randn(2, J, 2)).shape == (2, J, 3)


@pytest.mark.parametrize("model", ["semgcn", "lcn"])
@pytest.mark.parametrize(
    "skeleton, spec",
    [
        ("h36m17", {"sgt": "random"}),
        ("h36m17", {"sgt": "random", "grid_shape": (4, 6)}),
        ("h36m17", {"sgt": "global_shuffle"}),
        ("h36m17", {"sgt": "learnt_type3"}),  # partial layout: the pelvis comes out as 0
        ("h36m17", {"sgt": "autogrids", "autogrids_init": "standard"}),
        ("h36m32", {"sgt": "handcrafted"}),
        ("humaneva15", {"sgt": "auto"}),
    ],
)
def test_build_model_grid_cells_for_any_layout(model: str, skeleton: str, spec: dict) -> None:
    cfg = GLNConfig(model=model, graph="grid_cells", skeleton=skeleton, channels=8, num_blocks=1, **spec)
    net = build_model(cfg)
    init = spec["autogrids_init"] if spec["sgt"] == "autogrids" else spec["sgt"]
    layout = layout_families.get_layout(init, skeleton, spec.get("grid_shape"))
    assert isinstance(net, GridCellBaseline) and net.grid_layout() == layout and net.config == cfg
    assert torch.equal(baseline_adjacency(cfg, skeleton), cell_adjacency(layout.shape, 8))
    j = net.skeleton.num_joints
    y = net.train()(torch.randn(3, j, 2, requires_grad=True))
    assert y.shape == (3, j, 3) and torch.isfinite(y).all()
    assert (y[:, list(layout.missing)] == 0).all()


def test_graph_choice_is_validated() -> None:
    with pytest.raises(ConfigError, match="graph must be one of skeleton, grid, grid_cells, grid_cells4, got 'cells'"):
        GLNConfig(model="semgcn", graph="cells")


def test_default_simple_baseline_is_martinez_size() -> None:
    net = build_baseline(GLNConfig(model="simple_baseline"), "h36m17")
    assert isinstance(net, SimpleBaseline)
    assert net.net.input.layer.out_features == 1024 and n_params(net) == 4_296_755  # ~4.29M as in SemGCN's README


def test_bad_inputs_raise() -> None:
    net = build_baseline(config("semgcn"), "h36m17")
    with pytest.raises(InputError, match=r"shape \(B, 17, 2\)"):
        net(torch.randn(2, 16, 2))
    with pytest.raises(InputError, match="NaN"):
        net(torch.full((2, 17, 2), float("nan")))
    with pytest.raises(InputError, match="floating-point"):
        net(torch.zeros(2, 17, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="unknown baseline"):
        build_baseline(GLNConfig(model="dgridconv"), "h36m17")
    assert isinstance(build_baseline(config("lcn"), "h36m17"), GraphBaseline)

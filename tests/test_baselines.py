"""Comparison baselines (paper Table 4): SimpleBaseline, SemGCN-style and LCN-style networks."""
from __future__ import annotations

import pytest
import torch

from gridconv_core import layouts
from gridconv_core.baselines import (
    GraphBaseline, LocallyConnected, SemGraphConv, SimpleBaseline, build_baseline,
)
from gridconv_core.config import GLNConfig
from gridconv_core.model import InputError, build_model
from gridconv_core.graph import adjacency, grid_graph, skeleton_graph

J = 17
SKELETON_ADJ = adjacency(skeleton_graph("h36m17"), J)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def config(model: str, **kw) -> GLNConfig:
    return GLNConfig(model=model, channels=kw.pop("channels", 32), num_blocks=kw.pop("num_blocks", 1), **kw)


@pytest.mark.parametrize("model", ["simple_baseline", "semgcn", "lcn"])
@pytest.mark.parametrize("graph", ["skeleton", "grid"])
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
    x = torch.randn(3, J, 4)
    base = layer(x)
    for k in range(J):
        bumped = x.clone()
        bumped[:, k] += 10.0
        changed = (layer(bumped) - base).abs().amax(dim=(0, 2)) > 1e-5
        allowed = adj[:, k].bool() | (torch.arange(J) == k)
        assert not (changed & ~allowed).any(), f"joint {k} leaks to non-neighbours {torch.nonzero(changed & ~allowed)}"
        assert changed[k] and changed[allowed].all()


@pytest.mark.parametrize("layer_type", [SemGraphConv, LocallyConnected])
@pytest.mark.parametrize("graph", ["skeleton", "grid"])
def test_graph_masks_are_respected(layer_type, graph: str) -> None:
    torch.manual_seed(0)
    adj = SKELETON_ADJ if graph == "skeleton" else adjacency(grid_graph(layouts.handcrafted()), J)
    _non_neighbour_check(layer_type(4, 5, adj), adj)


def test_grid_graph_differs_from_skeleton_graph() -> None:
    sk = build_baseline(config("semgcn"), "h36m17")
    grid = build_baseline(config("semgcn", graph="grid"), "h36m17")
    grid_adj = adjacency(grid_graph(layouts.handcrafted()), J)
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


def test_build_model_dispatches_to_baselines() -> None:
    cfg = config("lcn", graph="grid")
    net = build_model(cfg)
    assert isinstance(net, GraphBaseline) and net.config == cfg and net.skeleton.name == "h36m17"
    assert net.eval()(torch.randn(2, J, 2)).shape == (2, J, 3)


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

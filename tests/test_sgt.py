"""GridLayout, the SGT phi / phi_inv (eq. 1, 11-12) and the eq. 2 topology check."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gridconv_core import H36M17, SKELETONS, GridLayout, GridTransform, LayoutError, SkeletonError, get_skeleton
from gridconv_core.sgt import neighbour_pairs, phi, phi_inv

OFFICIAL_5X5 = [
    [7, 7, 7, 7, 7],
    [0, 8, 8, 8, 0],
    [1, 14, [8, 9], 11, 4],
    [2, 15, 9, 12, 5],
    [3, 16, 10, 13, 6],
]


@pytest.fixture()
def official() -> GridLayout:
    return GridLayout.from_rows(OFFICIAL_5X5, "h36m17", "official")


def test_skeletons_are_trees_with_consistent_sides() -> None:
    for sk in SKELETONS.values():
        assert sum(p == -1 for p in sk.parents) == 1, sk.name
        assert len(sk.edges) == sk.num_joints - 1
        flip = sk.flip_permutation
        assert sorted(flip) == list(range(sk.num_joints))
        assert all(flip[flip[j]] == j for j in range(sk.num_joints))
        assert {flip[j] for j in sk.left} == set(sk.right)
    assert H36M17.left == (4, 5, 6, 11, 12, 13) and H36M17.right == (1, 2, 3, 14, 15, 16)
    with pytest.raises(SkeletonError, match="unknown skeleton"):
        get_skeleton("smpl24")


def test_phi_places_joints_and_mixture_cells(official: GridLayout) -> None:
    g = torch.randn(3, 17, 2)
    d = GridTransform(official)(g)
    assert d.shape == (3, 2, 5, 5)
    torch.testing.assert_close(d[:, :, 0, 3], g[:, 7])
    torch.testing.assert_close(d[:, :, 4, 2], g[:, 10])
    torch.testing.assert_close(d[:, :, 2, 2], (g[:, 8] + g[:, 9]) / 2)


def test_phi_inv_averages_replicas_and_ignores_mixture(official: GridLayout) -> None:
    d = torch.randn(2, 3, 5, 5)
    g = GridTransform(official).inverse(d)
    torch.testing.assert_close(g[:, 7], d[:, :, 0, :].mean(-1))  # Spine: mean of row 0
    torch.testing.assert_close(g[:, 0], (d[:, :, 1, 0] + d[:, :, 1, 4]) / 2)
    torch.testing.assert_close(g[:, 8], d[:, :, 1, 1:4].mean(-1))  # Thorax: not the midpoint cell
    torch.testing.assert_close(g[:, 9], d[:, :, 3, 2])


@pytest.mark.parametrize("shape", [(5, 5), (7, 5), (3, 6)])
def test_phi_inv_inverts_phi_for_any_grid(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    cells = np.concatenate([np.arange(17), rng.integers(0, 17, shape[0] * shape[1] - 17)])
    layout = GridLayout.from_rows(rng.permutation(cells).reshape(shape).tolist())
    t = GridTransform(layout)
    g = torch.randn(4, 17, 3, dtype=torch.float64)
    torch.testing.assert_close(t.inverse(t(g)), g)


def test_sgt_is_differentiable_in_assignment_and_input() -> None:
    s = torch.rand(25, 17, requires_grad=True)
    g = torch.randn(2, 17, 2, requires_grad=True)
    phi_inv(s, phi(s, g, (5, 5))).square().sum().backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert g.grad is not None and g.grad.abs().sum() > 0


def test_topology_check_eq2(official: GridLayout) -> None:
    report = official.topology()
    assert report.satisfied and len(report.kept) == 16
    rows = [list(r) for r in OFFICIAL_5X5]
    rows[4][2], rows[0][0] = 7, 10  # move Head away from Nose
    broken = GridLayout.from_rows(rows).topology()
    assert not broken.satisfied and (9, 10) in broken.broken


def test_neighbourhoods() -> None:
    assert len(neighbour_pairs((5, 5))) == 40
    assert len(neighbour_pairs((5, 5), diagonal=True)) == 72
    assert len(neighbour_pairs((5, 5), wrap=True)) == 50


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([[0, 1], [2]], "unequal"),
        ([[0, 1, 99]] * 6, r"out of range .*\(0,2\)=99"),
        ([list(range(16)) + [0]], "never appear in a cell: 16 RWrist"),
        ([[0, "x"]], r"cell \(0, 1\) holds 'x'"),
        ([[0, []]], r"cell \(0, 1\) is empty"),
        ([[0, 1, 2]], "fewer than the 17 joints"),
        ("not rows", "list of rows"),
    ],
)
def test_invalid_layouts_name_the_problem(rows: object, message: str) -> None:
    with pytest.raises(LayoutError, match=message):
        GridLayout.from_rows(rows)  # type: ignore[arg-type]
    assert GridLayout.check(rows)


def test_json_round_trip_and_malformed_files(official: GridLayout, tmp_path) -> None:
    path = tmp_path / "layout.json"
    official.to_json(path)
    assert GridLayout.from_json(path) == official
    assert GridLayout.from_json(official.to_json()) == official
    assert json.loads(path.read_text())["cells"][2][2] == [8, 9]
    path.write_text('{"cells": [[0, 1]')
    with pytest.raises(LayoutError, match="malformed layout JSON"):
        GridLayout.from_json(path)
    path.write_text('{"skeleton": "h36m17", "cells": [[0, 1]], "shape": [1, 2]}')
    with pytest.raises(LayoutError, match="never appear"):
        GridLayout.from_json(path)
    with pytest.raises(LayoutError, match="cannot read layout file"):
        GridLayout.from_json(tmp_path / "missing.json")


def test_from_assignment_takes_argmax_per_cell(official: GridLayout) -> None:
    s = official.to_onehot() + 0.01 * np.random.default_rng(1).random((25, 17))
    hard = GridLayout.from_assignment(s, (5, 5))
    assert hard.index_grid()[2, 2] == 8 and hard.index_grid()[4, 2] == 10
    with pytest.raises(LayoutError, match="assignment matrix has shape"):
        GridLayout.from_assignment(s, (4, 5))


def test_with_cell_validates(official: GridLayout) -> None:
    assert official.with_cell(0, 0, 3).index_grid()[0, 0] == 3
    with pytest.raises(LayoutError, match="never appear"):
        official.with_cell(4, 2, 7)  # Head's only cell


def test_phi_inv_gradient_stays_bounded_for_a_joint_with_no_cell() -> None:
    s = torch.zeros(25, 17)
    s[torch.arange(25), torch.arange(25) % 16] = 1.0  # joint 16 has no cell
    s.requires_grad_(True)
    g = phi_inv(s, torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(g[:, 16], torch.zeros(2, 3))
    g.sum().backward()
    assert s.grad is not None and float(s.grad.abs().max()) < 10.0


def test_layout_shape_field_must_be_two_integers(official: GridLayout) -> None:
    data = official.to_dict()
    data["shape"] = 5
    with pytest.raises(LayoutError, match="'shape' must be a list of two integers"):
        GridLayout.from_dict(data)

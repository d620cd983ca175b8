"""Layout families (paper 3.2, Table B, Table 6) and the automatic topology-preserving layout."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from gridconv_core import SKELETONS, layout_families
from gridconv_core.errors import LayoutError
from gridconv_core.sgt import GridLayout
from gridconv_core.skeleton import Skeleton

FIXED = ["handcrafted", "handcrafted_onehot", "standard", "learnt_type1", "learnt_type2", "learnt_type3"]


def random_tree(seed: int, size: int) -> Skeleton:
    rng = np.random.default_rng(seed)
    parents = [-1] + [int(rng.integers(0, j)) for j in range(1, size)]
    return Skeleton(f"test-tree-{seed}-{size}", tuple(f"J{j}" for j in range(size)), tuple(parents))


@pytest.mark.parametrize("family", sorted(layout_families.FAMILIES))
def test_every_family_is_a_valid_layout(family: str) -> None:
    layout = layout_families.get_layout(family, "h36m17", seed=3)
    assert isinstance(layout, GridLayout) and layout.problems() == []
    assert layout.skeleton_name == "h36m17"
    assert set(layout.missing) <= ({0} if family == "learnt_type3" else set())


def test_handcrafted_matches_the_official_5x5() -> None:
    layout = layout_families.handcrafted("h36m17")
    grid = [[list(c) if len(c) > 1 else c[0] for c in row] for row in layout.cells]
    assert grid[0] == [7] * 5 and grid[1] == [0, 8, 8, 8, 0]
    assert grid[2] == [1, 14, [8, 9], 11, 4]
    assert grid[3] == [2, 15, 9, 12, 5] and grid[4] == [3, 16, 10, 13, 6]
    names = layout.skeleton.joint_names
    assert all(names[row[0]].startswith("R") for row in grid[2:])  # viewer-facing: subject's right on the left
    assert layout_families.handcrafted_onehot().cells[2][2] == (9,) and layout_families.handcrafted_onehot().is_one_hot


def test_official_priors_are_exact_and_learnt_type3_lacks_the_pelvis() -> None:
    standard = layout_families.official_prior("standard").index_grid()
    assert standard[2].tolist() == [4, 11, 9, 14, 1] and standard[4].tolist() == [6, 13, 10, 16, 3]
    assert layout_families.official_prior("learnt_type2").index_grid()[3].tolist() == [2, 6, 11, 10, 2]
    type3 = layout_families.official_prior("learnt_type3")
    assert type3.missing == (0,) and type3.index_grid()[0].tolist() == [9, 7, 7, 10, 7]
    with pytest.raises(LayoutError, match="learnt_type9"):
        layout_families.official_prior("learnt_type9")


@pytest.mark.parametrize("skeleton", ["h36m17", "h36m32"])
def test_eq2_recognises_handcrafted_and_rejects_global_shuffle(skeleton: str) -> None:
    hand = layout_families.handcrafted(skeleton)
    assert hand.topology().satisfied
    for seed in range(5):
        assert not layout_families.global_shuffle(hand, seed).topology().satisfied


def test_handcrafted_7x5_for_h36m32() -> None:
    layout = layout_families.handcrafted("h36m32")
    assert layout.shape == (7, 5) and layout.is_one_hot and not layout.missing


@pytest.mark.parametrize("shuffle", [layout_families.row_shuffle, layout_families.column_shuffle, layout_families.global_shuffle])
def test_shuffles_preserve_cells_and_are_seeded(shuffle) -> None:
    hand = layout_families.handcrafted()
    a, b = shuffle(hand, 1), shuffle(hand, 1)
    assert a == b and a.cells != hand.cells
    assert Counter(a.flat) == Counter(hand.flat)
    if shuffle is layout_families.row_shuffle:
        assert sorted(a.cells) == sorted(hand.cells)
    if shuffle is layout_families.column_shuffle:
        assert sorted(zip(*a.cells)) == sorted(zip(*hand.cells))
        assert a.topology().satisfied  # peer order has no definite order (Table B)


@pytest.mark.parametrize("shape", [(5, 5), (4, 6), (7, 3)])
def test_random_holds_every_joint_and_is_seeded(shape: tuple[int, int]) -> None:
    layout = layout_families.random("h36m17", shape, seed=4)
    assert layout.shape == shape and (layout.occurrences >= 1).all()
    assert layout == layout_families.random("h36m17", shape, seed=4) != layout_families.random("h36m17", shape, seed=5)
    with pytest.raises(LayoutError, match="cannot hold"):
        layout_families.random("h36m17", (4, 4))


@pytest.mark.parametrize("skeleton", ["h36m17", "h36m32", "coco17", "humaneva15"])
def test_auto_preserves_topology_on_known_skeletons(skeleton: str) -> None:
    layout = layout_families.auto(skeleton)
    assert layout.topology().satisfied and not layout.missing
    bigger = layout_families.auto(skeleton, (layout.shape[0] + 2, layout.shape[1] + 3), seed=1)
    assert bigger.shape == (layout.shape[0] + 2, layout.shape[1] + 3) and bigger.topology().satisfied


def test_auto_h36m17_is_a_5x5_spine_rooted_layout() -> None:
    layout = layout_families.auto("h36m17")
    assert layout.shape == (5, 5) and layout.index_grid()[0].tolist() == [7] * 5


@pytest.mark.parametrize("seed", range(8))
def test_auto_preserves_topology_on_random_trees(seed: int) -> None:
    tree = random_tree(seed, 6 + 4 * seed)
    layout = layout_families.auto(tree, seed=seed)
    assert layout.topology().satisfied and not layout.missing
    h, p = layout.shape
    transposed = layout_families.auto(tree, (p, h))
    assert transposed.shape == (p, h) and transposed.topology().satisfied


def test_auto_rejects_a_grid_too_small() -> None:
    with pytest.raises(LayoutError, match="cannot fit h36m17 into 3x4"):
        layout_families.auto("h36m17", (3, 4))


def test_json_round_trip(tmp_path) -> None:
    for layout in (layout_families.handcrafted(), layout_families.official_prior("learnt_type3"), layout_families.auto("coco17")):
        path = tmp_path / f"{layout.name}.json"
        layout.to_json(path)
        assert GridLayout.from_json(path) == layout
        assert layout_families.get_layout(str(path), layout.skeleton_name) == layout


def test_a_custom_skeleton_travels_in_the_layout_json_and_is_never_registered(tmp_path) -> None:
    tree = random_tree(3, 18)
    layout = layout_families.auto(tree)
    assert tree.name not in SKELETONS and layout.skeleton is tree  # auto() holds the value, registers nothing
    data = json.loads(layout.to_json())
    assert data["skeleton"] == tree.to_dict()  # the definition, not a name no reader could resolve
    assert json.loads(layout_families.handcrafted().to_json())["skeleton"] == "h36m17"  # built-ins by name
    back = GridLayout.from_json(layout.to_json(tmp_path / "tree.json"))
    assert back == layout and back.skeleton == tree and tree.name not in SKELETONS
    assert layout_families.get_layout(tmp_path / "tree.json", tree) == layout
    with pytest.raises(TypeError):
        SKELETONS["x"] = tree  # type: ignore[index]  # a read-only view
    data["skeleton"] = {"name": "broken", "joint_names": ["A", "B"], "parents": [-1]}
    with pytest.raises(LayoutError, match="2 names but 1 parents"):
        GridLayout.from_dict(data)


def test_get_layout_resolves_and_rejects() -> None:
    hand = layout_families.handcrafted()
    assert layout_families.get_layout(hand) is hand
    assert layout_families.get_layout("auto", "humaneva15").skeleton_name == "humaneva15"
    assert layout_families.get_layout("random", shape=(6, 6), seed=2) == layout_families.random("h36m17", (6, 6), 2)
    with pytest.raises(LayoutError, match="unknown layout 'diagonal'"):
        layout_families.get_layout("diagonal")
    with pytest.raises(LayoutError, match="not 7x5"):
        layout_families.get_layout("handcrafted", shape=(7, 5))
    with pytest.raises(LayoutError, match="is for skeleton 'h36m17'"):
        layout_families.get_layout(hand, "coco17")
    with pytest.raises(LayoutError, match="no handcrafted layout"):
        layout_families.get_layout("handcrafted", "coco17")
    with pytest.raises(LayoutError, match="unknown skeleton 'mpii'"):
        layout_families.get_layout("auto", "mpii")
    with pytest.raises(LayoutError, match="not a single tree"):
        layout_families.auto(Skeleton("test-forest", ("A", "B", "C"), (-1, 0, -1)))
    with pytest.raises(LayoutError, match="cannot read layout file"):
        layout_families.get_layout("missing-file.json")

"""Layout families for the Semantic Grid Transformation (paper section 3.2, Table B, Table 6).

Every function returns a validated :class:`~gridconv_core.sgt.GridLayout`:

* :func:`handcrafted` - the official 5x5 for Human3.6M-17 (facts 2.2) and our 7x5 for
  Human3.6M-32 (Table 6); :func:`handcrafted_onehot` - its one-hot form (eq. 3).
* :func:`official_prior` - the AutoGrids priors of the official code (facts 2.3).
* :func:`random` - every joint at least once, the rest random (seeded).
* :func:`row_shuffle`, :func:`column_shuffle`, :func:`global_shuffle` - Table B.
* :func:`auto` - a topology-preserving layout (eq. 2) for any tree skeleton.
* :func:`get_layout` - resolve a family name, a layout or a JSON file.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import LayoutError, SkeletonError
from .sgt import GridLayout
from .skeleton import H36M17, H36M32, Skeleton, get_skeleton

__all__ = [
    "FAMILIES",
    "default_shape",
    "handcrafted",
    "handcrafted_onehot",
    "official_prior",
    "random",
    "row_shuffle",
    "column_shuffle",
    "global_shuffle",
    "auto",
    "get_layout",
]

Rows = list[list[int]]

FAMILIES: dict[str, str] = {
    "handcrafted": "the paper's handcrafted SGT: official 5x5 for h36m17 (Thorax-Nose midpoint cell), 7x5 for h36m32",
    "handcrafted_onehot": "the handcrafted layout with each mixture cell replaced by its most distal joint (eq. 3)",
    "standard": "official AutoGrids prior 'standard' (mirrored handcrafted, Nose in the centre), h36m17 5x5",
    "learnt_type1": "official AutoGrids prior 'learnt_type1', h36m17 5x5",
    "learnt_type2": "official AutoGrids prior 'learnt_type2', h36m17 5x5",
    "learnt_type3": "official AutoGrids prior 'learnt_type3' (has no Pelvis: partial layout), h36m17 5x5",
    "random": "every joint once at a random cell, remaining cells random joints (seeded)",
    "row_shuffle": "handcrafted layout with its rows in a random order (Table B, seeded)",
    "column_shuffle": "handcrafted layout with its columns in a random order (Table B, seeded)",
    "global_shuffle": "handcrafted layout with all cells in a random order (Table B, seeded)",
    "auto": "automatic topology-preserving layout (eq. 2) for any tree skeleton: chains hang from a root row",
}

# Official handcrafted 5x5 (facts 2.2): columns are chains hanging from the Spine row, viewer-facing
# (the subject's right on the grid's left); cell (2, 2) is the Thorax-Nose mixture.
_H36M17_HANDCRAFTED: list[list[int | list[int]]] = [
    [7, 7, 7, 7, 7],
    [0, 8, 8, 8, 0],
    [1, 14, [8, 9], 11, 4],
    [2, 15, 9, 12, 5],
    [3, 16, 10, 13, 6],
]

# Our handcrafted 7x5 for Human3.6M-32 (Table 6; no official one exists, facts 2.3). 35 cells for
# 32 joints leave 3 replicas, so the 5x5 design's replicated anchor rows cannot be afforded; we keep
# its principles: the centre column is the spine chain (HeadSite down to Hip), viewer-facing sides,
# and row 4 is the Spine anchor row. Columns 1 and 3 hold the proximal limb chains leaving the
# trunk (arm: ShoulderAnchor, Shoulder, Elbow upwards from the Thorax; leg: Hip, Knee downwards
# from the Hip), columns 0 and 4 their distal parts folded back (Wrist with the Thumb and WristEnd
# branches above and below it; Foot, ToeBase, ToeSite upwards). Replicas: Spine x3, Hip x2.
_H36M32_HANDCRAFTED: list[list[int | list[int]]] = [
    [28, 29, 15, 21, 20],
    [27, 26, 14, 18, 19],
    [30, 25, 13, 17, 22],
    [31, 24, 12, 16, 23],
    [5, 11, 11, 11, 10],
    [4, 1, 0, 6, 9],
    [3, 2, 0, 7, 8],
]

_HANDCRAFTED = {H36M17: _H36M17_HANDCRAFTED, H36M32: _H36M32_HANDCRAFTED}

# AutoGrids priors of the official code (facts 2.3), row-major, Human3.6M-17.
_OFFICIAL_PRIORS: dict[str, list[list[int]]] = {
    "standard": [[7, 7, 7, 7, 7], [0, 8, 8, 8, 0], [4, 11, 9, 14, 1], [5, 12, 9, 15, 2], [6, 13, 10, 16, 3]],
    "learnt_type1": [[7, 4, 7, 1, 0], [0, 8, 8, 8, 0], [4, 11, 9, 14, 1], [5, 12, 9, 15, 2], [6, 13, 10, 16, 3]],
    "learnt_type2": [[0, 15, 7, 1, 0], [1, 14, 8, 7, 0], [4, 0, 9, 13, 1], [2, 6, 11, 10, 2], [5, 12, 14, 16, 3]],
    "learnt_type3": [[9, 7, 7, 10, 7], [13, 8, 10, 15, 16], [9, 12, 7, 14, 1], [4, 5, 7, 3, 11], [7, 6, 9, 2, 14]],
}


def default_shape(skeleton: str | Skeleton = "h36m17") -> tuple[int, int]:
    """Grid size used when none is given: the handcrafted one (5x5, 7x5), else :func:`auto`'s."""
    sk = get_skeleton(skeleton)
    if sk in _HANDCRAFTED:
        rows = _HANDCRAFTED[sk]
        return len(rows), len(rows[0])
    return auto(sk).shape


def handcrafted(skeleton: str | Skeleton = "h36m17") -> GridLayout:
    """The handcrafted SGT (paper Fig. 2): official 5x5 for h36m17, our 7x5 for h36m32 (Table 6)."""
    sk = get_skeleton(skeleton)
    if sk not in _HANDCRAFTED:
        known = ", ".join(s.name for s in _HANDCRAFTED)
        raise LayoutError(f"no handcrafted layout for skeleton {sk.name!r} (have {known}); use 'auto'")
    return GridLayout.from_rows(_HANDCRAFTED[sk], sk, f"handcrafted-{sk.name}")


def handcrafted_onehot(skeleton: str | Skeleton = "h36m17") -> GridLayout:
    """One-hot form (eq. 3) of :func:`handcrafted`: each mixture cell keeps its most distal joint.

    For h36m17 the Thorax-Nose midpoint becomes Nose, as in the official ``standard`` prior.
    """
    layout = handcrafted(skeleton)
    sk = layout.skeleton
    rows = [[max(cell, key=lambda j: _depth(sk, j)) for cell in row] for row in layout.cells]
    return GridLayout.from_rows(rows, sk, f"handcrafted-onehot-{sk.name}")


def official_prior(name: str) -> GridLayout:
    """An AutoGrids prior of the official code (facts 2.3): standard, learnt_type1/2/3 (h36m17, 5x5).

    ``learnt_type3`` holds no Pelvis, so it is a partial layout (``allow_missing``).
    """
    if name not in _OFFICIAL_PRIORS:
        raise LayoutError(f"unknown official prior {name!r}; known: {', '.join(_OFFICIAL_PRIORS)}")
    return GridLayout.from_rows(_OFFICIAL_PRIORS[name], H36M17, name, allow_missing=name == "learnt_type3")


def random(skeleton: str | Skeleton = "h36m17", shape: tuple[int, int] | None = None, seed: int = 0) -> GridLayout:
    """Random layout: every joint in one random cell, the remaining cells random joints (seeded)."""
    sk = get_skeleton(skeleton)
    h, p = shape or default_shape(sk)
    j = sk.num_joints
    if h < 1 or p < 1 or h * p < j:
        raise LayoutError(f"a {h}x{p} grid cannot hold the {j} joints of {sk.name}")
    rng = np.random.default_rng(seed)
    cells = np.concatenate([np.arange(j), rng.integers(0, j, size=h * p - j)])
    rows = rng.permutation(cells).reshape(h, p)
    return GridLayout.from_rows(rows, sk, f"random-{sk.name}-{h}x{p}-s{seed}")


def row_shuffle(layout: GridLayout, seed: int = 0) -> GridLayout:
    """Table B "Row Shuffle": the rows in a random order (parent/child order changes)."""
    order = _permutation(layout.shape[0], seed)
    return _rebuild(layout, [list(layout.cells[r]) for r in order], "row-shuffle", seed)


def column_shuffle(layout: GridLayout, seed: int = 0) -> GridLayout:
    """Table B "Column Shuffle": the columns in a random order (peer order changes)."""
    order = _permutation(layout.shape[1], seed)
    return _rebuild(layout, [[row[c] for c in order] for row in layout.cells], "column-shuffle", seed)


def global_shuffle(layout: GridLayout, seed: int = 0) -> GridLayout:
    """Table B "Global Shuffle": all cells in a random order."""
    h, p = layout.shape
    flat = layout.flat
    order = _permutation(h * p, seed)
    return _rebuild(layout, [[flat[order[r * p + c]] for c in range(p)] for r in range(h)], "global-shuffle", seed)


def auto(skeleton: str | Skeleton, shape: tuple[int, int] | None = None, seed: int = 0) -> GridLayout:
    """Automatic topology-preserving layout (eq. 2) for any tree skeleton.

    Construction (the handcrafted design generalised): root the tree at a joint ``v``; a subtree
    is a block whose top row is ``v`` replicated over the block's width, and below it the blocks
    of ``v``'s children side by side, each padded down to equal height by repeating its last row.
    Every child's top row lies directly below its parent's row, so every edge has vertically
    adjacent cells (eq. 2) and every joint appears; the block is (depth x leaves). Children are
    ordered viewer-facing (right-side chains left). Over all roots and both orientations (a
    transposed grid keeps adjacency) we take the smallest grid that fits ``shape``; a larger
    ``shape`` is reached by replicating rows and columns (chosen with ``seed``), which also keeps
    every adjacency. ``shape=None`` gives the smallest grid (5x5 for h36m17). The layout holds the
    skeleton itself, so a custom :class:`Skeleton` needs no registration.
    """
    sk = get_skeleton(skeleton)
    neighbours = _tree_neighbours(sk)
    blocks = sorted(
        (_block(sk, neighbours, root, -1) for root in range(sk.num_joints)),
        key=lambda rows: (len(rows) * len(rows[0]), abs(len(rows) - len(rows[0])), len(rows[0]) > len(rows)),
    )
    if shape is None:
        return GridLayout.from_rows(blocks[0], sk, f"auto-{sk.name}")
    h, p = shape
    for rows in blocks:
        for grid in (rows, [list(col) for col in zip(*rows)]):
            if len(grid) <= h and len(grid[0]) <= p:
                return GridLayout.from_rows(_grow(grid, (h, p), seed), sk, f"auto-{sk.name}-{h}x{p}")
    best = blocks[0]
    raise LayoutError(
        f"auto layout cannot fit {sk.name} into {h}x{p}; it needs at least "
        f"{len(best)}x{len(best[0])} or {len(best[0])}x{len(best)}"
    )


def get_layout(
    spec: str | os.PathLike[str] | GridLayout,
    skeleton: str | Skeleton = "h36m17",
    shape: tuple[int, int] | None = None,
    seed: int = 0,
) -> GridLayout:
    """Resolve a family name (see :data:`FAMILIES`), a :class:`GridLayout` or a layout JSON file.

    A given ``shape`` must match fixed-size families; a layout or file must be for ``skeleton``.
    """
    try:
        sk = get_skeleton(skeleton)
    except SkeletonError as err:
        raise LayoutError(str(err)) from None
    if isinstance(spec, GridLayout):
        layout = spec
    elif isinstance(spec, str) and spec in FAMILIES:
        layout = _FAMILY_BUILDERS[spec](sk, shape, seed)
    elif isinstance(spec, os.PathLike) or (isinstance(spec, str) and (spec.endswith(".json") or Path(spec).is_file())):
        layout = GridLayout.from_json(Path(spec))
    else:
        raise LayoutError(f"unknown layout {spec!r}; use a layout JSON file or one of: {', '.join(FAMILIES)}")
    if layout.skeleton != sk:
        raise LayoutError(f"layout {layout.name or spec!r} is for skeleton {layout.skeleton_name!r}, not {sk.name!r}")
    if shape is not None and tuple(shape) != layout.shape:
        (h, p), name = layout.shape, layout.name or spec
        raise LayoutError(f"layout {name!r} is {h}x{p}, not {shape[0]}x{shape[1]}")
    return layout


def _prior_for(name: str) -> Callable[[Skeleton, tuple[int, int] | None, int], GridLayout]:
    def build(sk: Skeleton, shape: tuple[int, int] | None, seed: int) -> GridLayout:
        if sk != H36M17:
            raise LayoutError(f"official prior {name!r} is for h36m17, not {sk.name!r}")
        return official_prior(name)

    return build


_FAMILY_BUILDERS: dict[str, Callable[[Skeleton, tuple[int, int] | None, int], GridLayout]] = {
    "handcrafted": lambda sk, shape, seed: handcrafted(sk),
    "handcrafted_onehot": lambda sk, shape, seed: handcrafted_onehot(sk),
    **{name: _prior_for(name) for name in _OFFICIAL_PRIORS},
    "random": lambda sk, shape, seed: random(sk, shape, seed),
    "row_shuffle": lambda sk, shape, seed: row_shuffle(handcrafted(sk), seed),
    "column_shuffle": lambda sk, shape, seed: column_shuffle(handcrafted(sk), seed),
    "global_shuffle": lambda sk, shape, seed: global_shuffle(handcrafted(sk), seed),
    "auto": lambda sk, shape, seed: auto(sk, shape, seed),
}


# ---------------------------------------------------------------------- helpers
def _permutation(n: int, seed: int) -> list[int]:
    """A seeded permutation of ``range(n)``, redrawn until it moves something (when ``n > 1``)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    while n > 1 and np.array_equal(order, np.arange(n)):
        order = rng.permutation(n)
    return order.tolist()


def _rebuild(layout: GridLayout, rows: list, kind: str, seed: int) -> GridLayout:
    name = f"{layout.name or 'layout'}-{kind}-s{seed}"
    return GridLayout(layout.skeleton, tuple(tuple(r) for r in rows), name, layout.allow_missing)


def _depth(sk: Skeleton, joint: int) -> int:
    depth = 0
    while sk.parents[joint] >= 0:
        joint, depth = sk.parents[joint], depth + 1
    return depth


def _tree_neighbours(sk: Skeleton) -> list[list[int]]:
    """Undirected adjacency lists; raises :class:`LayoutError` unless the skeleton is one tree."""
    neighbours: list[list[int]] = [[] for _ in range(sk.num_joints)]
    for a, b in sk.edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    seen, stack = {0}, [0]
    while stack:
        for n in neighbours[stack.pop()]:
            if n not in seen:
                seen.add(n)
                stack.append(n)
    if len(seen) != sk.num_joints or len(sk.edges) != sk.num_joints - 1:
        raise LayoutError(f"skeleton {sk.name!r} is not a single tree; auto layout needs one")
    return neighbours


def _block(sk: Skeleton, neighbours: list[list[int]], joint: int, parent: int) -> Rows:
    """The (depth x leaves) block of the subtree of ``joint`` (see :func:`auto`)."""
    children = sorted((c for c in neighbours[joint] if c != parent), key=lambda c: (_side(sk, c), c))
    if not children:
        return [[joint]]
    parts = [_block(sk, neighbours, c, joint) for c in children]
    height = max(len(part) for part in parts)
    body = [sum((part[min(r, len(part) - 1)] for part in parts), []) for r in range(height)]
    return [[joint] * len(body[0])] + body


def _side(sk: Skeleton, joint: int) -> int:
    """-1 for a subject's-right joint, +1 for a left one, 0 otherwise (viewer-facing order)."""
    return -1 if joint in sk.right else 1 if joint in sk.left else 0


def _grow(rows: Rows, shape: tuple[int, int], seed: int) -> Rows:
    """Replicate rows, then columns, at seeded positions until the grid is ``shape``."""
    rng = np.random.default_rng(seed)
    grid = [list(r) for r in rows]
    while len(grid) < shape[0]:
        r = int(rng.integers(len(grid)))
        grid.insert(r, list(grid[r]))
    while len(grid[0]) < shape[1]:
        c = int(rng.integers(len(grid[0])))
        for row in grid:
            row.insert(c, row[c])
    return grid

"""Grid layouts and the Semantic Grid Transformation (paper section 3.1, eq. 1-3, 11-12).

A :class:`GridLayout` is an ``H x P`` table whose cells name the skeleton joint(s) that fill
them. It defines the assignment matrix ``S`` of eq. 1 and its normalised transpose of eq. 11.
A cell normally holds one joint (eq. 3). A cell may also hold several joints, whose *mean*
fills it in the forward transform (the official handcrafted layout's Thorax-Nose midpoint);
such mixture cells are input-only and are ignored by the inverse, as in the official code.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .errors import LayoutError, SkeletonError
from .io import atomic_write_text, read_json
from .skeleton import Skeleton, get_skeleton

__all__ = [
    "GridLayout",
    "TopologyReport",
    "SGT",
    "GridTransform",
    "phi",
    "phi_cells",
    "phi_inv",
    "phi_inv_cells",
    "inverse_matrix",
    "neighbour_pairs",
]

Cell = tuple[int, ...]
LAYOUT_FORMAT = "gridconv-layout"


@dataclass(frozen=True)
class TopologyReport:
    """Result of the eq. 2 check: which skeleton edges stay grid-adjacent."""

    kept: tuple[tuple[int, int], ...]
    broken: tuple[tuple[int, int], ...]

    @property
    def satisfied(self) -> bool:
        """True when every skeleton edge is preserved (eq. 2 holds)."""
        return not self.broken


def neighbour_pairs(shape: tuple[int, int], diagonal: bool = False, wrap: bool = False) -> list[tuple[int, int]]:
    """Unordered pairs of adjacent cells (flat row-major indices) of an ``H x P`` grid.

    The default is the 4-neighbourhood ``N(p)`` of eq. 2; ``diagonal`` adds the 8-neighbourhood
    and ``wrap`` treats the grid as a torus (what circular padding sees).
    """
    h, p = shape
    steps = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if diagonal else [])
    pairs: set[tuple[int, int]] = set()
    for r in range(h):
        for c in range(p):
            for dr, dc in steps:
                rr, cc = r + dr, c + dc
                if wrap:
                    rr, cc = rr % h, cc % p
                elif not (0 <= rr < h and 0 <= cc < p):
                    continue
                a, b = r * p + c, rr * p + cc
                if a != b:
                    pairs.add((min(a, b), max(a, b)))
    return sorted(pairs)


@dataclass(frozen=True, eq=True)
class GridLayout:
    """An ``H x P`` grid layout of a skeleton's joints (the SGT of eq. 1).

    Build one with :meth:`from_rows` (cells given as joint indices, or lists of indices for
    mixture cells). Construction validates: a malformed layout raises :class:`LayoutError`.
    ``allow_missing`` admits partial layouts (a learnt S may drop joints, paper A.3; the
    official ``learnt_type3`` prior has no pelvis): their absent joints come out of ``phi_inv`` as 0.
    The layout holds its :class:`Skeleton` (a value); JSON names a built-in skeleton and embeds a custom one.
    """

    skeleton: Skeleton
    cells: tuple[tuple[Cell, ...], ...]
    name: str = ""
    allow_missing: bool = False

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise LayoutError(f"invalid layout {self.name or '(unnamed)'}: " + "; ".join(problems))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_rows(
        cls,
        rows: Sequence[Sequence[int | Sequence[int]]],
        skeleton: str | Skeleton = "h36m17",
        name: str = "",
        allow_missing: bool = False,
    ) -> GridLayout:
        """Build a layout from rows of cells; a cell is a joint index or a list of indices."""
        return cls(get_skeleton(skeleton), _normalise_rows(rows), name, allow_missing)

    @classmethod
    def from_assignment(
        cls,
        s: np.ndarray | Tensor,
        shape: tuple[int, int],
        skeleton: str | Skeleton = "h36m17",
        name: str = "",
        allow_missing: bool = False,
    ) -> GridLayout:
        """Hard layout of an assignment (or probability) matrix ``(HP, J)``: argmax per cell (eq. 5)."""
        arr = s.detach().float().cpu().numpy() if isinstance(s, Tensor) else np.asarray(s, dtype=np.float64)
        h, p = shape
        if arr.ndim != 2 or arr.shape[0] != h * p:
            raise LayoutError(f"assignment matrix has shape {tuple(arr.shape)}, expected ({h * p}, J) for a {h}x{p} grid")
        idx = arr.argmax(axis=1).reshape(h, p)
        return cls.from_rows(idx.tolist(), skeleton, name, allow_missing)

    @staticmethod
    def check(rows: Any, skeleton: str | Skeleton = "h36m17", allow_missing: bool = False) -> list[str]:
        """Problems that would stop ``from_rows(rows, skeleton)``; empty when it is valid."""
        try:
            sk = get_skeleton(skeleton)
        except SkeletonError as err:
            return [str(err)]
        try:
            cells = _normalise_rows(rows)
        except LayoutError as err:
            return [str(err)]
        return _problems(cells, sk, allow_missing)

    def problems(self) -> list[str]:
        """Human-readable validation problems (empty for a valid layout)."""
        return _problems(self.cells, self.skeleton, self.allow_missing)

    # ------------------------------------------------------------------ properties
    @property
    def skeleton_name(self) -> str:
        """The skeleton's name (for display; the layout holds the :class:`Skeleton` itself)."""
        return self.skeleton.name

    @property
    def shape(self) -> tuple[int, int]:
        """Grid size ``(H, P)``."""
        return len(self.cells), len(self.cells[0])

    @property
    def flat(self) -> list[Cell]:
        """Cells in row-major order (grid node ``p`` of eq. 1)."""
        return [cell for row in self.cells for cell in row]

    @property
    def is_one_hot(self) -> bool:
        """True when every cell holds exactly one joint (eq. 3)."""
        return all(len(c) == 1 for c in self.flat)

    @cached_property
    def occurrences(self) -> np.ndarray:
        """Number of single-joint cells holding each joint, shape ``(J,)``."""
        counts = np.zeros(self.skeleton.num_joints, dtype=np.int64)
        for cell in self.flat:
            if len(cell) == 1:
                counts[cell[0]] += 1
        return counts

    @property
    def missing(self) -> tuple[int, ...]:
        """Joints that no single-joint cell holds (non-empty only for ``allow_missing`` layouts)."""
        return tuple(int(j) for j in np.flatnonzero(self.occurrences == 0))

    def index_grid(self) -> np.ndarray:
        """``(H, P)`` integer array of joint indices, ``-1`` for mixture cells."""
        return np.array([[c[0] if len(c) == 1 else -1 for c in row] for row in self.cells], dtype=np.int64)

    # ------------------------------------------------------------------ matrices
    def assignment_matrix(self) -> np.ndarray:
        """``S`` of eq. 1, shape ``(HP, J)``; a mixture cell's row averages its joints."""
        s = np.zeros((len(self.flat), self.skeleton.num_joints), dtype=np.float32)
        for p, cell in enumerate(self.flat):
            for j in cell:
                s[p, j] += 1.0 / len(cell)
        return s

    def inverse_assignment(self) -> np.ndarray:
        """0/1 matrix ``(HP, J)`` of the cells read back by the inverse SGT (single-joint cells)."""
        s = np.zeros((len(self.flat), self.skeleton.num_joints), dtype=np.float32)
        for p, cell in enumerate(self.flat):
            if len(cell) == 1:
                s[p, cell[0]] = 1.0
        return s

    def to_onehot(self) -> np.ndarray:
        """Binary ``S`` (eq. 3) for AutoGrids initialisation; mixture cells keep their first joint."""
        s = np.zeros((len(self.flat), self.skeleton.num_joints), dtype=np.float32)
        for p, cell in enumerate(self.flat):
            s[p, cell[0]] = 1.0
        return s

    # ------------------------------------------------------------------ topology (eq. 2)
    def topology(self, diagonal: bool = False, wrap: bool = False) -> TopologyReport:
        """Check eq. 2: each skeleton edge ``(i, j)`` needs cells holding ``i`` and ``j`` that are adjacent."""
        flat = self.flat
        adjacent: set[tuple[int, int]] = set()
        for a, b in neighbour_pairs(self.shape, diagonal, wrap):
            for i in flat[a]:
                for j in flat[b]:
                    adjacent.add((i, j))
                    adjacent.add((j, i))
        kept, broken = [], []
        for edge in self.skeleton.edges:
            (kept if edge in adjacent else broken).append(edge)
        return TopologyReport(tuple(kept), tuple(broken))

    # ------------------------------------------------------------------ editing
    def with_cell(self, row: int, col: int, cell: int | Sequence[int]) -> GridLayout:
        """A copy with one cell replaced (validated)."""
        rows = [list(r) for r in self.cells]
        rows[row][col] = _normalise_cell(cell, (row, col))
        return GridLayout(self.skeleton, tuple(tuple(r) for r in rows), self.name, self.allow_missing)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; ``skeleton`` is a built-in skeleton's name or a custom skeleton's definition."""
        data: dict[str, Any] = {
            "format": LAYOUT_FORMAT,
            "version": 1,
            "skeleton": self.skeleton.name if self.skeleton.is_builtin else self.skeleton.to_dict(),
            "name": self.name,
            "shape": list(self.shape),
            "cells": [[c[0] if len(c) == 1 else list(c) for c in row] for row in self.cells],
        }
        if self.allow_missing:
            data["allow_missing"] = True
        return data

    def to_json(self, path: str | os.PathLike[str] | None = None, indent: int | None = None) -> str:
        """Serialise to JSON; with ``path`` the file is written atomically too."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            atomic_write_text(Path(path), text + "\n")
        return text

    @classmethod
    def from_dict(cls, data: Any) -> GridLayout:
        if not isinstance(data, dict) or data.get("format", LAYOUT_FORMAT) != LAYOUT_FORMAT or "cells" not in data:
            raise LayoutError("not a gridconv layout: expected an object with 'skeleton' and 'cells'")
        spec = data.get("skeleton", "h36m17")
        if not isinstance(spec, (str, dict)):
            raise LayoutError("layout 'skeleton' must be a skeleton name or a skeleton definition")
        try:
            skeleton = get_skeleton(spec) if isinstance(spec, str) else Skeleton.from_dict(spec)
        except SkeletonError as err:
            raise LayoutError(str(err)) from None
        layout = cls.from_rows(data["cells"], skeleton, str(data.get("name", "")), data.get("allow_missing") is True)
        shape = data.get("shape", list(layout.shape))
        if not isinstance(shape, list) or len(shape) != 2 or not all(isinstance(v, int) for v in shape):
            raise LayoutError(f"layout 'shape' must be a list of two integers, got {shape!r}")
        if shape != list(layout.shape):
            raise LayoutError(f"layout 'shape' {data['shape']} does not match its cells {list(layout.shape)}")
        return layout

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> GridLayout:
        """Parse a JSON string, or read a JSON file when ``source`` is a path."""
        return cls.from_dict(read_json(source, LayoutError, "layout"))

    def __str__(self) -> str:
        names = self.skeleton.joint_names
        width = max(len(n) for n in names) + 2
        lines = []
        for row in self.cells:
            lines.append(" ".join(("+".join(names[j] for j in c)).ljust(width) for c in row).rstrip())
        return "\n".join(lines)


def _normalise_cell(cell: Any, where: tuple[int, int]) -> Cell:
    if isinstance(cell, (bool, np.bool_)):
        raise LayoutError(f"cell {where} holds a boolean, expected a joint index")
    if isinstance(cell, (int, np.integer)):
        return (int(cell),)
    if isinstance(cell, (list, tuple)) and cell and all(
        isinstance(j, (int, np.integer)) and not isinstance(j, bool) for j in cell
    ):
        return tuple(int(j) for j in cell)
    if isinstance(cell, (list, tuple)) and not cell:
        raise LayoutError(f"cell {where} is empty")
    raise LayoutError(f"cell {where} holds {cell!r}, expected a joint index or a list of joint indices")


def _normalise_rows(rows: Any) -> tuple[tuple[Cell, ...], ...]:
    if isinstance(rows, np.ndarray):
        rows = rows.tolist()
    if not isinstance(rows, (list, tuple)) or not rows or not all(isinstance(r, (list, tuple)) for r in rows):
        raise LayoutError("layout cells must be a non-empty list of rows")
    widths = {len(r) for r in rows}
    if len(widths) != 1 or 0 in widths:
        raise LayoutError(f"layout rows have unequal or zero lengths {[len(r) for r in rows]}")
    return tuple(tuple(_normalise_cell(c, (r, k)) for k, c in enumerate(row)) for r, row in enumerate(rows))


def _problems(cells: tuple[tuple[Cell, ...], ...], sk: Skeleton, allow_missing: bool = False) -> list[str]:
    j = sk.num_joints
    problems = []
    bad = [(r, c, v) for r, row in enumerate(cells) for c, cell in enumerate(row) for v in cell if not 0 <= v < j]
    if bad:
        problems.append(
            "joint index out of range 0..%d in cells %s" % (j - 1, ", ".join(f"({r},{c})={v}" for r, c, v in bad))
        )
        return problems
    h, p = len(cells), len(cells[0])
    if h * p < j:
        problems.append(f"a {h}x{p} grid has {h * p} cells, fewer than the {j} joints of {sk.name}")
    present = {cell[0] for row in cells for cell in row if len(cell) == 1}
    missing = [i for i in range(j) if i not in present]
    if missing and not allow_missing:
        problems.append("joints never appear in a cell: " + ", ".join(f"{i} {sk.joint_names[i]}" for i in missing))
    return problems


# ---------------------------------------------------------------------- SGT as tensor ops
def phi_cells(s: Tensor, g: Tensor) -> Tensor:
    """Eq. 1, ``D = S x G``, in cell-major order: joints ``(B, J, C)`` to grid cells ``(B, HP, C)``.

    ``s`` is ``(HP, J)`` (binary, fractional or a straight-through one-hot); differentiable in both.
    """
    return torch.matmul(s.to(g.dtype), g)


def phi(s: Tensor, g: Tensor, shape: tuple[int, int]) -> Tensor:
    """Eq. 1 as a grid pose ``(B, C, H, P)`` (:func:`phi_cells`, channels first)."""
    b, _, c = g.shape
    return phi_cells(s, g).transpose(1, 2).reshape(b, c, shape[0], shape[1])


def inverse_matrix(s: Tensor) -> Tensor:
    """Eq. 11: the ``(J, HP)`` matrix that averages the replicas of each joint, from the ``(HP, J)`` 0/1 assignment
    read back (or a straight-through one-hot); a joint that no cell holds gets a zero row."""
    # a joint no cell holds has count 0: clamping keeps it at 0 with a bounded gradient
    return (s / s.sum(dim=0, keepdim=True).clamp_min(1.0)).t()


def phi_inv_cells(s: Tensor, cells: Tensor) -> Tensor:
    """Eq. 11-12: grid cells ``(B, HP, C)`` back to joints ``(B, J, C)``, averaging replicas (:func:`inverse_matrix`
    of the ``(HP, J)`` assignment ``s``)."""
    return torch.matmul(inverse_matrix(s.to(cells.dtype)), cells)  # (B, J, C), eq. 12


def phi_inv(s: Tensor, d: Tensor) -> Tensor:
    """Eq. 11-12 from a grid pose ``(B, C, H, P)`` (:func:`phi_inv_cells`)."""
    b, c, h, p = d.shape
    return phi_inv_cells(s, d.reshape(b, c, h * p).transpose(1, 2))


class SGT(nn.Module):
    """The interface of a Semantic Grid Transformation (eq. 1, 11-12), fixed (:class:`GridTransform`) or learnt
    (:class:`~gridconv_core.autogrids.AutoGrids`): its grid ``shape``, its current hard :meth:`layout` and the
    :meth:`assignment` matrices one forward pass uses for ``phi`` and ``phi^-1``."""

    shape: tuple[int, int]

    def layout(self) -> GridLayout:
        """The current layout (for AutoGrids the argmax of ``S^prob``, eq. 5)."""
        raise NotImplementedError

    def assignment(self) -> tuple[Tensor, Tensor]:
        """``(S, S_inv)``, both ``(HP, J)``: ``S`` for :func:`phi` and the 0/1 (or straight-through) matrix
        read back by :func:`phi_inv`; one call per forward pass (AutoGrids samples its noise here)."""
        raise NotImplementedError


class GridTransform(SGT):
    """A fixed SGT ``phi`` and its inverse for one :class:`GridLayout`, as buffers on any device."""

    def __init__(self, layout: GridLayout) -> None:
        super().__init__()
        self._layout = layout
        self.shape = layout.shape
        self.register_buffer("s_forward", torch.from_numpy(layout.assignment_matrix()), persistent=False)
        self.register_buffer("s_inverse", torch.from_numpy(layout.inverse_assignment()), persistent=False)

    def layout(self) -> GridLayout:
        return self._layout

    def assignment(self) -> tuple[Tensor, Tensor]:
        return self.s_forward, self.s_inverse

    def forward(self, g: Tensor) -> Tensor:
        """``phi``: ``(B, J, C)`` to ``(B, C, H, P)``."""
        return phi(self.s_forward, g, self.shape)

    def inverse(self, d: Tensor) -> Tensor:
        """``phi^{-1}``: ``(B, C, H, P)`` to ``(B, J, C)``."""
        return phi_inv(self.s_inverse, d)

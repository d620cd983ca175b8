"""Interactive grid-layout editor: the paper's Fig. 2 made editable (section 3.1-3.2, eq. 1-3).

Every edit (swap, replica, clear, resize, skeleton change, undo/redo, load) is a Python method,
so the editor is fully usable and testable without a browser. The ESM front end stays custom
(anywidget) because editing is HTML5 drag-and-drop between cells and from the joint palette, which
neither ipywidgets controls nor plotly figures offer. It renders the synced state, derives what it
can from ``cells`` (shape, empty cells, status, palette counts), keeps the hover highlight to
itself, and sends new ``cells`` lists or ``undo``/``redo``/``resize``/``load_text``/``download`` messages.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from gridconv_core import SKELETONS, GridLayout, LayoutError, Skeleton, get_skeleton

from ._common import cell_label, template_pose

__all__ = ["LayoutEditor", "EMPTY"]

EMPTY = -1
"""Value of a cleared cell in :attr:`LayoutEditor.cells`."""

_STATIC = Path(__file__).parent / "static"
_MAX_SIDE = 12
Rows = list[list[Any]]
_State = tuple[Skeleton, Rows]


def _copy(rows: Sequence[Sequence[Any]]) -> Rows:
    """Deep copy of rows of cells (a mixture cell is a list)."""
    return [[list(c) if isinstance(c, (list, tuple)) else int(c) for c in row] for row in rows]


def _cyclic_rows(num_joints: int, shape: tuple[int, int]) -> Rows:
    """Row-major fill, cell ``p`` holding joint ``p mod J``: valid whenever ``H*P >= J``."""
    h, p = shape
    return [[(r * p + c) % num_joints for c in range(p)] for r in range(h)]


class LayoutEditor(anywidget.AnyWidget):
    """Drag-and-drop editor of a :class:`~gridconv_core.GridLayout`.

    ``editor.layout`` is the edited layout (raises :class:`LayoutError` naming the problems while
    it is invalid); ``editor.valid`` says which. Cells hold a joint index, a list of indices (a
    mixture cell) or ``EMPTY``.
    """

    _esm = _STATIC / "layout_editor.js"
    _css = _STATIC / "layout_editor.css"

    # The source of truth, edited from both sides.
    cells = traitlets.List().tag(sync=True)
    skeleton_name = traitlets.Unicode("h36m17").tag(sync=True)
    message = traitlets.Unicode().tag(sync=True)
    # What the front end needs but cannot compute: the skeleton's definition and the dropdown's
    # choices (change only with the skeleton), Python's eq. 2-3 verdict on ``cells`` (computed by
    # gridconv_core, not copied into JS) and the depth of the undo/redo stacks kept here.
    _skeleton = traitlets.Dict().tag(sync=True)
    _choices = traitlets.Dict().tag(sync=True)
    _verdict = traitlets.Dict({"problems": [], "broken": []}).tag(sync=True)
    _history = traitlets.List(traitlets.Int(), [0, 0]).tag(sync=True)

    def __init__(
        self,
        layout: GridLayout | None = None,
        skeleton: str | Skeleton = "h36m17",
        shape: tuple[int, int] = (5, 5),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._undo: list[_State] = []
        self._redo: list[_State] = []
        self._syncing = False
        self._sk = get_skeleton(skeleton)
        self._unregistered: dict[str, Skeleton] = {}  # skeletons of given layouts that the registry lacks
        self.observe(self._on_cells_edited, "cells")
        self.observe(self._on_skeleton_chosen, "skeleton_name")
        self.on_msg(self._on_frontend_msg)
        if layout is not None:
            self._apply(layout.skeleton, layout.to_dict()["cells"])
        else:
            self._apply(self._sk, _cyclic_rows(self._sk.num_joints, self._fitting(shape, self._sk.num_joints)))

    # ------------------------------------------------------------------ results
    @property
    def layout(self) -> GridLayout:
        """The edited layout; raises :class:`LayoutError` listing the problems while it is invalid."""
        if self.problems:
            raise LayoutError("the edited layout is invalid: " + "; ".join(self.problems))
        return GridLayout.from_rows(self.cells, self._sk, name="edited")

    @property
    def valid(self) -> bool:
        """True when :attr:`layout` would return a layout."""
        return not self.problems

    # ------------------------------------------------------------------ derived, read-only
    @property
    def skeleton(self) -> Skeleton:
        """The skeleton whose joints the cells hold."""
        return self._sk

    @property
    def shape(self) -> list[int]:
        """``[H, P]`` of the grid."""
        return [len(self.cells), len(self.cells[0])]

    @property
    def joint_names(self) -> list[str]:
        return list(self._sk.joint_names)

    @property
    def edges(self) -> list[list[int]]:
        """The skeleton's edges ``[parent, child]``."""
        return [list(e) for e in self._sk.edges]

    @property
    def problems(self) -> list[str]:
        """Why the grid is not a valid SGT (eq. 3 coverage, empty cells); empty when it is."""
        return list(self._verdict["problems"])

    @property
    def empty_cells(self) -> list[list[int]]:
        """``[r, c]`` of every cleared cell."""
        return [[r, c] for r, row in enumerate(self.cells) for c, cell in enumerate(row) if cell == EMPTY]

    @property
    def broken_edges(self) -> list[list[int]]:
        """Skeleton edges whose joints are not grid-adjacent (eq. 2); empty while invalid."""
        return [list(e) for e in self._verdict["broken"]]

    @property
    def kept_edges(self) -> list[list[int]]:
        """Skeleton edges that eq. 2 keeps; empty while invalid."""
        return [e for e in self.edges if e not in self.broken_edges] if self.valid else []

    @property
    def status(self) -> str:
        """One line: invalid with the number of problems, or how many edges eq. 2 keeps."""
        problems, edges = self.problems, len(self._sk.edges)
        if problems:
            return f"Invalid layout: {len(problems)} problem{'s' if len(problems) > 1 else ''}"
        return f"Valid layout; eq. 2 keeps {edges - len(self.broken_edges)}/{edges} skeleton edges"

    @property
    def layout_json(self) -> str:
        """The layout as JSON, or ``""`` while it is invalid."""
        return self.layout.to_json(indent=1) if self.valid else ""

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    # ------------------------------------------------------------------ edits
    def swap(self, a: tuple[int, int], b: tuple[int, int]) -> None:
        """Exchange the contents of cells ``a`` and ``b`` (a drag from cell to cell)."""
        rows = _copy(self.cells)
        (ra, ca), (rb, cb) = self._check_cell(a), self._check_cell(b)
        rows[ra][ca], rows[rb][cb] = rows[rb][cb], rows[ra][ca]
        self._edit(rows)

    def place(self, joint: int, cell: tuple[int, int]) -> None:
        """Put ``joint`` into ``cell``, replacing its content (a palette drop; replicas allowed)."""
        if not 0 <= joint < self._sk.num_joints:
            raise LayoutError(f"joint {joint} is out of range 0..{self._sk.num_joints - 1} for {self._sk.name}")
        rows = _copy(self.cells)
        r, c = self._check_cell(cell)
        rows[r][c] = int(joint)
        self._edit(rows)

    def clear(self, cell: tuple[int, int]) -> None:
        """Empty ``cell`` (the layout is invalid until it is filled again)."""
        rows = _copy(self.cells)
        r, c = self._check_cell(cell)
        rows[r][c] = EMPTY
        self._edit(rows)

    def resize(self, h: int, p: int) -> None:
        """Change the grid to ``h x p``, keeping the cells that still fit; new cells start empty."""
        if not (1 <= h <= _MAX_SIDE and 1 <= p <= _MAX_SIDE):
            raise LayoutError(f"grid shape {h}x{p} is outside 1..{_MAX_SIDE} per side")
        old = self.cells
        rows = [
            [old[r][c] if r < len(old) and c < len(old[0]) else EMPTY for c in range(p)] for r in range(h)
        ]
        self._edit(_copy(rows))

    def set_skeleton(self, name: str) -> None:
        """Switch to a registered skeleton; the grid restarts from a row-major fill that fits its joints."""
        if name not in SKELETONS:
            raise LayoutError(f"unknown skeleton {name!r}; known: {', '.join(SKELETONS)}")
        self.skeleton_name = name

    def set_layout(self, layout: GridLayout) -> None:
        """Replace the edited grid by ``layout`` (undoable)."""
        self._apply(layout.skeleton, layout.to_dict()["cells"], previous=(self._sk, self.cells))

    def undo(self) -> bool:
        """Go back one edit; False when there is nothing to undo."""
        return self._step(self._undo, self._redo)

    def redo(self) -> bool:
        """Redo the last undone edit; False when there is nothing to redo."""
        return self._step(self._redo, self._undo)

    # ------------------------------------------------------------------ files
    def load(self, path: str | os.PathLike[str]) -> bool:
        """Load a layout JSON file. A bad file leaves the grid unchanged, shows why, and returns False."""
        return self._load(Path(path), Path(path).name)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the layout as JSON (atomically); raises :class:`LayoutError` while it is invalid."""
        self.layout.to_json(Path(path), indent=1)
        self.message = f"Saved {Path(path).name}."
        return Path(path)

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _fitting(shape: Sequence[int], num_joints: int) -> tuple[int, int]:
        """``shape`` grown by rows until it holds ``num_joints`` cells."""
        h, p = int(shape[0]), int(shape[1])
        return max(h, -(-num_joints // p)), p

    def _check_cell(self, cell: tuple[int, int]) -> tuple[int, int]:
        r, c = int(cell[0]), int(cell[1])
        h, p = len(self.cells), len(self.cells[0])
        if not (0 <= r < h and 0 <= c < p):
            raise LayoutError(f"cell ({r},{c}) is outside the {h}x{p} grid")
        return r, c

    def _edit(self, rows: Rows) -> None:
        self._apply(self._sk, rows, previous=(self._sk, self.cells))

    def _apply(self, skeleton: Skeleton, rows: Rows, previous: _State | None = None) -> None:
        """Make ``(skeleton, rows)`` the current state (a different ``previous`` goes on the undo stack),
        with its verdict: one trait notification round and one message to the front end."""
        if previous is not None and previous != (skeleton, rows):
            self._undo.append((previous[0], _copy(previous[1])))
            self._redo.clear()
        problems, broken = self._check(skeleton, rows)
        if skeleton.name not in SKELETONS:
            self._unregistered[skeleton.name] = skeleton
        options = list(SKELETONS) + list(self._unregistered)
        self._syncing = True
        try:
            with self.hold_sync(), self.hold_trait_notifications():
                if skeleton != self._sk or not self._skeleton:
                    self._sk = skeleton
                    self._skeleton = {"joint_names": list(skeleton.joint_names), "edges": [list(e) for e in skeleton.edges],
                                      "template": [[round(float(v), 3) for v in xy] for xy in template_pose(skeleton)]}
                self._choices = {"skeletons": options, "max_side": _MAX_SIDE}
                self.skeleton_name = skeleton.name
                self.cells = _copy(rows)
                self._verdict = {"problems": problems, "broken": broken}
                self._history = [len(self._undo), len(self._redo)]
        finally:
            self._syncing = False

    @staticmethod
    def _check(sk: Skeleton, rows: Rows) -> tuple[list[str], list[list[int]]]:
        """Validation (eq. 3 coverage, empty cells) and the eq. 2 broken edges of ``rows``."""
        empty = [(r, c) for r, row in enumerate(rows) for c, cell in enumerate(row) if cell == EMPTY]
        problems = []
        if empty:
            problems.append("empty cells: " + ", ".join(f"({r},{c})" for r, c in empty) + " (drop a joint into them)")
        # An empty cell is checked as a two-joint mixture of joint 0: valid indices, holding no joint (eq. 3).
        problems += GridLayout.check([[[0, 0] if c == EMPTY else c for c in row] for row in rows], sk)
        if problems:
            return problems, []
        return problems, [list(e) for e in GridLayout.from_rows(rows, sk).topology().broken]

    def _step(self, source: list[_State], target: list[_State]) -> bool:
        if not source:
            return False
        target.append((self._sk, _copy(self.cells)))
        self._apply(*source.pop())
        return True

    def _on_cells_edited(self, change: dict[str, Any]) -> None:
        """A new ``cells`` list set from outside (the front end's drag, drop or clear)."""
        if self._syncing:
            return
        rows = change["new"]
        if not (rows and all(isinstance(r, list) and len(r) == len(rows[0]) > 0 for r in rows)):
            self._apply(self._sk, change["old"])
            self.message = "Ignored an edit: cells must be a non-empty list of equal-length rows."
            return
        self._apply(self._sk, rows, previous=(self._sk, change["old"]))

    def _on_skeleton_chosen(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        known = {**SKELETONS, **self._unregistered}
        if change["new"] not in known:
            self._apply(self._sk, self.cells)
            self.message = f"unknown skeleton {change['new']!r}; known: {', '.join(known)}"
            return
        sk = known[change["new"]]
        shape = self._fitting(self.shape, sk.num_joints)
        self._apply(sk, _cyclic_rows(sk.num_joints, shape), previous=(self._sk, self.cells))

    def _on_frontend_msg(self, _widget: Any, content: dict[str, Any], _buffers: list[Any]) -> None:
        op = content.get("op")
        if op == "undo":
            self.undo()
        elif op == "redo":
            self.redo()
        elif op == "resize":
            try:
                self.resize(int(content.get("rows", 0)), int(content.get("cols", 0)))
            except (LayoutError, TypeError, ValueError) as err:
                self.message = f"Ignored a resize: {err}"
        elif op == "load_text":
            self._load(str(content.get("text", "")), str(content.get("name", "upload")))
        elif op == "download":
            self.send({"op": "download", "name": f"layout_{self._sk.name}.json", "text": self.layout_json})

    def _load(self, source: str | Path, name: str) -> bool:
        """Load a layout from a path or a JSON text; a bad one only sets :attr:`message`."""
        try:
            if isinstance(source, str) and not source.lstrip().startswith("{"):
                raise LayoutError("not a gridconv layout: expected a JSON object")
            layout = GridLayout.from_json(source)
        except LayoutError as err:
            self.message = f"Could not load {name}: {err}"
            return False
        self.set_layout(layout)
        self.message = f"Loaded {name}."
        return True

    def describe(self) -> str:
        """The grid as text, one row per line (cleared cells shown as ``.``)."""
        return "\n".join(
            " ".join((cell_label(c, self._sk.joint_names) or ".").ljust(10) for c in row).rstrip() for row in self.cells
        )

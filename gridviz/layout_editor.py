"""Interactive grid-layout editor: the paper's Fig. 2 made editable (section 3.1-3.2, eq. 1-3).

Every edit (swap, replica, clear, resize, skeleton change, undo/redo, load) is a Python method,
so the editor is fully usable and testable without a browser; the ESM front end only renders the
synced state and sends new ``cells`` lists (or ``undo``/``redo``/``load_text`` messages).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from gridconv_core.sgt import GridLayout, LayoutError
from gridconv_core.skeleton import SKELETONS, get_skeleton

from ._common import cell_label, template_pose

__all__ = ["LayoutEditor", "EMPTY"]

EMPTY = -1
"""Value of a cleared cell in :attr:`LayoutEditor.cells`."""

_STATIC = Path(__file__).parent / "static"
_MAX_SIDE = 12
Rows = list[list[Any]]
_State = tuple[str, Rows]


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

    cells = traitlets.List().tag(sync=True)
    skeleton_name = traitlets.Unicode("h36m17").tag(sync=True)
    shape = traitlets.List(traitlets.Int(), [5, 5], minlen=2, maxlen=2).tag(sync=True)
    skeleton_options = traitlets.List(traitlets.Unicode()).tag(sync=True)
    max_side = traitlets.Int(_MAX_SIDE).tag(sync=True)
    joint_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    template = traitlets.List().tag(sync=True)
    edges = traitlets.List().tag(sync=True)
    problems = traitlets.List(traitlets.Unicode()).tag(sync=True)
    empty_cells = traitlets.List().tag(sync=True)
    kept_edges = traitlets.List().tag(sync=True)
    broken_edges = traitlets.List().tag(sync=True)
    status = traitlets.Unicode().tag(sync=True)
    message = traitlets.Unicode().tag(sync=True)
    layout_json = traitlets.Unicode().tag(sync=True)
    hover_joint = traitlets.Int(EMPTY).tag(sync=True)
    can_undo = traitlets.Bool(False).tag(sync=True)
    can_redo = traitlets.Bool(False).tag(sync=True)

    def __init__(
        self,
        layout: GridLayout | None = None,
        skeleton: str = "h36m17",
        shape: tuple[int, int] = (5, 5),
        **kwargs: Any,
    ) -> None:
        super().__init__(skeleton_options=list(SKELETONS), **kwargs)
        self._undo: list[_State] = []
        self._redo: list[_State] = []
        self._syncing = False
        self.observe(self._on_cells_edited, "cells")
        self.observe(self._on_shape_chosen, "shape")
        self.observe(self._on_skeleton_chosen, "skeleton_name")
        self.on_msg(self._on_frontend_msg)
        if layout is not None:
            self._apply(layout.skeleton_name, layout.to_dict()["cells"])
        else:
            sk = get_skeleton(skeleton)
            self._apply(sk.name, _cyclic_rows(sk.num_joints, self._fitting(shape, sk.num_joints)))

    # ------------------------------------------------------------------ results
    @property
    def layout(self) -> GridLayout:
        """The edited layout; raises :class:`LayoutError` listing the problems while it is invalid."""
        if self.problems:
            raise LayoutError("the edited layout is invalid: " + "; ".join(self.problems))
        return GridLayout.from_rows(self.cells, self.skeleton_name, name="edited")

    @property
    def valid(self) -> bool:
        """True when :attr:`layout` would return a layout."""
        return not self.problems

    # ------------------------------------------------------------------ edits
    def swap(self, a: tuple[int, int], b: tuple[int, int]) -> None:
        """Exchange the contents of cells ``a`` and ``b`` (a drag from cell to cell)."""
        rows = _copy(self.cells)
        (ra, ca), (rb, cb) = self._check_cell(a), self._check_cell(b)
        rows[ra][ca], rows[rb][cb] = rows[rb][cb], rows[ra][ca]
        self._edit(rows)

    def place(self, joint: int, cell: tuple[int, int]) -> None:
        """Put ``joint`` into ``cell``, replacing its content (a palette drop; replicas allowed)."""
        if not 0 <= joint < len(self.joint_names):
            raise LayoutError(f"joint {joint} is out of range 0..{len(self.joint_names) - 1} for {self.skeleton_name}")
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
        """Switch skeleton; the grid restarts from a row-major fill that fits its joints."""
        if name not in SKELETONS:
            raise LayoutError(f"unknown skeleton {name!r}; known: {', '.join(SKELETONS)}")
        self.skeleton_name = name

    def set_layout(self, layout: GridLayout) -> None:
        """Replace the edited grid by ``layout`` (undoable)."""
        self._apply(layout.skeleton_name, layout.to_dict()["cells"], previous=(self.skeleton_name, self.cells))

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
        self._apply(self.skeleton_name, rows, previous=(self.skeleton_name, self.cells))

    def _apply(self, skeleton: str, rows: Rows, previous: _State | None = None) -> None:
        """Make ``(skeleton, rows)`` the current state; a different ``previous`` goes on the undo stack."""
        if previous is not None and previous != (skeleton, rows):
            self._undo.append((previous[0], _copy(previous[1])))
            self._redo.clear()
        self._syncing = True
        try:
            with self.hold_trait_notifications():
                self.skeleton_name = skeleton
                self.cells = _copy(rows)
                self.shape = [len(rows), len(rows[0])]
        finally:
            self._syncing = False
        self._refresh()

    def _step(self, source: list[_State], target: list[_State]) -> bool:
        if not source:
            return False
        target.append((self.skeleton_name, _copy(self.cells)))
        self._apply(*source.pop())
        return True

    def _on_cells_edited(self, change: dict[str, Any]) -> None:
        """A new ``cells`` list set from outside (the front end's drag, drop or clear)."""
        if self._syncing:
            return
        rows = change["new"]
        if not (rows and all(isinstance(r, list) and len(r) == len(rows[0]) > 0 for r in rows)):
            self._apply(self.skeleton_name, change["old"])
            self.message = "Ignored an edit: cells must be a non-empty list of equal-length rows."
            return
        self._apply(self.skeleton_name, rows, previous=(self.skeleton_name, change["old"]))

    def _on_shape_chosen(self, change: dict[str, Any]) -> None:
        if not self._syncing and list(change["new"]) != [len(self.cells), len(self.cells[0])]:
            self.resize(*change["new"])

    def _on_skeleton_chosen(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        try:
            sk = get_skeleton(change["new"])
        except KeyError as err:
            self._apply(change["old"], self.cells)
            self.message = str(err.args[0])
            return
        shape = self._fitting((len(self.cells), len(self.cells[0])), sk.num_joints)
        self._apply(sk.name, _cyclic_rows(sk.num_joints, shape), previous=(change["old"], self.cells))

    def _on_frontend_msg(self, _widget: Any, content: dict[str, Any], _buffers: list[Any]) -> None:
        op = content.get("op")
        if op == "undo":
            self.undo()
        elif op == "redo":
            self.redo()
        elif op == "load_text":
            self._load(str(content.get("text", "")), str(content.get("name", "upload")))

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

    def _refresh(self) -> None:
        """Recompute validation (eq. 3 coverage), the eq. 2 topology report and the derived traits."""
        sk = get_skeleton(self.skeleton_name)
        rows = self.cells
        empty = [[r, c] for r, row in enumerate(rows) for c, cell in enumerate(row) if cell == EMPTY]
        problems = []
        if empty:
            problems.append("empty cells: " + ", ".join(f"({r},{c})" for r, c in empty) + " (drop a joint into them)")
        # An empty cell is checked as a two-joint mixture of joint 0: valid indices, holding no joint (eq. 3).
        problems += GridLayout.check([[[0, 0] if c == EMPTY else c for c in row] for row in rows], sk)
        layout = None if problems else GridLayout.from_rows(rows, sk, name="edited")
        report = layout.topology() if layout is not None else None
        kept = [list(e) for e in report.kept] if report is not None else []
        broken = [list(e) for e in report.broken] if report is not None else []
        with self.hold_trait_notifications():
            self.joint_names = list(sk.joint_names)
            self.template = [[round(float(v), 3) for v in xy] for xy in template_pose(sk)]
            self.edges = [list(e) for e in sk.edges]
            self.problems = problems
            self.empty_cells = empty
            self.kept_edges, self.broken_edges = kept, broken
            self.status = self._status_text(problems, broken, len(sk.edges))
            self.layout_json = "" if layout is None else layout.to_json(indent=1)
            self.can_undo, self.can_redo = bool(self._undo), bool(self._redo)

    @staticmethod
    def _status_text(problems: list[str], broken: list[list[int]], num_edges: int) -> str:
        if problems:
            return f"Invalid layout: {len(problems)} problem{'s' if len(problems) > 1 else ''}"
        return f"Valid layout; eq. 2 keeps {num_edges - len(broken)}/{num_edges} skeleton edges"

    def describe(self) -> str:
        """The grid as text, one row per line (cleared cells shown as ``.``)."""
        return "\n".join(
            " ".join((cell_label(c, self.joint_names) or ".").ljust(10) for c in row).rstrip() for row in self.cells
        )

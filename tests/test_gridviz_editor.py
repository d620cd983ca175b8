"""LayoutEditor state transitions without a browser: edits, validation, eq. 2 report, history, files."""
from __future__ import annotations

import json

import anywidget
import ipywidgets
import numpy as np
import pytest

from gridconv_core import SKELETONS, GridLayout, LayoutError, Skeleton, get_skeleton, layout_families
from gridviz import LayoutEditor
from gridviz._common import template_pose
from gridviz.layout_editor import EMPTY

# Five columns hanging from the spine, as the paper's Fig. 2 (one-hot, all 17 joints, replicas).
ROWS = [
    [7, 7, 7, 7, 7],
    [0, 8, 8, 8, 0],
    [1, 14, 8, 11, 4],
    [2, 15, 9, 12, 5],
    [3, 16, 10, 13, 6],
]


@pytest.fixture()
def editor() -> LayoutEditor:
    return LayoutEditor(GridLayout.from_rows(ROWS, "h36m17"))


def test_initial_state_is_the_given_layout(editor: LayoutEditor) -> None:
    assert editor.cells == ROWS
    assert editor.shape == [5, 5]
    assert editor.valid and editor.problems == []
    assert editor.layout == GridLayout.from_rows(ROWS, "h36m17", name="edited")
    assert editor.joint_names[9] == "Nose"
    assert not editor.can_undo and not editor.can_redo


def test_default_editor_fills_a_grid_that_fits_the_skeleton() -> None:
    ed = LayoutEditor(skeleton="h36m32", shape=(5, 5))
    assert ed.shape == [7, 5]  # 32 joints need 7 rows of 5
    assert ed.valid
    assert sorted({c for row in ed.cells for c in row}) == list(range(32))


def test_topology_report_matches_eq2(editor: LayoutEditor) -> None:
    report = editor.layout.topology()
    assert editor.kept_edges == [list(e) for e in report.kept]
    assert editor.broken_edges == [list(e) for e in report.broken]
    assert editor.status.startswith(f"Valid layout; eq. 2 keeps {len(report.kept)}/16")
    editor.swap((4, 0), (4, 4))  # RAnkle <-> LAnkle breaks both knee-ankle edges
    assert [2, 3] in editor.broken_edges and [5, 6] in editor.broken_edges
    assert [2, 3] not in editor.kept_edges


def test_swap_exchanges_cells_and_stays_valid(editor: LayoutEditor) -> None:
    editor.swap((2, 0), (3, 4))
    assert editor.cells[2][0] == 5 and editor.cells[3][4] == 1
    assert editor.valid
    assert editor.layout.cells[2][0] == (5,)


def test_place_adds_a_replica(editor: LayoutEditor) -> None:
    editor.place(13, (0, 0))
    assert editor.cells[0][0] == 13
    assert int(editor.layout.occurrences[13]) == 2


def test_clearing_the_only_copy_of_a_joint_is_invalid_and_explained(editor: LayoutEditor) -> None:
    editor.clear((4, 2))  # the only Head cell
    assert editor.cells[4][2] == EMPTY
    assert not editor.valid
    assert editor.empty_cells == [[4, 2]]
    assert any("empty cells: (4,2)" in p for p in editor.problems)
    assert any("10 Head" in p for p in editor.problems)
    assert editor.status.startswith("Invalid layout")
    assert editor.layout_json == ""
    with pytest.raises(LayoutError, match="Head"):
        _ = editor.layout


def test_clearing_a_replica_still_needs_the_cell_filled(editor: LayoutEditor) -> None:
    editor.clear((0, 0))  # Spine has four other copies
    assert editor.problems == ["empty cells: (0,0) (drop a joint into them)"]
    editor.place(7, (0, 0))
    assert editor.valid


def test_undo_redo_walks_the_history(editor: LayoutEditor) -> None:
    editor.swap((2, 0), (2, 4))
    editor.clear((1, 1))
    assert editor.can_undo
    assert editor.undo() and editor.cells[1][1] == 8
    assert editor.can_redo
    assert editor.undo() and editor.cells == ROWS
    assert not editor.undo()  # nothing left
    assert editor.redo() and editor.cells[2][0] == 4
    editor.place(0, (0, 0))  # a new edit drops the redo branch
    assert not editor.can_redo and not editor.redo()


def test_front_end_cells_edit_is_recorded_and_malformed_edit_is_ignored(editor: LayoutEditor) -> None:
    rows = [list(r) for r in ROWS]
    rows[0][0], rows[4][4] = rows[4][4], rows[0][0]
    editor.cells = rows  # what the JS sends after a drag
    assert editor.cells[0][0] == 6 and editor.can_undo
    editor.cells = [[0, 1], [2]]
    assert editor.cells[0][0] == 6
    assert editor.message.startswith("Ignored an edit")
    editor.undo()
    assert editor.cells == ROWS


def test_frontend_messages_drive_undo_and_upload(editor: LayoutEditor) -> None:
    editor.swap((0, 0), (4, 4))
    editor._on_frontend_msg(editor, {"op": "undo"}, [])
    assert editor.cells == ROWS
    editor._on_frontend_msg(editor, {"op": "load_text", "text": "not json", "name": "x.json"}, [])
    assert editor.message.startswith("Could not load x.json") and editor.cells == ROWS


def test_download_message_answers_with_the_layout_json(editor: LayoutEditor, monkeypatch) -> None:
    replies: list[dict] = []
    monkeypatch.setattr(editor, "send", lambda content, buffers=None: replies.append(content))
    editor._on_frontend_msg(editor, {"op": "download"}, [])
    assert replies[0]["op"] == "download" and replies[0]["name"] == "layout_h36m17.json"
    assert GridLayout.from_json(replies[0]["text"]).cells == editor.layout.cells


def test_an_unregistered_skeleton_is_edited_and_chosen_again() -> None:
    tree = Skeleton("tree5", ("Root", "A", "B", "LArm", "RArm"), (-1, 0, 1, 1, 1))
    assert tree.name not in SKELETONS
    ed = LayoutEditor(layout_families.auto(tree))
    assert ed.skeleton == tree and ed.valid and ed._choices["skeletons"][-1] == "tree5"
    assert ed._skeleton["joint_names"] == list(tree.joint_names)
    ed.skeleton_name = "coco17"  # the dropdown
    ed.skeleton_name = "tree5"
    assert ed.skeleton == tree and ed.valid and ed.layout.skeleton == tree
    assert "tree5" not in SKELETONS  # nothing was registered


def test_resize_keeps_what_fits(editor: LayoutEditor) -> None:
    editor.resize(6, 4)
    assert editor.shape == [6, 4]
    assert [row[:4] for row in ROWS] == [row for row in editor.cells[:5]]
    assert editor.cells[5] == [EMPTY] * 4
    assert any("joints never appear in a cell: 4 LHip, 5 LKnee, 6 LAnkle" in p for p in editor.problems)
    editor.undo()
    assert editor.shape == [5, 5] and editor.cells == ROWS


def test_resize_message_from_the_front_end_resizes(editor: LayoutEditor) -> None:
    editor._on_frontend_msg(editor, {"op": "resize", "rows": 3, "cols": 3}, [])
    assert editor.shape == [3, 3] and len(editor.cells) == 3 and len(editor.cells[0]) == 3
    assert any("fewer than the 17 joints" in p for p in editor.problems)
    editor._on_frontend_msg(editor, {"op": "resize", "rows": 0, "cols": 3}, [])
    assert editor.shape == [3, 3] and editor.message.startswith("Ignored a resize")


# The state the front end edits or cannot compute; everything else is derived.
SYNCED = {"cells", "skeleton_name", "message", "_skeleton", "_choices", "_verdict", "_history"}
DERIVED = ["shape", "joint_names", "edges", "problems", "empty_cells", "kept_edges", "broken_edges", "status",
           "layout_json", "can_undo", "can_redo", "skeleton"]


def test_editor_is_an_anywidget_that_syncs_only_its_source_of_truth(editor: LayoutEditor) -> None:
    assert isinstance(editor, ipywidgets.Widget) and isinstance(editor, anywidget.AnyWidget)
    base = set(anywidget.AnyWidget.class_trait_names(sync=True)) | {"_esm", "_css", "_anywidget_id"}  # the ESM itself
    own = set(editor.trait_names(sync=True)) - base
    assert own == SYNCED, f"synced traits beyond the source of truth: {sorted(own - SYNCED)}"
    assert "hover_joint" not in editor.trait_names()  # hover lives in the front end only
    for name in DERIVED:
        assert name not in editor.trait_names(), f"{name} is a trait; it is derived"
        with pytest.raises(AttributeError):
            setattr(editor, name, None)


def test_each_edit_is_one_message_to_the_front_end(editor: LayoutEditor, monkeypatch) -> None:
    sent: list[set[str]] = []
    monkeypatch.setattr(editor, "send_state", lambda key=None: sent.append({key} if isinstance(key, str) else set(key)))
    editor.swap((4, 2), (4, 0))  # Head <-> RAnkle
    assert sent == [{"cells", "_verdict", "_history"}]
    assert sent[0] <= SYNCED
    sent.clear()
    editor.swap((4, 0), (4, 2))  # back: cells change, the history grows, the verdict changes back
    editor.undo()
    assert len(sent) == 2
    assert editor._verdict == {"problems": editor.problems, "broken": editor.broken_edges}


def test_skeleton_change_restarts_and_is_undoable(editor: LayoutEditor) -> None:
    editor.skeleton_name = "humaneva15"  # as the dropdown does
    assert editor.skeleton_name == "humaneva15" and editor.valid
    assert editor.joint_names == list(get_skeleton("humaneva15").joint_names)
    assert editor.layout.skeleton_name == "humaneva15"
    editor.undo()
    assert editor.skeleton_name == "h36m17" and editor.cells == ROWS
    with pytest.raises(LayoutError, match="unknown skeleton"):
        editor.set_skeleton("nope")


def test_bad_edit_arguments_raise_layout_errors(editor: LayoutEditor) -> None:
    with pytest.raises(LayoutError, match=r"cell \(5,0\) is outside the 5x5 grid"):
        editor.swap((5, 0), (0, 0))
    with pytest.raises(LayoutError, match="joint 17 is out of range"):
        editor.place(17, (0, 0))
    with pytest.raises(LayoutError, match="outside 1..12"):
        editor.resize(0, 5)
    assert editor.cells == ROWS and not editor.can_undo


def test_save_then_load_round_trips(editor: LayoutEditor, tmp_path) -> None:
    editor.swap((2, 0), (2, 4))
    path = editor.save(tmp_path / "edited.json")
    other = LayoutEditor()
    assert other.load(path)
    assert other.cells == editor.cells and other.message == "Loaded edited.json."
    assert json.loads(editor.layout_json)["cells"] == editor.cells


def test_save_refuses_an_invalid_layout(editor: LayoutEditor, tmp_path) -> None:
    editor.clear((4, 2))
    with pytest.raises(LayoutError):
        editor.save(tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "malformed layout JSON"),
        ('{"skeleton": "h36m17", "cells": [[0, 1], [2]]}', "unequal"),
        ('{"skeleton": "h36m17", "cells": [[0, 99]]}', "out of range"),
        ('{"skeleton": "martian", "cells": [[0]]}', "unknown skeleton"),
    ],
)
def test_malformed_file_keeps_the_layout_and_shows_why(editor: LayoutEditor, tmp_path, text: str, reason: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(text)
    assert not editor.load(path)
    assert editor.cells == ROWS and editor.valid
    assert editor.message.startswith("Could not load broken.json") and reason in editor.message
    assert not editor.can_undo


def test_mixture_cells_are_kept_and_labelled() -> None:
    rows = [list(r) for r in ROWS]
    rows[2][2] = [8, 9]  # the official Thorax-Nose midpoint cell
    ed = LayoutEditor(GridLayout.from_rows(rows))
    assert ed.cells[2][2] == [8, 9] and ed.valid
    assert "Thorax+Nose" in ed.describe()
    ed.swap((2, 2), (0, 0))
    assert ed.layout.cells[0][0] == (8, 9)


@pytest.mark.parametrize("name", ["h36m17", "h36m32", "coco17", "humaneva15"])
def test_template_pose_is_finite_and_spread_out(name: str) -> None:
    xy = template_pose(name)
    sk = get_skeleton(name)
    assert xy.shape == (sk.num_joints, 2) and np.isfinite(xy).all()
    lengths = [np.linalg.norm(xy[a] - xy[b]) for a, b in sk.edges]
    assert max(lengths) > 0.1
    assert xy[:, 1].max() - xy[:, 1].min() > 0.5  # a standing figure, not a dot
    for i in sk.left:  # left/right mirror each other across x = 0
        j = sk.flip_permutation[i]
        if j != i:
            assert xy[i, 0] == pytest.approx(-xy[j, 0]) and xy[i, 1] == pytest.approx(xy[j, 1])

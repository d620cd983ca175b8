"""Unit tests (no browser) of GridGraphView, AttentionViewer, PoseViewer and their static figures."""
from __future__ import annotations

import ipywidgets
import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from gridconv_core import H36M17, GLNConfig, build_model, compare_graphs
from gridconv_core.data import PoseSet
from gridconv_core.layout_families import global_shuffle, handcrafted, official_prior
from gridviz import AutoGridsWatcher
from gridviz._common import GridvizError
from gridviz.attention_viewer import AttentionViewer, compute_attention
from gridviz.figures import (
    COLORS,
    attention_figure,
    attention_mosaic,
    attention_variance,
    graph_figure,
    layout_figure,
    metric_bar_figure,
    pose_figure,
)
from gridviz.grid_graph_view import GridGraphView
from gridviz.layout_editor import LayoutEditor
from gridviz.pose_viewer import ALL_ACTIONS, PoseViewer


def _edge_count(trace) -> int:
    """Edges drawn by one line trace: two points and a gap per edge."""
    assert len(trace.x) % 3 == 0
    return len(trace.x) // 3


def _trace(fig, prefix: str):
    (found,) = [t for t in fig.data if (t.name or "").startswith(prefix)]
    return found


# ---------------------------------------------------------------------- grid -> graph (Fig. 6)
@pytest.mark.parametrize("layout", [handcrafted(), official_prior("learnt_type2"), global_shuffle(handcrafted(), seed=3)],
                         ids=["handcrafted", "learnt_type2", "shuffled"])
@pytest.mark.parametrize("diagonal", [False, True])
def test_graph_figure_draws_every_edge_of_the_summary(layout, diagonal):
    summary = compare_graphs(layout, diagonal=diagonal)
    fig = graph_figure(layout, diagonal=diagonal)
    long = set(summary.long_distance)
    assert _edge_count(_trace(fig, "skeleton edge kept")) == len(summary.kept)
    assert _edge_count(_trace(fig, "skeleton edge lost")) == len(summary.lost)
    assert _edge_count(_trace(fig, "new edge")) == len(summary.new) - len(long)
    assert _edge_count(_trace(fig, "long-distance edge")) == len(long)
    assert _trace(fig, "skeleton edge kept").line.color == COLORS["kept"]
    assert _trace(fig, "skeleton edge lost").line.color == COLORS["lost"]
    assert _trace(fig, "new edge").line.color == COLORS["new"]
    drawn = [_trace(fig, name).line.color for name in ("skeleton edge kept", "skeleton edge lost", "new edge", "long-distance")]
    assert len(set(drawn)) == 4  # the four edge kinds are told apart in the drawing itself
    assert f"kept {len(summary.kept)}" in fig.layout.title.text
    assert f"lost {len(summary.lost)}" in fig.layout.title.text


def test_graph_figure_edge_ends_sit_on_the_joint_nodes():
    layout = official_prior("learnt_type2")
    fig = graph_figure(layout)
    nodes = _trace(fig, "joints")
    names = list(nodes.text)
    kept = _trace(fig, "skeleton edge kept")
    summary = compare_graphs(layout)
    a, b = summary.kept[0]
    assert (kept.x[0], kept.y[0]) == (nodes.x[a], nodes.y[a])
    assert (kept.x[1], kept.y[1]) == (nodes.x[b], nodes.y[b])
    assert kept.text[0] == f"{names[a]} - {names[b]}"
    # Long-distance edges are called out by name in the figure.
    listing = fig.layout.annotations[0].text
    for i, j in summary.long_distance:
        assert f"{names[i]} – {names[j]}" in listing


def test_grid_graph_view_toggles_and_layout_setter_update_the_figure():
    view = GridGraphView(handcrafted())
    four = compare_graphs(handcrafted())
    eight = compare_graphs(handcrafted(), diagonal=True)
    assert _edge_count(_trace(view.figure, "new edge")) + _edge_count(_trace(view.figure, "long-distance")) == len(four.new)
    view.diagonal = True
    assert _edge_count(_trace(view.figure, "new edge")) + _edge_count(_trace(view.figure, "long-distance")) == len(eight.new)
    assert len(eight.new) > len(four.new)
    template_x = list(_trace(view.figure, "joints").x)
    view.spring = True
    assert list(_trace(view.figure, "joints").x) != template_x
    learnt = official_prior("learnt_type2")
    traces = list(view.figure.data)
    view.grid_layout = learnt
    assert view.grid_layout is learnt
    assert all(a is b for a, b in zip(traces, view.figure.data))  # redrawn in place
    assert _edge_count(_trace(view.figure, "skeleton edge lost")) == len(compare_graphs(learnt, diagonal=True).lost)
    assert f"<b>{compare_graphs(learnt, diagonal=True).diameter}</b>" in view.summary
    assert view.message == ""
    view._neighbourhood.value = False  # the toggle, as a click in the page sets it
    assert view.diagonal is False


def test_grid_graph_view_shows_bad_input_and_keeps_the_drawing():
    view = GridGraphView(handcrafted())
    before = [t.x for t in view.figure.data]
    view.grid_layout = [[0, 1], [2, 3]]
    assert "Not a grid layout" in view.message and "list" in view.message
    assert [t.x for t in view.figure.data] == before
    assert GridGraphView().figure.data == () and "No layout yet" in GridGraphView().message


def test_grid_graph_view_follows_a_linked_layout_editor():
    editor = LayoutEditor(handcrafted())
    view = GridGraphView()
    view.link(editor)
    assert view.grid_layout == editor.layout and view.message == ""
    editor.swap((4, 2), (4, 0))  # Head <-> RAnkle: breaks the Nose-Head and RKnee-RAnkle edges
    assert view.grid_layout == editor.layout
    assert _edge_count(_trace(view.figure, "skeleton edge lost")) == len(compare_graphs(editor.layout).lost) > 0
    drawn = [t.x for t in view.figure.data]
    editor.clear((0, 0))
    editor.clear((1, 0))
    editor.clear((1, 4))  # no Pelvis left: invalid
    assert not editor.valid
    assert "invalid" in view.message and "Pelvis" in view.message
    assert [t.x for t in view.figure.data] == drawn


def test_layout_figure_names_every_cell():
    layout = handcrafted()
    fig = layout_figure(layout)
    text = np.array(fig.data[0].text)
    assert text.shape == layout.shape
    assert text[4, 2] == "Head" and text[2, 2] == "Thorax+Nose"
    assert fig.layout.yaxis.autorange == "reversed"


# ---------------------------------------------------------------------- attention (Figs. E-G)
def test_attention_mosaic_places_each_tap_in_its_cell_block():
    rng = np.random.default_rng(0)
    maps = rng.random((3, 9, 5, 4))
    mosaic = attention_mosaic(maps)
    assert mosaic.shape == (3, 15, 12)
    for b, k, h, p in [(0, 0, 0, 0), (1, 5, 2, 3), (2, 8, 4, 1), (0, 3, 1, 2)]:
        assert mosaic[b, h * 3 + k // 3, p * 3 + k % 3] == maps[b, k, h, p]
    assert np.array_equal(np.sort(mosaic.ravel()), np.sort(maps.ravel()))


def test_attention_variance_ranks_the_most_varied_taps():
    rng = np.random.default_rng(1)
    maps = rng.random((6, 9, 5, 5)) * 0.01
    maps[:, 7, 3, 1] = np.linspace(0, 1, 6)  # tap (2, 1) of cell (3, 1) varies most
    maps[:, 0, 0, 4] = np.linspace(0, 0.5, 6)
    top = attention_variance(maps, top=2)
    assert (top[0].row, top[0].col, top[0].tap_row, top[0].tap_col) == (3, 1, 2, 1)
    assert (top[1].row, top[1].col, top[1].tap_row, top[1].tap_col) == (0, 4, 0, 0)
    assert top[0].variance == pytest.approx(np.var(np.linspace(0, 1, 6)))


def test_attention_figure_rejects_bad_maps_with_a_clear_error():
    with pytest.raises(GridvizError, match="expected"):
        attention_figure(np.zeros((9, 5)))
    with pytest.raises(GridvizError, match="square"):
        attention_figure(np.zeros((2, 8, 5, 5)))
    with pytest.raises(GridvizError, match="out of range"):
        attention_figure(np.zeros((2, 9, 5, 5)), sample=2)


@pytest.fixture(scope="module")
def dgridconv():
    torch.manual_seed(0)
    return build_model(GLNConfig(channels=16))


def _inputs(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, H36M17.num_joints, 2, generator=torch.Generator().manual_seed(seed))


def test_attention_viewer_mosaic_equals_the_models_maps(dgridconv):
    x = _inputs(4)
    viewer = AttentionViewer(dgridconv, x, labels=["a", "b", "c", "d"])
    dgridconv.eval()
    with torch.no_grad():
        expected = {k: v.numpy() for k, v in dgridconv.attention_maps(x).items()}
    assert list(viewer.maps) == list(expected) and viewer.message == ""
    for layer in (list(expected)[0], list(expected)[-1]):
        viewer.layer = layer
        viewer.sample = 2
        z = np.array(viewer.figure.data[0].z)
        m = expected[layer]
        k = int(np.sqrt(m.shape[1]))
        assert z.shape == (m.shape[2] * k, m.shape[3] * k)
        np.testing.assert_allclose(z[1 * k + 2, 3 * k + 0], m[2, 2 * k + 0, 1, 3], rtol=1e-6)
        np.testing.assert_allclose(z, attention_mosaic(m[2]), rtol=1e-6)
    viewer.mode = "difference"
    viewer.minus = 0
    np.testing.assert_allclose(np.array(viewer.figure.data[0].z),
                               attention_mosaic(expected[viewer.layer][2] - expected[viewer.layer][0]), atol=1e-6)
    viewer.mode = "variance"
    var = expected[viewer.layer].var(axis=0)
    np.testing.assert_allclose(np.array(viewer.figure.data[0].z), attention_mosaic(var), rtol=1e-5, atol=1e-9)
    best = np.unravel_index(var.argmax(), var.shape)
    k = int(np.sqrt(var.shape[0]))
    top = viewer.ranked[0]
    assert (top.row, top.col, top.tap_row * k + top.tap_col) == (best[1], best[2], best[0])
    assert top.variance == pytest.approx(float(var.max()), rel=1e-5)
    assert len(viewer.figure.layout.shapes) > 0


def test_attention_viewer_restores_training_mode_and_accepts_new_inputs(dgridconv):
    dgridconv.train()
    viewer = AttentionViewer(dgridconv, _inputs(3))
    assert dgridconv.training
    first = np.array(viewer.figure.data[0].z)
    viewer.set_inputs(_inputs(3, seed=5))
    assert not np.allclose(np.array(viewer.figure.data[0].z), first)


def test_attention_viewer_shows_wrong_inputs_in_the_widget(dgridconv):
    viewer = AttentionViewer(dgridconv, np.zeros((4, 16, 2)))
    assert "No attention maps" in viewer.message and "(B, 17, 2)" in viewer.message
    assert viewer.figure.data == ()
    viewer.set_inputs(_inputs(2), labels=["only one"])
    assert "1 labels for 2" in viewer.message


def test_attention_viewer_explains_a_model_without_attention():
    vanilla = build_model(GLNConfig(model="gridconv", channels=16))
    viewer = AttentionViewer(vanilla, _inputs(2))
    assert "no kernel attention" in viewer.message or "no D-GridConv layer" in viewer.message
    with pytest.raises(GridvizError):
        compute_attention(torch.nn.Linear(2, 2), _inputs(2))


# ---------------------------------------------------------------------- poses
def _poses(n: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    gt = rng.normal(size=(n, 17, 3)) * 0.3
    pred = gt + rng.normal(size=gt.shape) * 0.02
    pose2d = rng.random((n, 17, 2))
    actions = np.array(["Walking", "Sitting"] * (n // 2))
    return pose2d, gt, pred, actions


def test_pose_figure_flips_camera_y_and_colours_joints_by_error():
    pose2d, gt, pred, _ = _poses()
    fig = pose_figure(pred[0], gt[0], pose2d[0], H36M17)
    g = _trace(fig, "ground-truth joints")
    np.testing.assert_allclose(g.x, gt[0, :, 0])
    np.testing.assert_allclose(g.y, gt[0, :, 2])
    np.testing.assert_allclose(g.z, -gt[0, :, 1])
    err = np.linalg.norm(pred[0] - gt[0], axis=1) * 1000
    np.testing.assert_allclose(_trace(fig, "joint error").marker.color, err)
    assert f"MPJPE {err.mean():.1f} mm" in fig.layout.title.text
    assert fig.layout.scene.aspectmode == "data" and fig.layout.yaxis.autorange == "reversed"
    with pytest.raises(GridvizError, match=r"\(17, 3\)"):
        pose_figure(pred[0, :16], gt[0], pose2d[0])


def test_pose_viewer_browses_by_action_and_frame():
    pose2d, gt, pred, actions = _poses()
    viewer = PoseViewer(pose2d, gt, pred, actions)
    assert viewer.action == ALL_ACTIONS and viewer.index == 0
    viewer.action = "Sitting"
    assert viewer.index == 1
    viewer.frame = 2
    assert viewer.index == 5
    np.testing.assert_allclose(_trace(viewer.figure, "ground-truth joints").x, gt[5, :, 0])
    np.testing.assert_allclose(np.array(viewer.figure.data[1].x), pose2d[5, :, 0])
    with pytest.raises(GridvizError, match="out of range"):
        viewer.frame = 3
    assert "Sitting" in viewer.figure.layout.title.text
    sitting = np.linalg.norm(pred[1::2] - gt[1::2], axis=-1).mean() * 1000
    assert f"action MPJPE {sitting:.1f} mm" in viewer.summary


def test_pose_viewer_from_a_poseset_and_bad_inputs():
    pose2d, gt, pred, actions = _poses(4)
    n = len(actions)
    poses = PoseSet(pose2d, gt, H36M17, np.array(["S9"] * n), actions, np.array([f"{a} 1" for a in actions]),
                    np.array(["54138969"] * n), np.arange(n))
    viewer = PoseViewer.from_poses(poses, torch.as_tensor(pred))
    viewer.action = "Walking"
    viewer.frame = 1
    assert viewer.index == 2 and "S9 Walking 1 frame 2" in viewer.figure.layout.title.text
    broken = PoseViewer(pose2d, gt, pred[:, :16], actions)
    assert "Cannot show these poses" in broken.message and "pred has shape (4, 16, 3)" in broken.message
    assert broken.figure.data == ()
    assert "actions has shape (3,)" in PoseViewer(pose2d, gt, None, actions[:3]).message


# ---------------------------------------------------------------------- ablation bars
def test_metric_bar_figure_groups_columns_and_rejects_bad_tables():
    table = {"handcrafted": {"P1": 47.9, "P2": 37.9}, "AutoGrids": {"P1": 47.6, "P2": 37.2}}
    fig = metric_bar_figure(table)
    assert [t.name for t in fig.data] == ["P1", "P2"]
    assert list(fig.data[1].y) == [37.9, 37.2] and list(fig.data[0].x) == ["handcrafted", "AutoGrids"]
    assert len(metric_bar_figure({"a": 1.0, "b": 2.0}).data) == 1
    with pytest.raises(GridvizError):
        metric_bar_figure({"a": "x"})
    with pytest.raises(GridvizError):
        metric_bar_figure({})


# ---------------------------------------------------------------------- one widget idiom, in-place updates
def _widgets(model) -> list[ipywidgets.Widget]:
    pose2d, gt, pred, actions = _poses()
    return [LayoutEditor(handcrafted()), AutoGridsWatcher((5, 5)), GridGraphView(handcrafted()),
            AttentionViewer(model, _inputs(2)), PoseViewer(pose2d, gt, pred, actions)]


def test_every_widget_is_an_ipywidgets_widget_with_traitlet_state(dgridconv):
    state = {LayoutEditor: ["cells", "skeleton_name"], AutoGridsWatcher: ["index", "log"],
             GridGraphView: ["grid_layout", "diagonal", "spring"], AttentionViewer: ["layer", "mode", "sample", "minus"],
             PoseViewer: ["action", "frame"]}
    for widget in _widgets(dgridconv):
        assert isinstance(widget, ipywidgets.DOMWidget), f"{type(widget).__name__} is not an ipywidgets widget"
        assert widget.model_id  # a live widget model the front end renders
        assert not hasattr(widget, "widget")
        (names,) = [v for k, v in state.items() if isinstance(widget, k)]
        for name in names:
            assert widget.has_trait(name), f"{type(widget).__name__}.{name} is not a traitlet"


def _count_messages(fig: go.FigureWidget, monkeypatch) -> dict[str, int]:
    """Count the plotly messages a FigureWidget sends to the front end, by kind."""
    counts: dict[str, int] = {}
    for kind in ("addTraces", "deleteTraces", "update", "restyle", "relayout"):
        send = getattr(fig, f"_send_{kind}_msg")

        def counted(*args, _kind=kind, _send=send, **kwargs):
            counts[_kind] = counts.get(_kind, 0) + 1
            return _send(*args, **kwargs)

        monkeypatch.setattr(fig, f"_send_{kind}_msg", counted)
    return counts


def test_pose_viewer_updates_its_figure_in_place_and_keeps_the_camera(monkeypatch):
    pose2d, gt, pred, actions = _poses()
    viewer = PoseViewer(pose2d, gt, pred, actions)
    figure, traces = viewer.figure, list(viewer.figure.data)
    assert figure.layout.uirevision  # plotly.js keeps the user's view across updates
    figure.layout.scene.camera.eye = dict(x=2.0, y=0.1, z=0.3)  # what a drag in the 3D view syncs back
    counts = _count_messages(figure, monkeypatch)
    for position in (1, 2, 3):
        viewer.frame = position
        assert viewer.figure is figure
        assert all(a is b for a, b in zip(traces, figure.data)) and len(figure.data) == len(traces)
        np.testing.assert_allclose(_trace(figure, "ground-truth joints").x, gt[viewer.index, :, 0])
    assert counts == {"update": 3}  # one message per frame: no new figure, no trace re-sent
    assert (figure.layout.scene.camera.eye.x, figure.layout.scene.camera.eye.y) == (2.0, 0.1)


def test_watcher_redraws_in_place():
    hist = np.full((3, 25, 17), 1 / 17)
    w = AutoGridsWatcher.from_history(hist, (5, 5))
    heat, hard = w.figure.data[0], w.hard_figure.data[0]
    w.index = 0
    w.log = True
    assert w.figure.data[0] is heat and w.hard_figure.data[0] is hard

"""Static plotly figures shared by the gridviz widgets and the papermill reports.

Every widget draws through these builders (one code path), so a report notebook that calls
``graph_figure(layout)`` shows exactly what ``GridGraphView`` shows.

Display conventions:

* Grids are drawn with row 0 on top, as in the paper's Fig. 2.
* Skeleton templates face the viewer: the subject's right side is on the viewer's left.
* 3D poses arrive in camera coordinates (x right, y **down**, z forward, metres). They are
  displayed as ``(x, z, -y)`` so that "up" in the scene is up for the subject and depth runs
  into the screen; 2D inputs (image coordinates, y down) are drawn with a reversed y axis.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import Tensor

from gridconv_core import GridLayout, Skeleton, compare_graphs, get_skeleton

from ._common import GridvizError, cell_label, template_pose

__all__ = [
    "COLORS",
    "TapVariance",
    "node_positions",
    "grid_figure",
    "layout_figure",
    "sprob_array",
    "sprob_figure",
    "graph_figure",
    "attention_mosaic",
    "attention_variance",
    "attention_figure",
    "pose_figure",
    "metric_bar_figure",
    "update_figure_widget",
]

COLORS: dict[str, str] = {
    "kept": "#2a9d8f",  # skeleton edge preserved by the grid (eq. 2 holds for it)
    "lost": "#e63946",  # skeleton edge the grid breaks
    "new": "#f4a261",  # grid neighbours that are not a skeleton edge
    "long": "#7b2cbf",  # new edge between joints far apart on the skeleton
    "left": "#1f77b4",
    "right": "#d62728",
    "centre": "#4b5563",
    "gt": "#9ca3af",
}
_FONT = dict(family="Helvetica, Arial, sans-serif", size=12)


def _array(x: np.ndarray | Tensor | Sequence[float], name: str) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().float().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise GridvizError(f"{name} must be a numeric array, got {type(x).__name__}") from None


def _base_layout(title: str, **kw: object) -> dict[str, object]:
    """Shared layout; a constant ``uirevision`` makes plotly.js keep the user's zoom, legend and camera
    across in-place updates (:func:`update_figure_widget`)."""
    return dict(
        title=dict(text=title, x=0.02, xanchor="left", font=dict(size=15)),
        font=_FONT,
        template="plotly_white",
        margin=dict(l=40, r=20, t=60, b=40),
        uirevision="gridviz",
        **kw,
    )


# ---------------------------------------------------------------------- skeleton drawing
def node_positions(skeleton: str | Skeleton, spring: bool = False, seed: int = 0) -> np.ndarray:
    """2D drawing positions ``(J, 2)`` of a skeleton's joints: its front-view template, or a seeded
    spring layout of the skeleton tree with ``spring=True``."""
    sk = get_skeleton(skeleton)
    if not spring:
        return template_pose(sk)
    tree = nx.Graph(list(sk.edges))
    tree.add_nodes_from(range(sk.num_joints))
    placed = nx.spring_layout(tree, seed=seed)
    return np.array([placed[i] for i in range(sk.num_joints)])


def _label_side(sk: Skeleton, j: int) -> str:
    """Text position of a joint's label, away from the body's midline."""
    return "middle left" if j in sk.right else "middle right" if j in sk.left else "top right"


def _side_color(sk: Skeleton, j: int) -> str:
    return COLORS["left"] if j in sk.left else COLORS["right"] if j in sk.right else COLORS["centre"]


# ---------------------------------------------------------------------- grids (Fig. 2)
Cell = int | Sequence[int]


def _joints(cell: Cell) -> list[int]:
    """Joints of one cell: a joint index, a mixture list, or ``-1`` (empty)."""
    return [j for j in ([cell] if isinstance(cell, (int, np.integer)) else list(cell)) if j != -1]


def grid_figure(
    cells: Sequence[Sequence[Cell]],
    skeleton: str | Skeleton,
    title: str = "",
    changed: Sequence[tuple[int, int]] = (),
) -> go.Figure:
    """The grid renderer of every gridviz view: an ``H x P`` table of joint names (paper Fig. 2).

    ``cells`` hold a joint index, a list of indices (a mixture cell) or ``-1`` (empty) and need not
    form a valid layout (an AutoGrids hard assignment may miss joints, eq. 5). Cells are coloured by
    body side, row 0 on top; ``changed`` cells get an orange outline.
    """
    sk = get_skeleton(skeleton)
    h, p = len(cells), len(cells[0])

    def side(cell: Cell) -> float:
        js = _joints(cell)
        return np.nan if not js else 0.0 if all(j in sk.left for j in js) else 2.0 if all(j in sk.right for j in js) else 1.0

    scale = [[0.0, COLORS["left"]], [0.5, COLORS["centre"]], [1.0, COLORS["right"]]]
    fig = go.Figure(go.Heatmap(
        z=[[side(c) for c in row] for row in cells], text=[[cell_label(c, sk.joint_names) for c in row] for row in cells],
        texttemplate="%{text}", textfont=dict(color="white", size=12),
        colorscale=scale, zmin=0, zmax=2, showscale=False, xgap=3, ygap=3,
        hovertemplate="row %{y}, col %{x}<br>%{text}<extra></extra>",
    ))
    outline = dict(color="#e8710a", width=4)
    fig.update_layout(**_base_layout(title, width=100 * p + 120, height=72 * h + 120, shapes=[
        dict(type="rect", xref="x", yref="y", x0=c - 0.5, x1=c + 0.5, y0=r - 0.5, y1=r + 0.5, line=outline)
        for r, c in changed]))
    fig.update_xaxes(dtick=1, showgrid=False, zeroline=False, title="col", constrain="domain")
    fig.update_yaxes(dtick=1, showgrid=False, zeroline=False, autorange="reversed", title="row",
                     scaleanchor="x", scaleratio=1)
    return fig


def layout_figure(layout: GridLayout, title: str | None = None) -> go.Figure:
    """The ``H x P`` grid pose of a layout (paper Fig. 2): joint names per cell, coloured by body side."""
    h, p = layout.shape
    return grid_figure(layout.cells, layout.skeleton,
                       title or f"{layout.name or 'grid layout'} ({h}x{p}, {layout.skeleton.name})")


# ---------------------------------------------------------------------- AutoGrids S^prob (eq. 4, Fig. 3 / D)
_LOG_FLOOR = 1e-4


def sprob_array(snapshot: object, shape: tuple[int, int], num_joints: int) -> np.ndarray:
    """``snapshot`` as a finite float ``(HP, J)`` S^prob array, or :class:`GridvizError` saying what is wrong."""
    try:
        arr = np.asarray(snapshot, dtype=np.float64)
    except (TypeError, ValueError):
        raise GridvizError("S^prob snapshot is not a numeric array") from None
    expected = (shape[0] * shape[1], num_joints)
    if arr.shape != expected:
        raise GridvizError(
            f"S^prob snapshot has shape {arr.shape}, expected {expected} (HP x J for a {shape[0]}x{shape[1]} grid)"
        )
    if not np.isfinite(arr).all():
        raise GridvizError("S^prob snapshot holds NaN or infinite values")
    return arr


def sprob_figure(
    snapshot: np.ndarray | Sequence[Sequence[float]],
    shape: tuple[int, int],
    skeleton: str | Skeleton,
    epoch: int | None = None,
    log: bool = False,
) -> go.Figure:
    """Heatmap of one S^prob snapshot ``(HP, J)`` (eq. 4): rows are cells ``(r,c)``, columns joints.

    The colour axis is fixed (``[0, 1]``, or log10 floored at 1e-4) so that epochs compare. Raises
    :class:`GridvizError` for a snapshot of the wrong shape or with non-finite values.
    """
    sk = get_skeleton(skeleton)
    arr = sprob_array(snapshot, shape, sk.num_joints)
    fig = go.Figure(go.Heatmap(
        z=np.log10(np.maximum(arr, _LOG_FLOOR)) if log else arr,
        zmin=float(np.log10(_LOG_FLOOR)) if log else 0.0, zmax=0.0 if log else 1.0,
        x=list(sk.joint_names), y=[f"({r},{c})" for r in range(shape[0]) for c in range(shape[1])],
        colorscale="Viridis", colorbar={"title": {"text": "log10 p" if log else "p"}},
        hovertemplate="cell %{y}<br>joint %{x}<br>value %{z:.3f}<extra></extra>",
    ))
    title = ("log10 " if log else "") + "S<sup>prob</sup>" + ("" if epoch is None else f" at epoch {epoch}")
    fig.update_layout(
        title={"text": title}, uirevision="gridviz",
        xaxis={"title": "joint", "tickangle": -45},
        yaxis={"title": "grid cell (row, col)", "autorange": "reversed"},
        height=max(360, 18 * shape[0] * shape[1] + 140),
        width=640,
        margin={"l": 80, "r": 20, "t": 50, "b": 90},
    )
    return fig


# ---------------------------------------------------------------------- grid -> graph (Fig. 6)
def _edge_trace(pos: np.ndarray, edges: Sequence[tuple[int, int]], name: str, color: str,
                dash: str, width: float, names: Sequence[str]) -> go.Scatter:
    """One line trace for a set of edges (NaN-separated segments), so its legend entry toggles them all."""
    xy = pos[np.array(edges, dtype=np.int64).reshape(-1, 2)]  # (E, 2 ends, 2)
    gap = np.full((len(edges), 1, 2), np.nan)
    seg = np.concatenate([xy, gap], axis=1).reshape(-1, 2)
    text = [t for a, b in edges for t in (f"{names[a]} - {names[b]}",) * 2 + ("",)]
    return go.Scatter(x=seg[:, 0], y=seg[:, 1], mode="lines", name=f"{name} ({len(edges)})",
                      line=dict(color=color, dash=dash, width=width), text=text,
                      hovertemplate="%{text}<extra>" + name + "</extra>", connectgaps=False)


def graph_figure(
    layout: GridLayout, diagonal: bool = False, spring: bool = False, title: str | None = None, callout: bool = True
) -> go.Figure:
    """The equivalent graph of a grid layout (paper Fig. 6).

    Nodes are joints (replicas merged); two joints are linked when they sit in grid-adjacent cells
    (4-neighbourhood ``N(p)`` of eq. 2, or 8 with ``diagonal``). Skeleton edges kept, skeleton edges
    lost and new edges get their own colour and legend entry; long-distance new edges (far apart on
    the skeleton, e.g. head to knee) get their own colour and, with ``callout``, a list beside the graph.
    """
    summary = compare_graphs(layout, diagonal=diagonal)
    sk = layout.skeleton
    names = sk.joint_names
    pos = node_positions(sk, spring=spring)
    long = summary.long_distance
    new_short = [e for e in summary.new if e not in long]
    traces = [
        _edge_trace(pos, summary.lost, "skeleton edge lost", COLORS["lost"], "dash", 2, names),
        _edge_trace(pos, summary.kept, "skeleton edge kept", COLORS["kept"], "solid", 4, names),
        _edge_trace(pos, new_short, "new edge", COLORS["new"], "dot", 2, names),
        _edge_trace(pos, long, "long-distance edge", COLORS["long"], "dot", 2.5, names),
        go.Scatter(x=pos[:, 0], y=pos[:, 1], mode="markers+text", name="joints", text=list(names),
                   textposition=[_label_side(sk, j) for j in range(sk.num_joints)], textfont=dict(size=10),
                   marker=dict(size=11, color=[_side_color(sk, j) for j in range(sk.num_joints)],
                               line=dict(color="white", width=1.5)),
                   hovertemplate="%{text}<extra></extra>", showlegend=False),
    ]
    diameter = "inf (disconnected)" if summary.diameter is None else str(summary.diameter)
    stats = (f"kept {len(summary.kept)} · new {len(summary.new)} · lost {len(summary.lost)} · "
             f"diameter {diameter} · {'8' if diagonal else '4'}-neighbourhood")
    head = title or (f"Equivalent graph of layout “{layout.name}”" if layout.name else "Equivalent graph of the layout")
    fig = go.Figure(traces)
    fig.update_layout(**_base_layout(f"{head}<br><sup>{stats}</sup>", width=820, height=640,
                                     legend=dict(orientation="h", y=-0.04, x=0.38, xanchor="center")))
    if long and callout:
        listing = "<br>".join(f"{names[a]} – {names[b]}" for a, b in long)
        fig.add_annotation(text=f"<b>long-distance ({len(long)})</b><br>{listing}", xref="paper", yref="paper",
                           x=0.8, y=1.0, xanchor="left", yanchor="top", align="left", showarrow=False,
                           font=dict(color=COLORS["long"], size=10))
    fig.update_xaxes(visible=False, domain=[0.0, 0.76 if callout else 1.0])
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1)
    return fig


# ---------------------------------------------------------------------- attention (Figs. E-G)
@dataclass(frozen=True)
class TapVariance:
    """Variance across input samples of one kernel tap's attention at one grid cell."""

    row: int
    col: int
    tap_row: int
    tap_col: int
    variance: float


def _maps(maps: np.ndarray | Tensor, ndim: tuple[int, ...]) -> np.ndarray:
    arr = _array(maps, "attention maps")
    if arr.ndim not in ndim:
        raise GridvizError(f"attention maps have shape {arr.shape}, expected (B, K*K, H, P) or (K*K, H, P)")
    k = int(round(np.sqrt(arr.shape[-3])))
    if k * k != arr.shape[-3]:
        raise GridvizError(f"attention maps have {arr.shape[-3]} taps, not a square K*K")
    return arr


def attention_mosaic(maps: np.ndarray | Tensor) -> np.ndarray:
    """Tile ``(K*K, H, P)`` per-cell kernel attentions (eq. 7) into an ``(H*K, P*K)`` image.

    Grid cell ``(h, p)`` becomes the ``K x K`` block at rows ``h*K..``, cols ``p*K..``; tap
    ``k = ky*K + kx`` (unfold order) sits at ``(ky, kx)`` in its block. Leading batch dims are kept.
    """
    arr = _maps(maps, (3, 4))
    kk, h, p = arr.shape[-3:]
    k = int(round(np.sqrt(kk)))
    lead = arr.shape[:-3]
    tiles = arr.reshape(*lead, k, k, h, p)
    n = len(lead)
    return tiles.transpose(*range(n), n + 2, n, n + 3, n + 1).reshape(*lead, h * k, p * k)


def attention_variance(maps: np.ndarray | Tensor, top: int = 9) -> list[TapVariance]:
    """The ``top`` (cell, tap) attention weights that vary most across samples (paper Fig. G: "most varied")."""
    arr = _maps(maps, (4,))
    _, kk, _, p = arr.shape
    k = int(round(np.sqrt(kk)))
    var = arr.var(axis=0)  # (K*K, H, P)
    order = np.argsort(var, axis=None)[::-1][:top]
    taps, rows, cols = np.unravel_index(order, var.shape)
    return [TapVariance(int(r), int(c), int(t // k), int(t % k), float(var[t, r, c]))
            for t, r, c in zip(taps, rows, cols)]


def attention_figure(
    maps: np.ndarray | Tensor,
    sample: int = 0,
    minus: int | None = None,
    mode: str = "sample",
    layout: GridLayout | None = None,
    highlight: Sequence[TapVariance] = (),
    title: str | None = None,
) -> go.Figure:
    """Mosaic heatmap of one D-GridConv layer's kernel attentions ``(B, K*K, H, P)`` (Figs. E, F, G).

    ``mode``: ``"sample"`` shows ``maps[sample]``; ``"difference"`` shows ``maps[sample] - maps[minus]``
    (Fig. E); ``"variance"`` the variance across samples (Fig. F/G). ``highlight`` boxes taps
    (e.g. from :func:`attention_variance`); ``layout`` adds the joint of each cell to the hover.
    """
    arr = _maps(maps, (4,))
    b, kk, h, p = arr.shape
    k = int(round(np.sqrt(kk)))
    if mode not in ("sample", "difference", "variance"):
        raise GridvizError(f"unknown mode {mode!r}; use 'sample', 'difference' or 'variance'")
    for idx in (sample,) + ((minus,) if mode == "difference" else ()):
        if idx is None or not 0 <= idx < b:
            raise GridvizError(f"sample index {idx} out of range 0..{b - 1}")
    mosaic = attention_mosaic(arr)
    if mode == "sample":
        # One colour range for all samples of the layer, so that switching samples compares like with like.
        z, scale, zmin, zmax, label = mosaic[sample], "Viridis", float(arr.min()), float(arr.max()) + 1e-9, "attention"
    elif mode == "difference":
        z = mosaic[sample] - mosaic[minus]
        bound = float(np.abs(z).max()) or 1e-6
        scale, zmin, zmax, label = "RdBu_r", -bound, bound, "difference"
    else:
        z = mosaic.var(axis=0)
        scale, zmin, zmax, label = "Magma", 0.0, float(z.max()) or 1e-6, "variance"
    rr, cc = np.meshgrid(np.arange(h * k), np.arange(p * k), indexing="ij")
    if layout is not None and layout.shape != (h, p):
        raise GridvizError(f"layout is {layout.shape[0]}x{layout.shape[1]} but the maps are {h}x{p}")
    cell_names = np.array([[cell_label(c, layout.skeleton.joint_names) for c in row]
                           for row in layout.cells]) if layout is not None else np.full((h, p), "")
    custom = np.stack([rr // k, cc // k, rr % k - k // 2, cc % k - k // 2], axis=-1)
    names = cell_names[rr // k, cc // k]
    heat = go.Heatmap(
        z=z, colorscale=scale, zmin=zmin, zmax=zmax, customdata=custom, text=names,
        colorbar=dict(title=dict(text=label, side="right"), thickness=14),
        hovertemplate="cell (%{customdata[0]}, %{customdata[1]}) %{text}<br>"
                      "tap dy=%{customdata[2]}, dx=%{customdata[3]}<br>" + label + " %{z:.4f}<extra></extra>",
    )
    fig = go.Figure(heat)
    lines = [dict(type="line", xref="x", yref="y", x0=x - 0.5, x1=x - 0.5, y0=-0.5, y1=h * k - 0.5)
             for x in range(0, p * k + 1, k)]
    lines += [dict(type="line", xref="x", yref="y", y0=y - 0.5, y1=y - 0.5, x0=-0.5, x1=p * k - 0.5)
              for y in range(0, h * k + 1, k)]
    for shape in lines:
        shape["line"] = dict(color="white", width=3)
    boxes = [dict(type="rect", xref="x", yref="y", line=dict(color="#00e5ff", width=2.5),
                  x0=t.col * k + t.tap_col - 0.5, x1=t.col * k + t.tap_col + 0.5,
                  y0=t.row * k + t.tap_row - 0.5, y1=t.row * k + t.tap_row + 0.5) for t in highlight]
    head = title or {"sample": f"kernel attention, sample {sample}",
                     "difference": f"sample {sample} − sample {minus}",
                     "variance": f"variance across {b} samples"}[mode]
    fig.update_layout(**_base_layout(head, width=110 * p + 170, height=105 * h + 110, shapes=lines + boxes))
    centres = [i * k + (k - 1) / 2 for i in range(max(h, p))]
    fig.update_xaxes(tickvals=centres[:p], ticktext=[f"col {c}" for c in range(p)], showgrid=False, zeroline=False)
    fig.update_yaxes(tickvals=centres[:h], ticktext=[f"row {r}" for r in range(h)], showgrid=False, zeroline=False,
                     autorange="reversed", scaleanchor="x", scaleratio=1)
    if layout is not None:
        fig.update_layout(annotations=[
            dict(x=c * k - 0.42, y=r * k - 0.42, text=cell_names[r, c], showarrow=False, xanchor="left",
                 yanchor="top", font=dict(size=9, color="#111827"), bgcolor="rgba(255,255,255,0.75)", borderpad=1)
            for r in range(h) for c in range(p)])
    return fig


# ---------------------------------------------------------------------- poses
def _bones(points: np.ndarray, sk: Skeleton) -> np.ndarray:
    """Bone polylines ``(3E, D)`` with NaN separators, for one line trace per skeleton."""
    ends = points[np.array(sk.edges, dtype=np.int64).reshape(-1, 2)]
    gap = np.full((len(sk.edges), 1, points.shape[1]), np.nan)
    return np.concatenate([ends, gap], axis=1).reshape(-1, points.shape[1])


def _display3d(points: np.ndarray) -> np.ndarray:
    """Camera coordinates (x right, y down, z forward) to display axes (x, depth, up)."""
    return np.stack([points[:, 0], points[:, 2], -points[:, 1]], axis=1)


def pose_figure(
    pred: np.ndarray | Tensor | None,
    gt: np.ndarray | Tensor,
    pose2d: np.ndarray | Tensor,
    skeleton: str | Skeleton = "h36m17",
    title: str | None = None,
) -> go.Figure:
    """2D input beside the 3D ground truth and prediction of one frame, joints coloured by error.

    ``pred`` and ``gt`` are ``(J, 3)`` camera-frame metres (``pred`` may be ``None``); ``pose2d`` is
    ``(J, 2)`` screen coordinates. The per-joint error ``||pred - gt||`` is shown in mm (MPJPE terms).
    """
    sk = get_skeleton(skeleton)
    j = sk.num_joints
    gt3 = _array(gt, "gt")
    p2 = _array(pose2d, "pose2d")
    pr3 = None if pred is None else _array(pred, "pred")
    for arr, name, dim in ((gt3, "gt", 3), (p2, "pose2d", 2), (pr3, "pred", 3)):
        if arr is not None and arr.shape != (j, dim):
            raise GridvizError(f"{name} has shape {arr.shape}, expected ({j}, {dim}) for {sk.name}")
    fig = make_subplots(rows=1, cols=2, column_widths=[0.38, 0.62], horizontal_spacing=0.04,
                        specs=[[{"type": "xy"}, {"type": "scene"}]], subplot_titles=("2D input", "3D (camera frame)"))
    colors = [_side_color(sk, i) for i in range(j)]
    b2 = _bones(p2, sk)
    fig.add_trace(go.Scatter(x=b2[:, 0], y=b2[:, 1], mode="lines", line=dict(color=COLORS["centre"], width=3),
                             hoverinfo="skip", showlegend=False), 1, 1)
    fig.add_trace(go.Scatter(x=p2[:, 0], y=p2[:, 1], mode="markers", marker=dict(size=8, color=colors),
                             text=list(sk.joint_names), hovertemplate="%{text}<br>(%{x:.3f}, %{y:.3f})<extra></extra>",
                             name="2D input", showlegend=False), 1, 1)
    g = _display3d(gt3)
    bg = _bones(g, sk)
    fig.add_trace(go.Scatter3d(x=bg[:, 0], y=bg[:, 1], z=bg[:, 2], mode="lines", name="ground truth",
                               line=dict(color=COLORS["gt"], width=7), hoverinfo="skip"), 1, 2)
    fig.add_trace(go.Scatter3d(x=g[:, 0], y=g[:, 1], z=g[:, 2], mode="markers", name="ground-truth joints",
                               showlegend=False,
                               marker=dict(size=3, color=COLORS["gt"]), text=list(sk.joint_names),
                               hovertemplate="%{text} (GT)<extra></extra>"), 1, 2)
    head = title or "pose"
    if pr3 is not None:
        err = np.linalg.norm(pr3 - gt3, axis=1) * 1000.0
        q = _display3d(pr3)
        bq = _bones(q, sk)
        bone_colors = [colors[c] for _, c in sk.edges for _ in range(3)]
        fig.add_trace(go.Scatter3d(x=bq[:, 0], y=bq[:, 1], z=bq[:, 2], mode="lines", name="prediction",
                                   line=dict(color=bone_colors, width=5), hoverinfo="skip"), 1, 2)
        fig.add_trace(go.Scatter3d(
            x=q[:, 0], y=q[:, 1], z=q[:, 2], mode="markers", name="joint error (mm)", showlegend=False,
            marker=dict(size=5, color=err, colorscale="YlOrRd", cmin=0, cmax=max(float(err.max()), 1.0),
                        colorbar=dict(title=dict(text="error mm"), thickness=12, len=0.7, x=1.0),
                        line=dict(color="black", width=1)),
            customdata=err, text=list(sk.joint_names),
            hovertemplate="%{text}<br>error %{customdata:.1f} mm<extra></extra>"), 1, 2)
        head = f"{head} — MPJPE {err.mean():.1f} mm"
    fig.update_layout(**_base_layout(head, width=980, height=520,
                                     legend=dict(orientation="h", x=0.4, y=-0.02)))
    fig.update_xaxes(showgrid=True, zeroline=False, row=1, col=1)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", scaleratio=1, zeroline=False, row=1, col=1)
    fig.update_scenes(aspectmode="data", xaxis_title="x (m)", yaxis_title="depth z (m)", zaxis_title="up −y (m)",
                      camera=dict(eye=dict(x=0.9, y=-2.2, z=0.5), up=dict(x=0, y=0, z=1)))
    return fig


# ---------------------------------------------------------------------- ablation tables
def metric_bar_figure(
    table: Mapping[str, float] | Mapping[str, Mapping[str, float]],
    metric: str = "MPJPE (mm)",
    title: str | None = None,
) -> go.Figure:
    """Bar chart of an ablation table: ``{variant: value}`` or ``{variant: {column: value}}`` (grouped)."""
    if not isinstance(table, Mapping) or not table:
        raise GridvizError("table must be a non-empty mapping of variant name to value(s)")
    rows = list(table)
    grouped = all(isinstance(v, Mapping) for v in table.values())
    if not grouped and not all(isinstance(v, (int, float, np.floating, np.integer)) for v in table.values()):
        raise GridvizError("table values must be all numbers or all mappings of column name to number")
    columns = list(dict.fromkeys(c for v in table.values() for c in v)) if grouped else [metric]
    fig = go.Figure()
    for col in columns:
        vals = [float(table[r].get(col, np.nan)) if grouped else float(table[r]) for r in rows]
        fig.add_trace(go.Bar(x=rows, y=vals, name=str(col), text=[f"{v:.1f}" for v in vals], textposition="outside"))
    fig.update_layout(**_base_layout(title or metric, barmode="group", width=max(420, 90 * len(rows) * len(columns)),
                                     height=420, showlegend=grouped))
    fig.update_yaxes(title=metric)
    return fig


def update_figure_widget(widget: go.FigureWidget, fig: go.Figure) -> None:
    """Make ``widget`` show ``fig`` in place, as one front-end message.

    With the same trace types, every trace keeps its identity and only the properties that differ
    are sent (else the traces are replaced); the layout is merged the same way. Once the widget
    shows a figure, 3D cameras are left to the user: a rotated scene stays rotated (the figures'
    constant ``uirevision`` keeps the rest of the user's view in plotly.js).
    """
    layout = fig.layout.to_plotly_json()
    # Lists of layout items are replaced, not merged (an update would keep items the new figure lacks).
    items = {key: layout.pop(key, []) for key in ("shapes", "annotations", "images")}
    with widget.batch_update():
        if widget.data and [t.type for t in widget.data] == [t.type for t in fig.data]:
            for old, new in zip(widget.data, fig.data):
                old.update({k: v for k, v in new.to_plotly_json().items() if k not in ("type", "uid")})
            for key in [k for k in layout if k.startswith("scene")]:
                layout[key] = {k: v for k, v in layout[key].items() if k != "camera"}
        else:
            widget.data = []
            widget.add_traces(list(fig.data))
        widget.layout.update(layout)
        for key, value in items.items():
            widget.layout[key] = value

"""AutoGrids watcher: the learnt S^prob over training (paper eq. 4-5, Fig. 3 and Fig. D).

``sprob_figure`` draws one ``(HP, J)`` snapshot as a static plotly heatmap (for reports);
:class:`AutoGridsWatcher` scrubs a whole history with an epoch slider, shows the hard layout of
the chosen epoch (eq. 5, argmax per cell) with the cells changed since the previous epoch marked,
and is itself a training callback (``on_epoch_end``) so the view follows a run live.
"""
from __future__ import annotations

import html
import os
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch

from gridconv_core.sgt import GridLayout, LayoutError
from gridconv_core.skeleton import Skeleton, get_skeleton

from ._common import GridvizError, banner_html

__all__ = ["AutoGridsWatcher", "sprob_figure"]

_LOG_FLOOR = 1e-4


def _cell_labels(shape: tuple[int, int]) -> list[str]:
    return [f"({r},{c})" for r in range(shape[0]) for c in range(shape[1])]


def _heatmap_z(snapshot: np.ndarray, log: bool) -> np.ndarray:
    """Values drawn for S^prob: the probabilities, or their log10 floored at ``_LOG_FLOOR``."""
    return np.log10(np.maximum(snapshot, _LOG_FLOOR)) if log else snapshot


def _colour_range(log: bool) -> dict[str, Any]:
    """Fixed colour axis (so epochs compare) and its colour-bar title."""
    return {"zmin": float(np.log10(_LOG_FLOOR)), "zmax": 0.0} if log else {"zmin": 0.0, "zmax": 1.0}


def _title(epoch: int | None, log: bool) -> str:
    scale = "log10 " if log else ""
    return f"{scale}S<sup>prob</sup>" + ("" if epoch is None else f" at epoch {epoch}")


def _check_snapshot(snapshot: Any, shape: tuple[int, int], num_joints: int) -> np.ndarray:
    """``snapshot`` as a finite float ``(HP, J)`` array, or :class:`GridvizError` saying what is wrong."""
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

    Raises :class:`GridvizError` for a snapshot of the wrong shape or with non-finite values.
    """
    sk = get_skeleton(skeleton)
    arr = _check_snapshot(snapshot, shape, sk.num_joints)
    fig = go.Figure(
        go.Heatmap(
            z=_heatmap_z(arr, log),
            **_colour_range(log),
            x=list(sk.joint_names),
            y=_cell_labels(shape),
            colorscale="Viridis",
            colorbar={"title": {"text": "log10 p" if log else "p"}},
            hovertemplate="cell %{y}<br>joint %{x}<br>value %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title={"text": _title(epoch, log)},
        xaxis={"title": "joint", "tickangle": -45},
        yaxis={"title": "grid cell (row, col)", "autorange": "reversed"},
        height=max(360, 18 * shape[0] * shape[1] + 140),
        width=640,
        margin={"l": 80, "r": 20, "t": 50, "b": 90},
    )
    return fig


class AutoGridsWatcher(widgets.VBox):
    """Live S^prob heatmap with an epoch slider, Play button, colour-scale toggle and hard layout.

    Feed it with :meth:`append`, hand :meth:`callback` to a trainer, or build it from a
    saved history with :meth:`from_history` / :meth:`from_checkpoint`. Bad snapshots never raise:
    they show a red banner in the widget and are not stored.
    """

    def __init__(self, shape: tuple[int, int], skeleton: str | Skeleton = "h36m17") -> None:
        self.skeleton = get_skeleton(skeleton)
        self.shape = (int(shape[0]), int(shape[1]))
        self.history: list[np.ndarray] = []
        self.epochs: list[int] = []
        self.banner = widgets.HTML()
        self.slider = widgets.IntSlider(value=0, min=0, max=0, description="epoch", disabled=True,
                                        continuous_update=True, layout=widgets.Layout(width="420px"))
        self.play = widgets.Play(value=0, min=0, max=0, interval=400, description="play", disabled=True)
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.scale = widgets.ToggleButtons(options=["linear", "log"], value="linear", description="colour",
                                           style={"button_width": "64px"})
        self.figure = go.FigureWidget(sprob_figure(np.zeros((self.shape[0] * self.shape[1], self.skeleton.num_joints)),
                                                   self.shape, self.skeleton))
        self.figure_box = widgets.Box([self.figure], layout=widgets.Layout(display="none"))  # until a snapshot
        self.grid = widgets.HTML("<i>Waiting for the first epoch's S<sup>prob</sup>.</i>")
        self.slider.observe(self._redraw, "value")
        self.scale.observe(self._redraw, "value")
        super().__init__(
            [self.banner, widgets.HBox([self.play, self.slider, self.scale]),
             widgets.HBox([self.figure_box, self.grid], layout=widgets.Layout(align_items="flex-start"))]
        )
        self.add_class("gridviz-autogrids")

    # ------------------------------------------------------------------ feeding
    @classmethod
    def from_history(
        cls, history: Sequence[Any] | np.ndarray, shape: tuple[int, int], skeleton: str | Skeleton = "h36m17"
    ) -> AutoGridsWatcher:
        """A watcher over a saved history ``(E, HP, J)``; a malformed one shows a banner instead."""
        watcher = cls(shape, skeleton)
        try:
            arr = np.asarray(history, dtype=np.float64)
        except (TypeError, ValueError):
            watcher._show_error("S^prob history is not a numeric (E, HP, J) array")
            return watcher
        if arr.ndim != 3:
            watcher._show_error(f"S^prob history has shape {arr.shape}, expected (E, HP, J)")
            return watcher
        for epoch, snapshot in enumerate(arr, start=1):  # 1-based, as the trainer numbers epochs
            if not watcher.append(snapshot, epoch):
                break
        return watcher

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str]) -> AutoGridsWatcher:
        """A watcher over a training checkpoint's S^prob history (``"s_prob_history"``, one entry per epoch).

        The grid and skeleton come from the checkpoint's saved layout; an unreadable checkpoint, or
        one without an AutoGrids history, raises ``CheckpointError``.
        """
        from gridconv_core.train.checkpoint import CheckpointError, load_checkpoint  # the trainer stack, on demand

        state = load_checkpoint(path)
        history = state.get("s_prob_history")
        if not history or not state.get("layout"):
            raise CheckpointError(f"checkpoint {path} has no S^prob history (was it trained with AutoGrids?)")
        try:
            layout = GridLayout.from_json(state["layout"])
        except LayoutError as err:
            raise CheckpointError(f"checkpoint {path} holds an invalid layout: {err}") from None
        arrays = [s.cpu().numpy() if isinstance(s, torch.Tensor) else np.asarray(s) for s in history]
        return cls.from_history(arrays, layout.shape, layout.skeleton)

    def append(self, snapshot: Any, epoch: int | None = None) -> bool:
        """Add one ``(HP, J)`` snapshot and move the slider to it; False (and a banner) when it is malformed."""
        try:
            arr = _check_snapshot(snapshot, self.shape, self.skeleton.num_joints)
        except GridvizError as err:
            self._show_error(str(err))
            return False
        self.history.append(arr)
        self.epochs.append(len(self.epochs) + 1 if epoch is None else int(epoch))
        last = len(self.history) - 1
        with self.slider.hold_trait_notifications():
            self.slider.max = self.play.max = last
            self.slider.disabled = self.play.disabled = False
        self.banner.value = ""
        self.figure_box.layout.display = "flex"
        if self.slider.value == last:
            self._redraw()
        else:
            self.slider.value = last
        return True

    def on_epoch_end(self, metrics: dict[str, Any], model: torch.nn.Module) -> None:
        """Append ``model.autogrids.snapshot()`` for ``metrics["epoch"]`` (a banner when there is none)."""
        autogrids = getattr(model, "autogrids", None)
        if autogrids is None:
            self._show_error("the model has no AutoGrids module: nothing to watch")
            return
        self.append(autogrids.snapshot(), metrics.get("epoch"))

    def callback(self) -> Any:
        """A ``gridconv_core.train.Callback`` that feeds this watcher at every epoch end (live view)."""
        from gridconv_core.train.callbacks import Callback  # the trainer stack, on demand

        watcher = self

        class _FeedWatcher(Callback):
            def on_epoch_end(self, metrics: dict[str, Any], model: torch.nn.Module) -> None:
                watcher.on_epoch_end(metrics, model)

        return _FeedWatcher()

    # ------------------------------------------------------------------ views
    def hard_layout(self, index: int) -> np.ndarray:
        """Eq. 5 hard assignment of snapshot ``index``: the ``(H, P)`` argmax joint per cell."""
        return self.history[index].argmax(axis=1).reshape(self.shape)

    def changed_cells(self, index: int) -> list[tuple[int, int]]:
        """Cells whose hard joint differs from the previous snapshot's (none for the first)."""
        if index == 0:
            return []
        diff = self.hard_layout(index) != self.hard_layout(index - 1)
        return [(int(r), int(c)) for r, c in zip(*np.nonzero(diff))]

    def _show_error(self, message: str) -> None:
        self.banner.value = banner_html("AutoGrids watcher: bad S^prob data", [message], testid="autogrids-error")

    def _redraw(self, _change: Any = None) -> None:
        if not self.history:
            return
        index = self.slider.value
        log = self.scale.value == "log"
        with self.figure.batch_update():
            self.figure.data[0].z = _heatmap_z(self.history[index], log)
            self.figure.data[0].update(_colour_range(log))
            self.figure.data[0].colorbar.title.text = "log10 p" if log else "p"
            self.figure.layout.title.text = _title(self.epochs[index], log)
        self.grid.value = self._grid_html(index)

    def _grid_html(self, index: int) -> str:
        """The hard layout as an HTML table; changed cells are outlined in orange."""
        names = self.skeleton.joint_names
        hard = self.hard_layout(index)
        changed = set(self.changed_cells(index))
        rows = []
        for r, row in enumerate(hard):
            tds = []
            for c, j in enumerate(row):
                mark = "background:#fff3c4;border:2px solid #e8710a;" if (r, c) in changed else "border:1px solid #b8c2cc;"
                tds.append(
                    f"<td data-testid='hard-cell-{r}-{c}' style='{mark}padding:3px 4px;text-align:center;"
                    f"min-width:44px'>{html.escape(names[j])}</td>"
                )
            rows.append("<tr>" + "".join(tds) + "</tr>")
        problems = GridLayout.check(hard.tolist(), self.skeleton)
        note = (
            banner_html("Hard layout is not a valid SGT", problems, kind="warning", testid="autogrids-hard-problems")
            if problems else ""
        )
        return (
            f"<div style='font:12px system-ui,sans-serif;margin-top:50px;max-width:460px'><b>Hard layout, epoch {self.epochs[index]}</b>"
            f" <span data-testid='autogrids-changed'>({len(changed)} cell{'s' if len(changed) != 1 else ''} changed"
            f" since the previous epoch)</span><table style='border-collapse:separate;border-spacing:3px;margin:6px 0'>"
            + "".join(rows) + f"</table>{note}</div>"
        )

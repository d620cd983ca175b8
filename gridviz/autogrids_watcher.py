"""AutoGrids watcher: the learnt S^prob over training (paper eq. 4-5, Fig. 3 and Fig. D).

:class:`AutoGridsWatcher` scrubs a whole S^prob history with an epoch slider, shows the hard layout
of the chosen epoch (eq. 5, argmax per cell) with the cells changed since the previous epoch
outlined, and is itself a training callback (``on_epoch_end``) so the view follows a run live. It
draws with :func:`gridviz.figures.sprob_figure` and :func:`gridviz.figures.grid_figure`.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
import traitlets

from gridconv_core import GridLayout, LayoutError, LiftingModel, Skeleton, get_skeleton

from ._common import GridvizError, banner_html
from .figures import grid_figure, sprob_array, sprob_figure, update_figure_widget

__all__ = ["AutoGridsWatcher"]


class AutoGridsWatcher(widgets.VBox):
    """Live S^prob heatmap with an epoch slider, Play button, colour-scale toggle and hard layout.

    :attr:`index` is the snapshot shown (the slider) and :attr:`log` the colour scale (the toggle).
    Feed it with :meth:`append`, hand :meth:`callback` to a trainer, or build it from a saved
    history with :meth:`from_history` / :meth:`from_checkpoint`. Bad snapshots never raise: they
    show a red banner in the widget and are not stored.
    """

    index = traitlets.Int(0, help="the snapshot shown (position in history)")
    log = traitlets.Bool(False, help="log10 colour scale instead of linear")

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
        self.scale = widgets.ToggleButtons(options=[("linear", False), ("log", True)], description="colour",
                                           style={"button_width": "64px"})
        self.figure = go.FigureWidget()
        self.hard_figure = go.FigureWidget()
        self.hard_problems = widgets.HTML()
        self.waiting = widgets.HTML("<i>Waiting for the first epoch's S<sup>prob</sup>.</i>")
        self.figure_box = widgets.HBox(  # hidden until a snapshot arrives
            [self.figure, widgets.VBox([self.hard_figure, self.hard_problems])],
            layout=widgets.Layout(display="none", align_items="flex-start", flex_flow="row wrap"))
        super().__init__([self.banner, widgets.HBox([self.play, self.slider, self.scale]), self.waiting,
                          self.figure_box])
        self.add_class("gridviz-autogrids")
        traitlets.link((self, "index"), (self.slider, "value"))
        traitlets.link((self, "log"), (self.scale, "value"))

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
        from gridconv_core import CheckpointError
        from gridconv_core.train import load_checkpoint  # the trainer stack, on demand

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
            arr = sprob_array(snapshot, self.shape, self.skeleton.num_joints)
        except GridvizError as err:
            self._show_error(str(err))
            return False
        self.history.append(arr)
        self.epochs.append(len(self.epochs) + 1 if epoch is None else int(epoch))
        last = len(self.history) - 1
        self.slider.max = self.play.max = last
        self.slider.disabled = self.play.disabled = False
        self.banner.value = ""
        self.waiting.layout.display = "none"
        self.figure_box.layout.display = "flex"
        if self.index == last:
            self._redraw()
        else:
            self.index = last
        return True

    def on_epoch_end(self, metrics: dict[str, Any], model: torch.nn.Module) -> None:
        """Append ``model.autogrids.snapshot()`` for ``metrics["epoch"]`` (a banner when there is none)."""
        autogrids = model.autogrids if isinstance(model, LiftingModel) else None
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

    @traitlets.observe("index", "log")
    def _redraw(self, _change: Any = None) -> None:
        if not self.history:
            return
        index, epoch = self.index, self.epochs[self.index]
        update_figure_widget(self.figure, sprob_figure(self.history[index], self.shape, self.skeleton, epoch, self.log))
        hard, changed = self.hard_layout(index), self.changed_cells(index)
        title = (f"Hard layout, epoch {epoch}<br><sup>{len(changed)} cell{'s' if len(changed) != 1 else ''} changed"
                 " since the previous epoch</sup>")
        h, p = self.shape
        drawing = grid_figure(hard.tolist(), self.skeleton, title, changed)
        drawing.update_layout(width=72 * p + 60, height=64 * h + 120, margin=dict(l=30, r=10, t=70, b=40))
        update_figure_widget(self.hard_figure, drawing)
        problems = GridLayout.check(hard.tolist(), self.skeleton)
        self.hard_problems.value = (
            banner_html("Hard layout is not a valid SGT", problems, kind="warning", testid="autogrids-hard-problems")
            if problems else "")

"""``PoseViewer``: predicted and ground-truth 3D skeletons beside the 2D input, browsed by action and frame."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import traitlets
from torch import Tensor

from gridconv_core import Skeleton, SkeletonError, get_skeleton
from gridconv_core.data import PoseSet

from ._common import GridvizError, banner_html, choose
from .figures import pose_figure, update_figure_widget

__all__ = ["PoseViewer", "ALL_ACTIONS"]

ALL_ACTIONS = "all actions"


def _numpy(x: np.ndarray | Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=np.float64)


class PoseViewer(widgets.VBox):
    """One frame at a time: the 2D input and the 3D ground truth and prediction, joints coloured by error.

    Arrays are ``pose2d (N, J, 2)``, ``gt (N, J, 3)`` and ``pred (N, J, 3)`` (camera-frame metres,
    displayed with y flipped to point up, see :func:`gridviz.figures.pose_figure`); ``pred`` may be
    ``None``. ``actions`` ``(N,)`` fills the action dropdown; the slider walks that action's frames.
    A frame change updates :attr:`figure`'s traces in place, so a rotated 3D view stays rotated.
    Inputs that do not fit show a banner instead of a figure.
    """

    action = traitlets.Unicode(ALL_ACTIONS, help="the action whose frames the slider walks")
    frame = traitlets.Int(0, help="position within the chosen action's frames (the slider)")

    def __init__(
        self,
        pose2d: np.ndarray | Tensor,
        gt: np.ndarray | Tensor,
        pred: np.ndarray | Tensor | None = None,
        actions: Sequence[str] | np.ndarray | None = None,
        skeleton: str | Skeleton = "h36m17",
        labels: Sequence[str] | np.ndarray | None = None,
    ) -> None:
        self._action = widgets.Dropdown(description="action", options=[ALL_ACTIONS],
                                        layout=widgets.Layout(width="280px"))
        self._frame = widgets.IntSlider(description="frame", min=0, max=0, continuous_update=True,
                                        layout=widgets.Layout(width="420px"))
        self._info = widgets.HTML()
        self._banner = widgets.HTML()
        self.figure = go.FigureWidget()
        self._drawing = widgets.Box([self.figure], layout=widgets.Layout(display="none"))
        super().__init__([widgets.HBox([self._action, self._frame, self._info]), self._banner, self._drawing])
        self.add_class("gridviz-pose-viewer")
        self._indices = np.zeros(0, dtype=np.int64)
        try:
            self.skeleton = get_skeleton(skeleton)
            self._load(pose2d, gt, pred, actions, labels)
        except (GridvizError, SkeletonError) as err:
            self._banner.value = banner_html("Cannot show these poses", [str(err)])
            self._action.disabled = self._frame.disabled = True
            return
        self._action.options = [ALL_ACTIONS] + sorted(set(self.actions))
        traitlets.link((self, "action"), (self._action, "value"))
        traitlets.link((self, "frame"), (self._frame, "value"))
        self._choose_action()

    @classmethod
    def from_poses(cls, poses: PoseSet, pred: np.ndarray | Tensor | None = None) -> PoseViewer:
        """A viewer over a :class:`~gridconv_core.data.PoseSet` and (optionally) predictions for it."""
        labels = [f"{s} {q} frame {f}" for s, q, f in zip(poses.subject, poses.sequence, poses.frame)]
        return cls(poses.pose2d, poses.pose3d, pred, poses.action, poses.skeleton, labels)

    def _load(self, pose2d: Any, gt: Any, pred: Any, actions: Any, labels: Any) -> None:
        j = self.skeleton.num_joints
        self.pose2d, self.gt = _numpy(pose2d), _numpy(gt)
        self.pred = None if pred is None else _numpy(pred)
        n = self.gt.shape[0] if self.gt.ndim == 3 else 0
        for arr, name, dim in ((self.pose2d, "pose2d", 2), (self.gt, "gt", 3), (self.pred, "pred", 3)):
            if arr is not None and (arr.ndim != 3 or arr.shape[1:] != (j, dim) or arr.shape[0] != n):
                raise GridvizError(f"{name} has shape {arr.shape}, expected (N, {j}, {dim}) for {self.skeleton.name}"
                                   + (f" with N = {n} like gt" if n else ""))
        if n == 0:
            raise GridvizError("no poses to show (N = 0)")
        self.actions = np.asarray(actions if actions is not None else ["-"] * n).astype(str)
        self.labels = np.asarray(labels if labels is not None else [f"#{i}" for i in range(n)]).astype(str)
        for arr, name in ((self.actions, "actions"), (self.labels, "labels")):
            if arr.shape != (n,):
                raise GridvizError(f"{name} has shape {arr.shape}, expected ({n},) like the poses")
        # Per-joint error of every frame, in mm (MPJPE terms), computed once as a batch.
        self.errors = None if self.pred is None else np.linalg.norm(self.pred - self.gt, axis=-1) * 1000.0

    # ------------------------------------------------------------------ public state
    @traitlets.validate("action")
    def _valid_action(self, proposal: dict[str, Any]) -> str:
        return str(choose(proposal["value"], self._action.options, "action"))

    @traitlets.validate("frame")
    def _valid_frame(self, proposal: dict[str, Any]) -> int:
        position = int(proposal["value"])
        if not 0 <= position < max(len(self._indices), 1):
            raise GridvizError(f"frame {position} out of range 0..{len(self._indices) - 1} for {self.action!r}")
        return position

    @property
    def index(self) -> int:
        """Row of the arrays shown now."""
        return int(self._indices[self.frame])

    @property
    def message(self) -> str:
        """The banner's HTML (empty when the poses are shown)."""
        return self._banner.value

    @property
    def summary(self) -> str:
        """The text beside the slider: frame position and the action's MPJPE."""
        return self._info.value

    # ------------------------------------------------------------------ drawing
    @traitlets.observe("action")
    def _choose_action(self, _change: dict[str, Any] | None = None) -> None:
        chosen = self.action
        self._indices = np.flatnonzero(self.actions == chosen) if chosen != ALL_ACTIONS else np.arange(len(self.gt))
        self._frame.max = len(self._indices) - 1
        if self.frame == 0:
            self._redraw()
        else:
            self.frame = 0

    @traitlets.observe("frame")
    def _redraw(self, _change: dict[str, Any] | None = None) -> None:
        i = self.index
        fig = pose_figure(None if self.pred is None else self.pred[i], self.gt[i], self.pose2d[i], self.skeleton,
                          title=f"{self.actions[i]} · {self.labels[i]}")
        update_figure_widget(self.figure, fig)
        self._drawing.layout.display = "flex"
        summary = f"{self.frame + 1} / {len(self._indices)}"
        if self.errors is not None:
            summary += f" · action MPJPE {self.errors[self._indices].mean():.1f} mm"
        self._info.value = f"<span style='font:13px system-ui,sans-serif;padding-left:8px'>{summary}</span>"

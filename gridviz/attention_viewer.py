"""``AttentionViewer``: the per-cell K x K kernel attentions of a D-GridConv model (eq. 7, Figs. E-G)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
import traitlets
from torch import Tensor

from gridconv_core import GridLayout, LiftingModel

from ._common import GridvizError, banner_html, cell_label, choose
from .figures import TapVariance, attention_figure, attention_variance, update_figure_widget

__all__ = ["AttentionViewer", "compute_attention"]


def compute_attention(model: LiftingModel, inputs: np.ndarray | Tensor) -> dict[str, np.ndarray]:
    """Every D-GridConv layer's attention ``(B, K*K, H, P)`` for ``inputs`` ``(B, J, 2)``, in eval mode.

    Raises :class:`GridvizError` when the model has no kernel attention or the inputs do not fit it.
    """
    if not isinstance(model, LiftingModel):
        raise GridvizError(f"{type(model).__name__} is not a gridconv_core lifting model, so it has no kernel "
                           "attention: build a D-GridConv model with gridconv_core.build_model")
    if model.config.effective_attention == "none":
        raise GridvizError(f"this {model.config.model} model has no kernel attention (static GridConv): "
                           "build a D-GridConv model to see attention maps")
    x = torch.as_tensor(np.asarray(inputs, dtype=np.float32) if not isinstance(inputs, Tensor) else inputs)
    j = model.skeleton.num_joints
    if x.ndim != 3 or tuple(x.shape[1:]) != (j, 2) or x.shape[0] == 0:
        raise GridvizError(f"inputs have shape {tuple(x.shape)}, expected (B, {j}, 2) 2D poses of {model.skeleton.name}")
    param = next(model.parameters(), None)
    x = x.float().to(param.device if param is not None else "cpu")
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            maps = model.attention_maps(x)
    finally:
        model.train(training)
    if not maps:
        raise GridvizError(f"{type(model).__name__} has no D-GridConv layer, so no kernel attention to show "
                           "(a vanilla GridConv?)")
    return {name: m.detach().float().cpu().numpy() for name, m in maps.items()}


class AttentionViewer(widgets.VBox):
    """Browse a D-GridConv model's kernel attentions: a mosaic of each grid cell's ``K x K`` weights.

    Choose the :attr:`layer`, the :attr:`sample`, and a :attr:`mode`: one sample, the difference
    between two samples (Fig. E, :attr:`minus` is subtracted), or the variance across all samples
    with the most varied taps boxed and ranked (Figs. F, G; :attr:`ranked`). A model without
    attention or inputs of the wrong shape give a visible banner. ``labels`` names the samples.
    """

    layer = traitlets.Unicode(None, allow_none=True, help="the D-GridConv layer shown (None without maps)")
    mode = traitlets.Unicode("sample", help="'sample', 'difference' or 'variance'")
    sample = traitlets.Int(None, allow_none=True, help="the sample shown (A)")
    minus = traitlets.Int(None, allow_none=True, help="the sample subtracted in difference mode (B)")

    _MODES = (("one sample", "sample"), ("difference A − B", "difference"), ("variance", "variance"))

    def __init__(self, model: LiftingModel, inputs: np.ndarray | Tensor, labels: Sequence[str] | None = None,
                 top: int = 9) -> None:
        self.model = model
        self.top = top
        self.maps: dict[str, np.ndarray] = {}
        self.ranked: list[TapVariance] = []
        self._labels: list[str] = []
        self._held = False
        self._layer = widgets.Dropdown(description="layer", layout=widgets.Layout(width="300px"))
        self._mode = widgets.ToggleButtons(options=self._MODES, style={"button_width": "130px"})
        self._sample = widgets.Dropdown(description="sample A", layout=widgets.Layout(width="260px"))
        self._minus = widgets.Dropdown(description="sample B", layout=widgets.Layout(width="260px"))
        self._banner = widgets.HTML()
        self._ranking = widgets.HTML()
        self.figure = go.FigureWidget()
        self._drawing = widgets.HBox([self.figure, self._ranking],
                                     layout=widgets.Layout(align_items="flex-start", display="none"))
        super().__init__([
            widgets.HBox([self._layer, self._mode]), widgets.HBox([self._sample, self._minus]), self._banner,
            self._drawing,
        ])
        self.add_class("gridviz-attention-viewer")
        for name, control in (("layer", self._layer), ("mode", self._mode), ("sample", self._sample),
                              ("minus", self._minus)):
            traitlets.link((self, name), (control, "value"))
        self.set_inputs(inputs, labels)

    # ------------------------------------------------------------------ public state
    def set_inputs(self, inputs: np.ndarray | Tensor, labels: Sequence[str] | None = None) -> None:
        """Recompute the attentions for new inputs ``(B, J, 2)``; problems show in the banner."""
        try:
            maps = compute_attention(self.model, inputs)
            if labels is not None and len(labels) != next(iter(maps.values())).shape[0]:
                raise GridvizError(f"{len(labels)} labels for {next(iter(maps.values())).shape[0]} input samples")
        except GridvizError as err:
            self.maps, self.ranked, self._labels = {}, [], []
            self._layer.options = self._sample.options = self._minus.options = []
            self._banner.value = banner_html("No attention maps to show", [str(err)])
            self._ranking.value = ""
            update_figure_widget(self.figure, go.Figure())
            self._drawing.layout.display = "none"
            for control in (self._layer, self._mode, self._sample, self._minus):
                control.disabled = True
            return
        b = next(iter(maps.values())).shape[0]
        self._labels = [f"#{i} {labels[i]}" if labels is not None else f"#{i}" for i in range(b)]
        choices = [(t, i) for i, t in enumerate(self._labels)]
        layer = self.layer if self.layer in maps else next(iter(maps))
        self._held = True  # one drawing for the whole rebuild
        try:
            self.maps = maps
            self._layer.options, self._sample.options, self._minus.options = list(maps), choices, choices
            self.layer, self.sample, self.minus = layer, 0, min(1, b - 1)
        finally:
            self._held = False
        self._layer.disabled = self._mode.disabled = False
        self._redraw()

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> str | None:
        return choose(proposal["value"], list(self.maps) or [None], "layer")

    @traitlets.validate("mode")
    def _valid_mode(self, proposal: dict[str, Any]) -> str:
        return str(choose(proposal["value"], [m for _, m in self._MODES], "mode"))

    @traitlets.validate("sample", "minus")
    def _valid_sample(self, proposal: dict[str, Any]) -> int | None:
        index = proposal["value"]
        if index is None and not self._labels:
            return None
        if index is None or not 0 <= index < len(self._labels):
            raise GridvizError(f"sample {index} out of range 0..{len(self._labels) - 1}")
        return index

    @property
    def message(self) -> str:
        """The banner's HTML (empty when the maps are shown)."""
        return self._banner.value

    # ------------------------------------------------------------------ drawing
    def _grid_layout(self) -> GridLayout | None:
        return self.model.grid_layout() if isinstance(self.model, LiftingModel) else None

    @traitlets.observe("layer", "mode", "sample", "minus")
    def _redraw(self, _change: dict[str, Any] | None = None) -> None:
        if self._held or self.layer not in self.maps:
            return
        maps = self.maps[self.layer]
        self._minus.disabled = self.mode != "difference"
        self._sample.disabled = self.mode == "variance"
        notes = []
        if maps.shape[0] < 2 and self.mode != "sample":
            notes.append("difference and variance need at least two input samples")
        self.ranked = attention_variance(maps, self.top) if maps.shape[0] > 1 else []
        mode = self.mode if maps.shape[0] > 1 else "sample"
        layout = self._grid_layout()
        try:
            fig = attention_figure(
                maps, sample=self.sample, minus=self.minus, mode=mode, layout=layout,
                highlight=self.ranked if mode == "variance" else (),
                title=f"{self.layer}: " + {"sample": self._labels[self.sample],
                                           "difference": f"{self._labels[self.sample]} − {self._labels[self.minus]}",
                                           "variance": f"variance across {maps.shape[0]} samples"}[mode])
        except GridvizError as err:
            self._banner.value = banner_html(f"Cannot draw layer {self.layer}", [str(err)])
            return
        update_figure_widget(self.figure, fig)
        self._drawing.layout.display = "flex"
        self._banner.value = banner_html("Note", notes, kind="info") if notes else ""
        half = round(np.sqrt(maps.shape[1])) // 2
        rows = "".join(
            f"<tr><td>{i + 1}</td><td>({t.row},{t.col}) "
            f"{cell_label(layout.cells[t.row][t.col], layout.skeleton.joint_names) if layout is not None else ''}</td>"
            f"<td>({t.tap_row - half:+d},{t.tap_col - half:+d})</td>"
            f"<td style='text-align:right'>{t.variance:.2e}</td></tr>"
            for i, t in enumerate(self.ranked))
        self._ranking.value = (
            "<div data-testid='attention-ranking' style='font:12px/1.5 system-ui,sans-serif;padding:50px 8px 0 8px'>"
            f"<b>most varied taps across samples</b><table><tr><th>#</th><th>cell</th><th>tap dy,dx</th>"
            f"<th>variance</th></tr>{rows}</table></div>") if self.ranked else ""

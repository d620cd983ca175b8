"""``GridGraphView``: the equivalent graph of a grid layout (paper Fig. 6), live."""
from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
import traitlets

from gridconv_core import GridLayout, compare_graphs

from ._common import GridvizError, banner_html
from .figures import graph_figure, update_figure_widget

__all__ = ["GridGraphView"]


class GridGraphView(widgets.VBox):
    """Which joints a grid layout makes neighbours (Fig. 6), with kept/lost/new edge counts and diameter.

    Set :attr:`grid_layout` (or :meth:`link` a :class:`~gridviz.LayoutEditor`) to redraw. :attr:`diagonal`
    chooses the 4- or 8-neighbourhood of eq. 2 and :attr:`spring` template or spring node positions
    (both also toggles in the view). A value that is not a valid :class:`GridLayout` leaves the last
    drawing in place and shows why in a banner.
    """

    grid_layout = traitlets.Any(None, allow_none=True, help="the GridLayout drawn (None before the first)")
    diagonal = traitlets.Bool(False, help="True for the 8-neighbourhood")
    spring = traitlets.Bool(False, help="True to place nodes by a spring layout instead of the skeleton template")

    def __init__(self, layout: GridLayout | None = None, diagonal: bool = False, spring: bool = False) -> None:
        self._neighbourhood = widgets.ToggleButtons(
            options=[("4-neighbourhood", False), ("8-neighbourhood", True)], style={"button_width": "150px"})
        self._positions = widgets.ToggleButtons(
            options=[("skeleton template", False), ("spring layout", True)], style={"button_width": "150px"})
        self._banner = widgets.HTML()
        self._summary = widgets.HTML()
        self.figure = go.FigureWidget()
        self._drawing = widgets.HBox([self.figure, self._summary],
                                     layout=widgets.Layout(align_items="flex-start", display="none"))
        self._editor: Any = None
        super().__init__([widgets.HBox([self._neighbourhood, self._positions]), self._banner, self._drawing],
                         diagonal=diagonal, spring=spring)
        self.add_class("gridviz-graph-view")
        traitlets.link((self, "diagonal"), (self._neighbourhood, "value"))
        traitlets.link((self, "spring"), (self._positions, "value"))
        if layout is not None:
            self.grid_layout = layout
        else:
            self._banner.value = banner_html("No layout yet", ["set view.grid_layout or view.link(editor)"], kind="info")

    # ------------------------------------------------------------------ public state
    @traitlets.validate("grid_layout")
    def _valid_layout(self, proposal: dict[str, Any]) -> GridLayout | None:
        if isinstance(proposal["value"], GridLayout):
            return proposal["value"]
        self.show_problem("Not a grid layout", [f"expected a gridconv_core.GridLayout, got {type(proposal['value']).__name__}"])
        return self.grid_layout

    @property
    def message(self) -> str:
        """The banner's HTML (empty while the drawing is current)."""
        return self._banner.value

    @property
    def summary(self) -> str:
        """The HTML table beside the graph: edge counts and diameter."""
        return self._summary.value

    def show_problem(self, title: str, lines: list[str]) -> None:
        """Show a visible error banner above the (unchanged) drawing."""
        self._banner.value = banner_html(title, lines)

    def link(self, editor: Any) -> None:
        """Follow a :class:`~gridviz.LayoutEditor`: redraw on every valid edit, show its problems otherwise."""
        if self._editor is not None:
            self._editor.unobserve(self._from_editor, ["cells", "skeleton_name"])
        self._editor = editor
        editor.observe(self._from_editor, ["cells", "skeleton_name"])
        self._from_editor()

    # ------------------------------------------------------------------ drawing
    def _from_editor(self, _change: dict[str, Any] | None = None) -> None:
        if self._editor.valid:
            self.grid_layout = self._editor.layout
        else:
            self.show_problem("The edited layout is invalid; showing the last valid one", list(self._editor.problems))

    @traitlets.observe("grid_layout", "diagonal", "spring")
    def _redraw(self, _change: dict[str, Any] | None = None) -> None:
        layout = self.grid_layout
        if layout is None:
            return
        try:
            fig = graph_figure(layout, diagonal=self.diagonal, spring=self.spring, callout=False)
            summary = compare_graphs(layout, diagonal=self.diagonal)
        except GridvizError as err:
            self.show_problem("Cannot draw this layout", [str(err)])
            return
        update_figure_widget(self.figure, fig)
        self._drawing.layout.display = "flex"
        self._banner.value = ""
        names = layout.skeleton.joint_names
        diameter = "∞ (disconnected)" if summary.diameter is None else summary.diameter
        rows = "".join(f"<tr><td>{k}</td><td style='text-align:right'><b>{v}</b></td></tr>" for k, v in (
            ("skeleton edges kept", len(summary.kept)), ("skeleton edges lost", len(summary.lost)),
            ("new edges", len(summary.new)), ("long-distance edges", len(summary.long_distance)),
            ("graph diameter", diameter)))
        longs = "".join(f"<li>{names[a]} – {names[b]}</li>" for a, b in summary.long_distance)
        self._summary.value = (
            "<div data-testid='graph-summary' style='font:13px/1.5 system-ui,sans-serif;padding:50px 8px 0 8px'>"
            f"<table>{rows}</table>"
            + ("<div style='margin-top:8px'><b>long-distance</b><ul style='margin:2px 0 0 16px;padding:0;"
               f"max-height:380px;overflow-y:auto'>{longs}</ul></div>"
               if longs else "") + "</div>")

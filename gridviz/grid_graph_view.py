"""``GridGraphView``: the equivalent graph of a grid layout (paper Fig. 6), live."""
from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from gridconv_core.graph import compare_graphs
from gridconv_core.sgt import GridLayout

from ._common import GridvizError, banner_html
from .figures import graph_figure, update_figure_widget

__all__ = ["GridGraphView"]


class GridGraphView:
    """Which joints a grid layout makes neighbours (Fig. 6), with kept/lost/new edge counts and diameter.

    Set :attr:`layout` (or :meth:`link` a :class:`~gridviz.LayoutEditor`) to redraw. Toggles choose the
    4- or 8-neighbourhood of eq. 2 and template or spring node positions. A value that is not a valid
    :class:`GridLayout` leaves the last drawing in place and shows why in a banner. The view displays
    itself in a notebook; :attr:`widget` is its ipywidgets box (to place inside other containers).
    """

    def __init__(self, layout: GridLayout | None = None, diagonal: bool = False, spring: bool = False) -> None:
        self._layout: GridLayout | None = None
        self._neighbourhood = widgets.ToggleButtons(
            options=[("4-neighbourhood", False), ("8-neighbourhood", True)], value=diagonal,
            style={"button_width": "150px"})
        self._positions = widgets.ToggleButtons(
            options=[("skeleton template", False), ("spring layout", True)], value=spring,
            style={"button_width": "150px"})
        self._banner = widgets.HTML()
        self._summary = widgets.HTML()
        self.figure = go.FigureWidget()
        self._drawing = widgets.HBox([self.figure, self._summary],
                                     layout=widgets.Layout(align_items="flex-start", display="none"))
        self._editor: Any = None
        self.widget = widgets.VBox([
            widgets.HBox([self._neighbourhood, self._positions]), self._banner,
            self._drawing,
        ])
        self.widget.add_class("gridviz-graph-view")
        self._neighbourhood.observe(self._redraw, "value")
        self._positions.observe(self._redraw, "value")
        if layout is not None:
            self.layout = layout
        else:
            self._banner.value = banner_html("No layout yet", ["set view.layout or view.link(editor)"], kind="info")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ public state
    @property
    def layout(self) -> GridLayout | None:
        """The layout drawn (``None`` before the first valid one)."""
        return self._layout

    @layout.setter
    def layout(self, layout: GridLayout) -> None:
        if not isinstance(layout, GridLayout):
            self.show_problem("Not a grid layout", [f"expected a gridconv_core.GridLayout, got {type(layout).__name__}"])
            return
        self._layout = layout
        self._redraw()

    @property
    def diagonal(self) -> bool:
        """True for the 8-neighbourhood."""
        return bool(self._neighbourhood.value)

    @diagonal.setter
    def diagonal(self, value: bool) -> None:
        self._neighbourhood.value = bool(value)

    @property
    def spring(self) -> bool:
        """True when nodes are placed by a spring layout instead of the skeleton template."""
        return bool(self._positions.value)

    @spring.setter
    def spring(self, value: bool) -> None:
        self._positions.value = bool(value)

    @property
    def message(self) -> str:
        """The banner's HTML (empty while the drawing is current)."""
        return self._banner.value

    def show_problem(self, title: str, lines: list[str]) -> None:
        """Show a visible error banner above the (unchanged) drawing."""
        self._banner.value = banner_html(title, lines)

    def link(self, editor: Any) -> None:
        """Follow a :class:`~gridviz.LayoutEditor`: redraw on every valid edit, show its problems otherwise."""
        if self._editor is not None:
            self._editor.unobserve(self._from_editor, ["layout_json", "problems"])
        self._editor = editor
        editor.observe(self._from_editor, ["layout_json", "problems"])
        self._from_editor()

    # ------------------------------------------------------------------ drawing
    def _from_editor(self, _change: dict[str, Any] | None = None) -> None:
        if self._editor.valid:
            self.layout = self._editor.layout
        else:
            self.show_problem("The edited layout is invalid; showing the last valid one", list(self._editor.problems))

    def _redraw(self, _change: dict[str, Any] | None = None) -> None:
        if self._layout is None:
            return
        try:
            fig = graph_figure(self._layout, diagonal=self.diagonal, spring=self.spring, callout=False)
            summary = compare_graphs(self._layout, diagonal=self.diagonal)
        except GridvizError as err:
            self.show_problem("Cannot draw this layout", [str(err)])
            return
        update_figure_widget(self.figure, fig)
        self._drawing.layout.display = "flex"
        self._banner.value = ""
        names = self._layout.skeleton.joint_names
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

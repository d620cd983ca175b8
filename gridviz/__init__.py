"""gridviz: interactive Jupyter widgets for GridConv Lab, built on gridconv_core's public API.

Widgets (each an ipywidgets widget, state as traitlets): :class:`LayoutEditor` (Fig. 2, editable;
an anywidget, the one custom front end), :class:`AutoGridsWatcher` (Fig. 3 / D),
:class:`GridGraphView` (Fig. 6), :class:`AttentionViewer` (Figs. E-G), :class:`PoseViewer`.
:mod:`gridviz.figures` is the static face: plotly figure builders, usable without a kernel, that
are the same code the widgets draw with.
"""
from .attention_viewer import AttentionViewer, compute_attention
from .autogrids_watcher import AutoGridsWatcher
from .figures import (attention_figure, attention_variance, graph_figure, grid_figure, layout_figure,
                      metric_bar_figure, pose_figure, sprob_figure)
from .grid_graph_view import GridGraphView
from .layout_editor import LayoutEditor
from .pose_viewer import PoseViewer

__all__ = [
    "LayoutEditor", "AutoGridsWatcher", "GridGraphView", "AttentionViewer", "PoseViewer",
    "sprob_figure", "compute_attention", "grid_figure", "layout_figure", "graph_figure", "attention_figure",
    "attention_variance", "pose_figure", "metric_bar_figure",
]

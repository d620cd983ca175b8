"""gridviz: interactive Jupyter widgets for GridConv Lab (built on gridconv_core)."""
from .autogrids_watcher import AutoGridsWatcher, sprob_figure
from .layout_editor import LayoutEditor
from .attention_viewer import AttentionViewer
from .figures import attention_figure, graph_figure, layout_figure, metric_bar_figure, pose_figure
from .grid_graph_view import GridGraphView
from .pose_viewer import PoseViewer

"""gridconv_core: the GridConv model family (AAAI 2023) for 2D-to-3D human pose lifting."""
from .layout import GridLayout, GridTransform, LayoutError, TopologyReport
from .skeleton import COCO17, H36M17, H36M32, HUMANEVA15, SKELETONS, Skeleton, get_skeleton

__all__ = [
    "GridLayout", "GridTransform", "LayoutError", "TopologyReport",
    "Skeleton", "H36M17", "H36M32", "COCO17", "HUMANEVA15", "SKELETONS", "get_skeleton",
]
from .attention import KernelScale, build_attention
from .config import ConfigError, GLNConfig
from .gridconv import DGridConv, GridConv
from .model import GridLiftingNetwork, InputError, build_model
from .official import CheckpointError, load_official_checkpoint

__all__ += [
    "KernelScale", "build_attention", "ConfigError", "GLNConfig", "GridConv", "DGridConv",
    "GridLiftingNetwork", "InputError", "build_model", "CheckpointError", "load_official_checkpoint",
]
from . import baselines, graph, layouts
from .autogrids import AutoGrids
from .graph import compare_graphs, grid_graph, skeleton_graph
from .skeleton import register_skeleton

__all__ += [
    "layouts", "graph", "baselines", "AutoGrids", "grid_graph", "skeleton_graph", "compare_graphs",
    "register_skeleton",
]
from .evaluate import EvalReport  # noqa: E402  (functions stay in their modules: names clash with them)
from .train import TrainConfig, TrainResult  # noqa: E402

__all__ += ["EvalReport", "TrainConfig", "TrainResult"]

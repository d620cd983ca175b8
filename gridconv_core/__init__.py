"""gridconv_core: the GridConv model family (AAAI 2023) for 2D-to-3D human pose lifting.

Concepts follow the paper: skeleton -> grid layout / SGT (``sgt``, ``layout_families``, ``autogrids``) ->
grid convolutions (``gridconv``, ``attention``) -> the Grid Lifting Network (``model``, ``model_config``) ->
training and evaluation (``train``, ``evaluate``, ``metrics``, ``data``).
"""
from . import baselines, graph, layout_families, metrics
from .attention import KernelScale, build_attention
from .autogrids import AutoGrids
from .model_config import ConfigError, GLNConfig
from .evaluate import EvalReport
from .graph import compare_graphs, grid_graph, skeleton_graph
from .gridconv import DGridConv, GridConv
from .io import CheckpointError
from .sgt import GridLayout, GridTransform, LayoutError, TopologyReport
from .model import GridLiftingNetwork, InputError, build_model
from .official import load_official_checkpoint
from .skeleton import (COCO17, H36M17, H36M32, HUMANEVA15, SKELETONS, Skeleton, SkeletonError, get_skeleton,
                       register_skeleton)
from .train import TrainConfig, TrainResult

__all__ = [
    "layout_families", "graph", "baselines", "metrics",
    "Skeleton", "SkeletonError", "H36M17", "H36M32", "COCO17", "HUMANEVA15", "SKELETONS", "get_skeleton", "register_skeleton",
    "GridLayout", "GridTransform", "LayoutError", "TopologyReport", "AutoGrids",
    "grid_graph", "skeleton_graph", "compare_graphs",
    "KernelScale", "build_attention", "GridConv", "DGridConv",
    "ConfigError", "GLNConfig", "GridLiftingNetwork", "InputError", "build_model",
    "CheckpointError", "load_official_checkpoint",
    "EvalReport", "TrainConfig", "TrainResult",
]

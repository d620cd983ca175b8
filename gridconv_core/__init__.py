"""gridconv_core: the GridConv model family (AAAI 2023) for 2D-to-3D human pose lifting.

Concepts follow the paper: skeleton -> grid layout / SGT (``sgt``, ``layout_families``, ``autogrids``) ->
grid convolutions (``gridconv``, ``attention``) -> the Grid Lifting Network (``model``, ``model_config``) ->
training and evaluation (``train``, ``evaluate``, ``metrics``, ``data``). Every error class is in ``errors``.

The top level is lazy (PEP 562): ``import gridconv_core`` loads no submodule; each name of ``__all__`` imports
its module on first use, so a command or widget that needs only the layouts never loads the trainer.
"""
from __future__ import annotations

import importlib
from typing import Any

_MODULES = ("layout_families", "graph", "baselines", "metrics", "errors")
_NAMES = {
    "skeleton": ("Skeleton", "H36M17", "H36M32", "COCO17", "HUMANEVA15", "SKELETONS", "get_skeleton",
                 "register_skeleton"),
    "errors": ("SkeletonError", "LayoutError", "ConfigError", "InputError", "DataError", "CheckpointError",
               "EvalError"),
    "sgt": ("GridLayout", "GridTransform", "TopologyReport"),
    "autogrids": ("AutoGrids",),
    "graph": ("grid_graph", "skeleton_graph", "compare_graphs"),
    "attention": ("KernelScale", "build_attention"),
    "gridconv": ("GridConv", "DGridConv"),
    "model_config": ("GLNConfig",),
    "model": ("LiftingModel", "GridLiftingNetwork", "build_model"),
    "official": ("load_official_checkpoint",),
    "evaluate": ("EvalReport",),
    "train": ("TrainConfig", "TrainResult"),
}
_HOME = {name: module for module, names in _NAMES.items() for name in names}

__all__ = [*_MODULES, *_HOME]


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first access (PEP 562)."""
    if name in _MODULES:
        value: Any = importlib.import_module(f".{name}", __name__)
    elif name in _HOME:
        value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

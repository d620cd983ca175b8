"""gridconv_core: the GridConv model family (AAAI 2023) for 2D-to-3D human pose lifting."""
from .layout import GridLayout, GridTransform, LayoutError, TopologyReport
from .skeleton import COCO17, H36M17, H36M32, HUMANEVA15, SKELETONS, Skeleton, get_skeleton

__all__ = [
    "GridLayout", "GridTransform", "LayoutError", "TopologyReport",
    "Skeleton", "H36M17", "H36M32", "COCO17", "HUMANEVA15", "SKELETONS", "get_skeleton",
]

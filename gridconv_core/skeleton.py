"""Skeleton definitions: joint names, kinematic parents and left/right sides.

A :class:`Skeleton` is the graph ``G`` of the paper (section 3.1): ``J`` joints whose
edges ``E`` (parent, child) feed the topology constraint of eq. 2.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any

from .errors import SkeletonError

__all__ = [
    "Skeleton",
    "H36M17",
    "H36M32",
    "COCO17",
    "HUMANEVA15",
    "BUILTIN_SKELETONS",
    "SKELETONS",
    "get_skeleton",
    "register_skeleton",
]


@dataclass(frozen=True)
class Skeleton:
    """A named kinematic tree.

    Attributes:
        name: e.g. ``"h36m17"`` (the name :func:`get_skeleton` resolves for built-in and registered ones).
        joint_names: one name per joint, in data order.
        parents: parent index per joint, ``-1`` for the root.
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.joint_names) != len(self.parents):
            raise SkeletonError(
                f"skeleton {self.name!r}: {len(self.joint_names)} names but {len(self.parents)} parents"
            )
        if len(set(self.joint_names)) != len(self.joint_names):
            raise SkeletonError(f"skeleton {self.name!r}: joint names are not unique")
        for j, p in enumerate(self.parents):
            if p >= len(self.parents) or p < -1 or p == j:
                raise SkeletonError(f"skeleton {self.name!r}: joint {j} has invalid parent {p}")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @cached_property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """Skeleton edges ``E`` as (parent, child) pairs, zero-length duplicates included."""
        return tuple((p, j) for j, p in enumerate(self.parents) if p >= 0)

    @cached_property
    def left(self) -> tuple[int, ...]:
        """Joints on the subject's left side (name starts with ``L``)."""
        return tuple(i for i, n in enumerate(self.joint_names) if _side(n) == "L")

    @cached_property
    def right(self) -> tuple[int, ...]:
        """Joints on the subject's right side (name starts with ``R``)."""
        return tuple(i for i, n in enumerate(self.joint_names) if _side(n) == "R")

    @cached_property
    def flip_permutation(self) -> tuple[int, ...]:
        """Index permutation that swaps left and right joints (by name)."""
        index = {n: i for i, n in enumerate(self.joint_names)}
        perm = []
        for n in self.joint_names:
            side = _side(n)
            mirrored = ("R" + n[1:]) if side == "L" else ("L" + n[1:]) if side == "R" else n
            perm.append(index.get(mirrored, index[n]))
        return tuple(perm)

    @property
    def is_builtin(self) -> bool:
        """True for the toolkit's own skeletons (layout JSON refers to them by name)."""
        return any(self == s for s in BUILTIN_SKELETONS)

    def to_dict(self) -> dict[str, Any]:
        """The definition as plain JSON types (a custom skeleton travels inside its layout's JSON)."""
        return {"name": self.name, "joint_names": list(self.joint_names), "parents": list(self.parents)}

    @classmethod
    def from_dict(cls, data: Any) -> Skeleton:
        """The skeleton of a :meth:`to_dict` object; a malformed one raises :class:`SkeletonError`."""
        if not isinstance(data, dict) or set(data) != {"name", "joint_names", "parents"}:
            raise SkeletonError("a skeleton definition needs exactly 'name', 'joint_names' and 'parents'")
        name, names, parents = data["name"], data["joint_names"], data["parents"]
        if not (isinstance(name, str) and isinstance(names, list) and all(isinstance(n, str) for n in names)
                and isinstance(parents, list) and all(isinstance(p, int) and not isinstance(p, bool) for p in parents)):
            raise SkeletonError("a skeleton definition needs a name, a list of joint names and a list of parent indices")
        return cls(name, tuple(names), tuple(parents))

    def index(self, name: str) -> int:
        """Index of a joint by name (:class:`SkeletonError` naming the valid joints otherwise)."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise SkeletonError(f"skeleton {self.name!r} has no joint {name!r}; joints: {', '.join(self.joint_names)}") from None


def _side(name: str) -> str:
    return name[0] if len(name) > 1 and name[0] in "LR" and name[1].isupper() else ""


H36M17 = Skeleton(
    "h36m17",
    (
        "Pelvis", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "Spine", "Thorax",
        "Nose", "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
    ),
    (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
)
"""Human3.6M 17-joint skeleton (VideoPose3D / SemGCN / GridConv order). Joint 9 is Neck/Nose."""

H36M32 = Skeleton(
    "h36m32",
    (
        "Hip", "RHip", "RKnee", "RFoot", "RToeBase", "RToeSite", "LHip", "LKnee", "LFoot",
        "LToeBase", "LToeSite", "Spine", "Thorax", "Neck", "Head", "HeadSite", "LShoulderAnchor",
        "LShoulder", "LElbow", "LWrist", "LThumb", "LThumbSite", "LWristEnd", "LWristEndSite",
        "RShoulderAnchor", "RShoulder", "RElbow", "RWrist", "RThumb", "RThumbSite", "RWristEnd",
        "RWristEndSite",
    ),
    (-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12, 16, 17, 18, 19, 20, 19, 22, 12,
     24, 25, 26, 27, 28, 27, 30),
)
"""Original Human3.6M 32-joint skeleton (paper Table 6). Several joints coincide."""

COCO17 = Skeleton(
    "coco17",
    (
        "Nose", "LEye", "REye", "LEar", "REar", "LShoulder", "RShoulder", "LElbow", "RElbow",
        "LWrist", "RWrist", "LHip", "RHip", "LKnee", "RKnee", "LAnkle", "RAnkle",
    ),
    # A tree rooted at the nose: eyes->ears, shoulders->elbows->wrists, shoulders->hips->knees->ankles.
    (-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
)
"""COCO-17 keypoints (2D detector output), as a tree rooted at the nose."""

HUMANEVA15 = Skeleton(
    "humaneva15",
    (
        "Pelvis", "Thorax", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
        "LHip", "LKnee", "LAnkle", "RHip", "RKnee", "RAnkle", "Head",
    ),
    (-1, 0, 1, 2, 3, 1, 5, 6, 0, 8, 9, 0, 11, 12, 1),
)
"""HumanEva-I 15-joint skeleton (VideoPose3D order)."""

BUILTIN_SKELETONS: tuple[Skeleton, ...] = (H36M17, H36M32, COCO17, HUMANEVA15)
_REGISTRY: dict[str, Skeleton] = {s.name: s for s in BUILTIN_SKELETONS}
SKELETONS: Mapping[str, Skeleton] = MappingProxyType(_REGISTRY)
"""Read-only view of the skeletons resolvable by name: the built-in ones and any :func:`register_skeleton` added."""


def get_skeleton(name_or_skeleton: str | Skeleton) -> Skeleton:
    """Resolve a skeleton name (the edges: configs, the CLI, JSON); a :class:`Skeleton` is returned unchanged."""
    if isinstance(name_or_skeleton, Skeleton):
        return name_or_skeleton
    try:
        return _REGISTRY[name_or_skeleton]
    except (KeyError, TypeError):
        raise SkeletonError(f"unknown skeleton {name_or_skeleton!r}; known: {', '.join(_REGISTRY)}") from None


def register_skeleton(skeleton: Skeleton) -> Skeleton:
    """Make a custom skeleton resolvable by name in configs and on the command line (explicit: nothing else
    writes the registry; layouts and models hold their :class:`Skeleton` and need no registration).

    Registering the same skeleton twice is a no-op; a different skeleton under a taken name raises.
    """
    known = _REGISTRY.get(skeleton.name)
    if known is not None and known != skeleton:
        raise SkeletonError(f"skeleton name {skeleton.name!r} is already registered with a different definition")
    _REGISTRY[skeleton.name] = skeleton
    return skeleton

"""Joint-set conversions into the Human3.6M-17 input order (issue 3 "Data").

* SH-16 (MPII order, the StackedHourglass detections) has no Neck/Nose: it is placed on the
  Thorax -> Head segment at :data:`SH_NECK_RATIO` (the least-squares ratio measured on projected
  ground-truth 2D of all Human3.6M subjects; see :func:`fit_neck_ratio`).
* COCO-17 follows mmpose ``convert_keypoint_definition``: Pelvis = mean of hips, Thorax = mean of
  shoulders, Spine = mean of Pelvis and Thorax, Head = mean of eyes, Nose copied, limbs permuted.
* MPI-INF-3DHP's 17-joint test order maps by index (head_top -> Head, neck -> Thorax, head -> Nose).
* :func:`fill_missing_joints` places 2D input joints a dataset lacks from their neighbours
  (:data:`FILL_RULES`) instead of zeros, which are a real image position (the image centre).

All conversions take numpy arrays or torch tensors ``(..., J_src, C)`` for any ``C``.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
from torch import Tensor

from ..skeleton import H36M17, Skeleton, get_skeleton
from ..errors import DataError

__all__ = [
    "SH16_NAMES", "SH16_TO_H36M17", "SH_NECK_RATIO", "MPI3DHP17_TO_H36M17", "H36M32_TO_H36M17",
    "sh16_to_h36m17", "coco17_to_h36m17", "mpi3dhp17_to_h36m17", "fit_neck_ratio", "match_joints",
    "FILL_RULES", "fill_missing_joints",
]

Array = TypeVar("Array", np.ndarray, Tensor)

SH16_NAMES = ("RAnkle", "RKnee", "RHip", "LHip", "LKnee", "LAnkle", "Pelvis", "Spine", "Thorax", "Head",
              "RWrist", "RElbow", "RShoulder", "LShoulder", "LElbow", "LWrist")
"""StackedHourglass / MPII 16-joint order of the SH detections."""

SH16_TO_H36M17 = (6, 2, 1, 0, 3, 4, 5, 7, 8, -1, 9, 13, 14, 15, 12, 11, 10)
"""Source SH-16 index of each H36M-17 joint; ``-1`` for Neck/Nose, interpolated instead."""

SH_NECK_RATIO = 0.44
"""Neck/Nose = Thorax + r (Head - Thorax). Least-squares fit (:func:`fit_neck_ratio`) on the
projected GT 2D of all 7 subjects x 4 cameras (1.98M poses): r = 0.442, median distance to the
true Neck/Nose 8.8 px, against 9.2 px for the midpoint r = 0.5."""

MPI3DHP17_TO_H36M17 = (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)
"""MPI-INF-3DHP 17-joint test order index of each H36M-17 joint (peers file, P-STMO)."""

H36M32_TO_H36M17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
"""The 17 standard joints as a subset of the original 32 Human3.6M joints."""

_THORAX, _HEAD = H36M17.index("Thorax"), H36M17.index("Head")

FILL_RULES: dict[str, tuple[str, str, float]] = {
    "Pelvis": ("LHip", "RHip", 0.5),
    "Thorax": ("LShoulder", "RShoulder", 0.5),
    "Spine": ("Pelvis", "Thorax", 0.5),
    "Nose": ("Thorax", "Head", SH_NECK_RATIO),
    "Head": ("Thorax", "Nose", 1.0 / SH_NECK_RATIO),
}
"""A missing joint ``j: (a, b, t)`` is placed at ``a + t (b - a)``: Pelvis and Thorax at the midpoints of
the hips and shoulders (as for COCO input), Spine midway between Pelvis and Thorax, Neck/Nose on
Thorax -> Head at the SH ratio, Head extended from Thorax through Nose. Any other missing joint (or one
whose rule lacks a source) takes its nearest present ancestor's position."""


def sh16_to_h36m17(x: Array, neck_ratio: float = SH_NECK_RATIO) -> Array:
    """SH-16 ``(..., 16, C)`` to H36M-17 ``(..., 17, C)``, Neck/Nose on the Thorax-Head segment."""
    _check_joints(x, 16, "SH-16")
    out = x[..., list(np.maximum(SH16_TO_H36M17, 0)), :] * 1  # copy (the Nose slot is overwritten)
    out[..., 9, :] = out[..., _THORAX, :] + neck_ratio * (out[..., _HEAD, :] - out[..., _THORAX, :])
    return out


def coco17_to_h36m17(x: Array) -> Array:
    """COCO-17 ``(..., 17, C)`` to H36M-17 (mmpose ``convert_keypoint_definition``)."""
    _check_joints(x, 17, "COCO-17")
    out = x[..., [0, 12, 14, 16, 11, 13, 15, 0, 0, 0, 0, 5, 7, 9, 6, 8, 10], :] * 1
    out[..., 0, :] = (x[..., 11, :] + x[..., 12, :]) / 2
    out[..., 8, :] = (x[..., 5, :] + x[..., 6, :]) / 2
    out[..., 7, :] = (out[..., 0, :] + out[..., 8, :]) / 2
    out[..., 10, :] = (x[..., 1, :] + x[..., 2, :]) / 2
    return out


def mpi3dhp17_to_h36m17(x: Array) -> Array:
    """MPI-INF-3DHP 17-joint test order ``(..., 17, C)`` to H36M-17."""
    _check_joints(x, 17, "MPI-INF-3DHP-17")
    return x[..., list(MPI3DHP17_TO_H36M17), :]


def fill_missing_joints(pose2d: Array, skeleton: str | Skeleton, missing: Sequence[int]) -> tuple[Array, list[str]]:
    """``pose2d`` ``(..., J, C)`` with the ``missing`` joints placed by :data:`FILL_RULES`; and their names.

    Rules are applied while their two sources are known (present or already filled), in
    :data:`FILL_RULES` order; the remaining joints copy their nearest known ancestor. The root must be present.
    """
    sk = get_skeleton(skeleton)
    out = pose2d * 1  # copy
    known = set(range(sk.num_joints)) - {int(j) for j in missing}
    todo = [j for j in range(sk.num_joints) if j not in known]
    if sk.parents.index(-1) in todo:
        raise DataError(f"cannot fill the root joint {sk.joint_names[sk.parents.index(-1)]!r} of {sk.name}")
    progress = True
    while progress:
        progress = False
        for name, (a, b, t) in FILL_RULES.items():
            j, ia, ib = (sk.joint_names.index(n) if n in sk.joint_names else -1 for n in (name, a, b))
            if j in todo and ia in known and ib in known:
                out[..., j, :] = out[..., ia, :] + t * (out[..., ib, :] - out[..., ia, :])
                todo.remove(j)
                known.add(j)
                progress = True
    for j in sorted(todo, key=lambda j: _depth(sk, j)):  # ancestors first
        ancestor = sk.parents[j]
        while ancestor not in known:
            ancestor = sk.parents[ancestor]
        out[..., j, :] = out[..., ancestor, :]
        known.add(j)
    return out, [sk.joint_names[j] for j in range(sk.num_joints) if j in set(int(m) for m in missing)]


def _depth(sk: Skeleton, j: int) -> int:
    depth = 0
    while sk.parents[j] >= 0:
        j, depth = sk.parents[j], depth + 1
    return depth


def fit_neck_ratio(pose2d_h36m17: np.ndarray) -> float:
    """Least-squares ``r`` with Nose ~ Thorax + r (Head - Thorax) over poses ``(N, 17, 2)``."""
    d = pose2d_h36m17[..., _HEAD, :] - pose2d_h36m17[..., _THORAX, :]
    e = pose2d_h36m17[..., 9, :] - pose2d_h36m17[..., _THORAX, :]
    return float((d * e).sum() / (d * d).sum())


_ALIASES = {"hip": "pelvis", "root": "pelvis", "midhip": "pelvis", "necknose": "nose", "headtop": "head",
            "neck": "thorax"}


def _canonical(name: str) -> str:
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    key = re.sub(r"^left", "l", re.sub(r"^right", "r", key))
    return _ALIASES.get(key, key)


def match_joints(src_names: Sequence[str], dst_skeleton: str | Skeleton) -> np.ndarray:
    """For each joint of ``dst_skeleton``, its index in ``src_names`` (``-1`` where absent).

    Names match case-insensitively, ignoring punctuation, with ``Left``/``Right`` prefixes as
    ``L``/``R`` and a few aliases (``Hip``/``root`` -> Pelvis, ``Neck`` -> Thorax,
    ``Neck/Nose`` -> Nose, ``head_top`` -> Head).
    """
    dst = get_skeleton(dst_skeleton)
    src = {}
    for i, n in enumerate(src_names):
        src.setdefault(_canonical(str(n)), i)
    return np.array([src.get(_canonical(n), -1) for n in dst.joint_names], dtype=np.int64)


def _check_joints(x: Array, j: int, what: str) -> None:
    if x.ndim < 2 or x.shape[-2] != j:
        raise DataError(f"{what} keypoints need shape (..., {j}, C), got {tuple(x.shape)}")

"""Helpers shared by every gridviz widget: the error type, HTML banners, choices and skeleton templates."""
from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np

from gridconv_core import Skeleton, get_skeleton

__all__ = ["GridvizError", "banner_html", "choose", "template_pose", "cell_label"]


class GridvizError(ValueError):
    """A widget was given unusable input (an unreadable file, a missing key)."""


_BANNER_STYLE = {
    "error": "background:#fdecea;border:1px solid #d93025;color:#7a1610",
    "warning": "background:#fff6e0;border:1px solid #e0a100;color:#5c4200",
    "info": "background:#e8f0fe;border:1px solid #1a73e8;color:#0b3a82",
}


def banner_html(title: str, lines: Sequence[str] = (), kind: str = "error", testid: str = "gridviz-banner") -> str:
    """A coloured HTML banner with a bold title and an optional bullet list, every string escaped."""
    if kind not in _BANNER_STYLE:
        raise GridvizError(f"unknown banner kind {kind!r}; expected one of {', '.join(_BANNER_STYLE)}")
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    body = f"<ul style='margin:4px 0 0 18px;padding:0'>{items}</ul>" if items else ""
    return (
        f"<div data-testid='{testid}' style='{_BANNER_STYLE[kind]};border-radius:4px;padding:6px 10px;"
        f"font:13px/1.4 system-ui,sans-serif'><b>{html.escape(title)}</b>{body}</div>"
    )


def choose(value: Any, choices: Sequence[Any], what: str) -> Any:
    """``value`` when it is one of ``choices`` (a trait validator's check); else :class:`GridvizError`."""
    if value not in choices:
        raise GridvizError(f"unknown {what} {value!r}; choose from {', '.join(map(repr, choices))}")
    return value


def cell_label(cell: int | Sequence[int], joint_names: Sequence[str]) -> str:
    """Text of one grid cell: joint name(s) joined by ``+``, empty for a cleared cell (``-1``)."""
    joints = [cell] if isinstance(cell, (int, np.integer)) else list(cell)
    return "+".join(joint_names[j] if 0 <= j < len(joint_names) else f"?{j}" for j in joints if j != -1)


# Front view of a standing person (x to the viewer's right, y up, metres-ish); the subject's
# right side is drawn on the viewer's left. Names cover every skeleton in gridconv_core.skeleton.
_TEMPLATE_XY: dict[str, tuple[float, float]] = {
    "Pelvis": (0.0, 0.0), "Hip": (0.0, 0.0), "Spine": (0.0, 0.25), "Thorax": (0.0, 0.5),
    "Neck": (0.0, 0.58), "Nose": (0.0, 0.68), "Head": (0.0, 0.8), "HeadSite": (0.0, 0.9),
    "LEye": (0.04, 0.74), "LEar": (0.09, 0.71),
    "LShoulderAnchor": (0.06, 0.52), "LShoulder": (0.19, 0.5), "LElbow": (0.27, 0.23),
    "LWrist": (0.32, -0.02), "LWristEnd": (0.33, -0.08), "LWristEndSite": (0.33, -0.13),
    "LThumb": (0.29, -0.06), "LThumbSite": (0.27, -0.1),
    "LHip": (0.12, 0.0), "LKnee": (0.13, -0.44), "LAnkle": (0.14, -0.88), "LFoot": (0.14, -0.88),
    "LToeBase": (0.17, -0.95), "LToeSite": (0.2, -0.99),
}


def template_pose(skeleton: str | Skeleton) -> np.ndarray:
    """A fixed 2D drawing pose ``(J, 2)`` for a skeleton (used by the editor's skeleton sketch).

    Known joint names use a hand-placed front view (``R*`` joints mirror ``L*``); any other joint
    hangs below its parent, fanned out by sibling order, so every skeleton gets a drawing.
    """
    sk = get_skeleton(skeleton)
    xy = np.zeros((sk.num_joints, 2))
    placed = np.zeros(sk.num_joints, dtype=bool)
    for j, name in enumerate(sk.joint_names):
        mirrored = "L" + name[1:] if j in sk.right else name
        if mirrored in _TEMPLATE_XY:
            x, y = _TEMPLATE_XY[mirrored]
            xy[j] = (-x if j in sk.right else x, y)
            placed[j] = True
    for j in _topological_order(sk.parents):
        if placed[j]:
            continue
        parent = sk.parents[j]
        siblings = [k for k, p in enumerate(sk.parents) if p == parent]
        spread = (siblings.index(j) - (len(siblings) - 1) / 2) * 0.15
        xy[j] = (xy[parent] + (spread, -0.2)) if parent >= 0 else (0.0, 0.0)
        placed[j] = True
    return xy


def _topological_order(parents: Sequence[int]) -> list[int]:
    """Joints ordered so that every parent comes before its children."""
    order: list[int] = []
    frontier = [j for j, p in enumerate(parents) if p < 0]
    while frontier:
        j = frontier.pop(0)
        order.append(j)
        frontier.extend(k for k, p in enumerate(parents) if p == j)
    return order

"""2D screen normalisation of pixel keypoints (paper A.4; VideoPose3D and the authors' recipes).

* ``screen`` (VideoPose3D): ``uv / w * 2 - [1, h / w]``: width to [-1, 1], aspect ratio kept.
* ``official`` (GridConv training code): ``(uv - 500) / 500``, every image taken as 1000 x 1000.
* ``wild`` (the authors' in-the-wild recipe, GridConv issue #2): scale by ``L/2`` with ``L = max(W, H)``,
  as ``(uv - L/2) / (L/2)`` does for a frame padded to a centred ``L x L`` square: each axis is centred
  on its own image centre, ``(uv - [W/2, H/2]) / (L/2)``, so the image centre maps to (0, 0) as in
  training (the literal formula on an unpadded 1920x1080 frame would move it to y = -0.44).

``w`` and ``h`` are scalars or per-frame arrays ``(N,)`` for keypoints ``(N, J, 2)``; numpy or torch.
"""
from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
from torch import Tensor

from ..errors import ConfigError
from .camera import _like

__all__ = ["NORMALIZATIONS", "normalize", "normalize_screen", "unnormalize_screen", "normalize_official",
           "unnormalize_official", "normalize_wild"]

Array = TypeVar("Array", np.ndarray, Tensor)
NORMALIZATIONS = ("screen", "official", "wild")


def _frame_scalar(v: Any, ref: Array) -> Array:
    """A scalar or ``(N,)`` size as an array broadcasting against ``(N, J, 1)``."""
    v = _like(v, ref)
    return v.reshape(-1, 1, 1) if v.ndim >= 1 else v


def normalize_screen(uv: Array, w: Any, h: Any) -> Array:
    """VideoPose3D ``normalize_screen_coordinates``: ``uv / w * 2 - [1, h / w]``."""
    w, h = _frame_scalar(w, uv), _frame_scalar(h, uv)
    return uv / w * 2 - _screen_offset(w, h, uv)


def unnormalize_screen(xy: Array, w: Any, h: Any) -> Array:
    """Inverse of :func:`normalize_screen`, back to pixels."""
    w, h = _frame_scalar(w, xy), _frame_scalar(h, xy)
    return (xy + _screen_offset(w, h, xy)) * w / 2


def normalize_official(uv: Array) -> Array:
    """The official GridConv training normalisation ``(uv - 500) / 500``."""
    return (uv - 500.0) / 500.0


def unnormalize_official(xy: Array) -> Array:
    """Inverse of :func:`normalize_official`."""
    return xy * 500.0 + 500.0


def normalize_wild(uv: Array, w: Any, h: Any) -> Array:
    """In-the-wild normalisation ``(uv - [W/2, H/2]) / (L/2)``, ``L = max(W, H)`` (module doc)."""
    w, h = _frame_scalar(w, uv), _frame_scalar(h, uv)
    half = (w + h + abs(w - h)) / 4  # max(w, h) / 2, for numpy and torch alike
    centre = _like((0.5, 0.0), uv) * w + _like((0.0, 0.5), uv) * h
    return (uv - centre) / half


def normalize(uv: Array, w: Any, h: Any, mode: str = "screen") -> Array:
    """Dispatch on ``mode`` in :data:`NORMALIZATIONS`."""
    if mode == "screen":
        return normalize_screen(uv, w, h)
    if mode == "official":
        return normalize_official(uv)
    if mode == "wild":
        return normalize_wild(uv, w, h)
    raise ConfigError(f"unknown normalization {mode!r}; choose one of {', '.join(NORMALIZATIONS)}")


def _screen_offset(w: Array, h: Array, ref: Array) -> Array:
    """``[1, h / w]`` on the trailing axis, broadcasting over frames."""
    e_x, e_y = _like((1.0, 0.0), ref), _like((0.0, 1.0), ref)
    return e_x + (h / w) * e_y

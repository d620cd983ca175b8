"""Camera model of Human3.6M: world to camera, then pinhole with radial and tangential distortion.

``X_cam = R (X_world - T)`` (``R`` world-to-camera, ``T`` the camera centre), then
``x = X/Z, y = Y/Z``, ``r^2 = x^2 + y^2``, radial ``1 + k1 r^2 + k2 r^4 + k3 r^6``, tangential
as in the dataset's own ``ProjectPointRadial`` (also Martinez et al.): ``tan = p1 y + p2 x``,
``x' = x (radial + tan) + p2 r^2``, ``y' = y (radial + tan) + p1 r^2``; pixels ``uv = f x' + c``.
Every function takes numpy arrays or torch tensors, batched over any leading dimensions.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from ..io import read_json

__all__ = ["Camera", "world_to_camera", "camera_to_world", "project", "load_cameras_json"]

Array = TypeVar("Array", np.ndarray, Tensor)


def _like(value: Any, ref: Array) -> Array:
    """``value`` as the same array type, dtype and device as ``ref``."""
    if isinstance(ref, Tensor):
        return torch.as_tensor(value, dtype=ref.dtype, device=ref.device)
    return np.asarray(value, dtype=ref.dtype)


def world_to_camera(x: Array, r: Any, t: Any) -> Array:
    """``R (X - T)`` for joints ``(..., J, 3)``; ``R`` is ``(3, 3)`` or ``(..., 3, 3)``, ``T`` ``(3,)`` or ``(..., 3)``."""
    r, t = _like(r, x), _like(t, x)
    return (x - t[..., None, :]) @ r.swapaxes(-1, -2)


def camera_to_world(x_cam: Array, r: Any, t: Any) -> Array:
    """Inverse of :func:`world_to_camera`: ``R^T X_cam + T``."""
    r, t = _like(r, x_cam), _like(t, x_cam)
    return x_cam @ r + t[..., None, :]


def project(x_cam: Array, f: Any, c: Any, k: Any = (0.0, 0.0, 0.0), p: Any = (0.0, 0.0)) -> Array:
    """Camera-frame joints ``(..., J, 3)`` to pixels ``(..., J, 2)``; parameters ``(2|3,)`` or ``(..., 2|3)``."""
    f, c, k, p = (_like(v, x_cam)[..., None, :] for v in (f, c, k, p))
    xy = x_cam[..., :2] / x_cam[..., 2:3]
    r2 = xy[..., 0:1] ** 2 + xy[..., 1:2] ** 2
    radial = 1 + r2 * (k[..., 0:1] + r2 * (k[..., 1:2] + r2 * k[..., 2:3]))  # Horner form
    tan = p[..., 0:1] * xy[..., 1:2] + p[..., 1:2] * xy[..., 0:1]
    distorted = xy * (radial + tan) + p[..., [1, 0]] * r2
    return f * distorted + c


@dataclass(frozen=True)
class Camera:
    """One calibrated camera (Human3.6M conventions: millimetres, pixels)."""

    id: str
    R: np.ndarray
    T: np.ndarray
    f: np.ndarray
    c: np.ndarray
    k: np.ndarray
    p: np.ndarray
    res_w: int
    res_h: int

    @classmethod
    def from_dict(cls, camera_id: str, d: dict[str, Any]) -> Camera:
        """From the shared ``h36m_cameras.json`` entry ``{R, T, f, c, k, p, res_w, res_h}``."""
        try:
            cam = cls(
                str(camera_id),
                np.asarray(d["R"], np.float64).reshape(3, 3),
                np.asarray(d["T"], np.float64).reshape(3),
                np.asarray(d["f"], np.float64).reshape(2),
                np.asarray(d["c"], np.float64).reshape(2),
                np.asarray(d.get("k", (0.0, 0.0, 0.0)), np.float64).reshape(3),
                np.asarray(d.get("p", (0.0, 0.0)), np.float64).reshape(2),
                int(d["res_w"]),
                int(d["res_h"]),
            )
        except (KeyError, ValueError, TypeError) as err:
            raise DataError(f"camera {camera_id}: malformed calibration ({type(err).__name__}: {err})") from None
        if not all(np.isfinite(a).all() for a in (cam.R, cam.T, cam.f, cam.c, cam.k, cam.p)):
            raise DataError(f"camera {camera_id}: calibration holds NaN/inf")
        return cam

    @property
    def image_size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return self.res_w, self.res_h

    def world_to_camera(self, x: Array) -> Array:
        return world_to_camera(x, self.R, self.T)

    def project(self, x_cam: Array) -> Array:
        return project(x_cam, self.f, self.c, self.k, self.p)


def load_cameras_json(path: str | os.PathLike[str]) -> dict[str, dict[str, Camera]]:
    """``{subject: {camera id: Camera}}`` from a ``h36m_cameras.json`` file."""
    data = read_json(Path(path), DataError, "camera")
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise DataError(f"corrupt camera file {path}: expected {{subject: {{camera id: {{R, T, f, c, ...}}}}}}")
    return {subj: {cid: Camera.from_dict(cid, d) for cid, d in cams.items()} for subj, cams in data.items()}

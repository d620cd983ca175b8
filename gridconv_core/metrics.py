"""3D pose errors (paper 4.1): MPJPE (Protocol 1), PA-MPJPE (Protocol 2), 3D PCK and AUC.

Inputs are ``(N, J, 3)`` numpy arrays or torch tensors in any unit (callers pass millimetres).
Each metric returns the mean as a Python float, or with ``per_frame=True`` an ``(N,)`` numpy
array. ``joints`` restricts the evaluation to an index list (joints two skeletons share).
Computation runs batched in float64 torch on the inputs' device.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .errors import MetricError

__all__ = ["METRICS", "mpjpe", "pa_mpjpe", "pck", "auc", "compute_metric", "procrustes_align"]

ArrayLike = np.ndarray | Tensor
AUC_THRESHOLDS = np.arange(0, 151, 5)
"""0, 5, ..., 150 (31 thresholds), the MPI-INF-3DHP ``mpii_compute_3d_pck`` convention."""


def _prepare(pred: ArrayLike, gt: ArrayLike, joints: Sequence[int] | None) -> tuple[Tensor, Tensor]:
    device = pred.device if isinstance(pred, Tensor) else gt.device if isinstance(gt, Tensor) else None
    p = torch.as_tensor(pred).detach().to(device=device, dtype=torch.float64)
    g = torch.as_tensor(gt).detach().to(device=device, dtype=torch.float64)
    if p.shape != g.shape or p.ndim != 3 or p.shape[-1] != 3:
        raise MetricError(f"pred {tuple(p.shape)} and gt {tuple(g.shape)} must both be (N, J, 3)")
    if p.shape[0] == 0:
        raise MetricError("no poses to evaluate (N = 0)")
    if joints is not None:
        idx = [int(j) for j in joints]
        if not idx or min(idx) < 0 or max(idx) >= p.shape[1]:
            raise MetricError(f"joints {list(joints)} must be a non-empty index list within 0..{p.shape[1] - 1}")
        p, g = p[:, idx], g[:, idx]
    for name, t in (("pred", p), ("gt", g)):
        if not bool(torch.isfinite(t).all()):
            raise MetricError(f"{name} contains NaN/inf values")
    return p, g


def _reduce(per_frame_values: Tensor, per_frame: bool) -> float | np.ndarray:
    if per_frame:
        return per_frame_values.cpu().numpy()
    return float(per_frame_values.mean())


def _joint_errors(pred: ArrayLike, gt: ArrayLike, joints: Sequence[int] | None) -> Tensor:
    p, g = _prepare(pred, gt, joints)
    return torch.linalg.vector_norm(p - g, dim=-1)  # (N, J)


def mpjpe(pred: ArrayLike, gt: ArrayLike, joints: Sequence[int] | None = None, per_frame: bool = False) -> float | np.ndarray:
    """Mean per-joint position error: mean Euclidean distance over joints (and frames)."""
    return _reduce(_joint_errors(pred, gt, joints).mean(dim=1), per_frame)


def procrustes_align(pred: Tensor, gt: Tensor) -> Tensor:
    """Per-frame similarity transform (scale, rotation, translation) of ``pred`` onto ``gt``.

    Batched SVD of the ``3 x 3`` cross-covariances; a reflection is prevented by flipping the
    last singular direction when ``det < 0`` (VideoPose3D ``p_mpjpe``).
    """
    mu_p, mu_g = pred.mean(dim=1, keepdim=True), gt.mean(dim=1, keepdim=True)
    p0, g0 = pred - mu_p, gt - mu_g
    norm_p = torch.linalg.vector_norm(p0, dim=(1, 2), keepdim=True).clamp_min(1e-12)
    norm_g = torch.linalg.vector_norm(g0, dim=(1, 2), keepdim=True).clamp_min(1e-12)
    p0, g0 = p0 / norm_p, g0 / norm_g
    u, s, vt = torch.linalg.svd(g0.transpose(1, 2) @ p0)  # H = G^T P, (N, 3, 3)
    v = vt.transpose(1, 2)
    sign = torch.sign(torch.linalg.det(v @ u.transpose(1, 2)))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    v = torch.cat([v[..., :2], v[..., 2:] * sign[:, None, None]], dim=-1)
    s = torch.cat([s[:, :2], s[:, 2:] * sign[:, None]], dim=-1)
    rot = v @ u.transpose(1, 2)  # maps centred pred rows onto gt: p0 @ rot
    scale = s.sum(dim=1)[:, None, None] * norm_g / norm_p
    return scale * ((pred - mu_p) @ rot) + mu_g


def pa_mpjpe(pred: ArrayLike, gt: ArrayLike, joints: Sequence[int] | None = None, per_frame: bool = False) -> float | np.ndarray:
    """Protocol 2: MPJPE after per-frame similarity alignment with scale (:func:`procrustes_align`)."""
    p, g = _prepare(pred, gt, joints)
    err = torch.linalg.vector_norm(procrustes_align(p, g) - g, dim=-1)
    return _reduce(err.mean(dim=1), per_frame)


def pck(
    pred: ArrayLike, gt: ArrayLike, threshold: float = 150.0, joints: Sequence[int] | None = None, per_frame: bool = False
) -> float | np.ndarray:
    """3D PCK: fraction (0..1) of joints whose error is strictly below ``threshold``."""
    return _reduce((_joint_errors(pred, gt, joints) < threshold).double().mean(dim=1), per_frame)


def auc(
    pred: ArrayLike,
    gt: ArrayLike,
    thresholds: Sequence[float] | np.ndarray = AUC_THRESHOLDS,
    joints: Sequence[int] | None = None,
    per_frame: bool = False,
) -> float | np.ndarray:
    """Area under the PCK curve: mean PCK over ``thresholds`` (default 0..150 step 5)."""
    err = _joint_errors(pred, gt, joints)
    th = torch.as_tensor(np.asarray(thresholds, dtype=np.float64), device=err.device)
    if th.ndim != 1 or th.numel() == 0:
        raise MetricError("thresholds must be a non-empty 1-D sequence")
    return _reduce((err[..., None] < th).double().mean(dim=(1, 2)), per_frame)


METRICS: dict[str, Callable[..., float | np.ndarray]] = {"mpjpe": mpjpe, "pa_mpjpe": pa_mpjpe, "pck": pck, "auc": auc}
"""The one metric registry: the evaluation protocols (:data:`gridconv_core.evaluate.PROTOCOLS`) name these."""


def compute_metric(pred: ArrayLike, gt: ArrayLike, mode: str = "mpjpe", **kw: Any) -> float | np.ndarray:
    """Dispatch by name: ``mode`` is a key of :data:`METRICS` (``"mpjpe"``, ``"pa_mpjpe"``, ``"pck"``, ``"auc"``)."""
    try:
        fn = METRICS[mode]
    except KeyError:
        raise MetricError(f"unknown metric mode {mode!r}; choose one of {', '.join(METRICS)}") from None
    return fn(pred, gt, **kw)

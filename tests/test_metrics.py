"""Metrics (paper 4.1): MPJPE, PA-MPJPE, PCK, AUC against a reference and their invariances."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gridconv_core.errors import MetricError
from gridconv_core.metrics import auc, compute_metric, mpjpe, pa_mpjpe, pck


def _random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    q[np.linalg.det(q) < 0, :, 0] *= -1
    return q


def _reference_p_mpjpe(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """VideoPose3D ``p_mpjpe`` (per frame), written independently with one SVD per frame."""
    out = []
    for p, g in zip(predicted, target):
        p0, g0 = p - p.mean(0), g - g.mean(0)
        u, s, vt = np.linalg.svd(g0.T @ p0)
        d = np.sign(np.linalg.det(vt.T @ u.T))
        fix = np.diag([1.0, 1.0, d])
        rot = vt.T @ fix @ u.T
        scale = (s * np.diag(fix)).sum() / (p0**2).sum()
        aligned = scale * p0 @ rot + g.mean(0)
        out.append(np.linalg.norm(aligned - g, axis=-1).mean())
    return np.array(out)


@pytest.fixture
def poses() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(40, 17, 3)) * 300
    return gt + rng.normal(size=gt.shape) * 60, gt


def test_mpjpe_is_mean_joint_distance(poses):
    pred, gt = poses
    manual = np.mean([np.sqrt(((p - g) ** 2).sum(-1)).mean() for p, g in zip(pred, gt)])
    assert mpjpe(pred, gt) == pytest.approx(manual)
    assert isinstance(mpjpe(pred, gt), float)
    shift = gt + np.array([30.0, 40.0, 0.0])
    assert mpjpe(shift, gt) == pytest.approx(50.0)


def test_pa_mpjpe_matches_reference(poses):
    pred, gt = poses
    ref = _reference_p_mpjpe(pred, gt)
    np.testing.assert_allclose(pa_mpjpe(pred, gt, per_frame=True), ref, rtol=1e-9)
    assert pa_mpjpe(pred, gt) == pytest.approx(ref.mean())
    assert pa_mpjpe(pred, gt) < mpjpe(pred, gt)


def test_pa_mpjpe_invariant_to_similarity_but_not_reflection(poses):
    _, gt = poses
    rng = np.random.default_rng(1)
    rot = _random_rotations(rng, len(gt))
    moved = 1.7 * np.einsum("nij,nkj->nki", rot, gt) + rng.normal(size=(len(gt), 1, 3)) * 500
    assert mpjpe(moved, gt) > 100
    assert pa_mpjpe(moved, gt) < 1e-6
    mirrored = gt * np.array([1.0, 1.0, -1.0])
    assert pa_mpjpe(mirrored, gt) > 50  # no reflection allowed
    np.testing.assert_allclose(pa_mpjpe(mirrored, gt, per_frame=True), _reference_p_mpjpe(mirrored, gt), rtol=1e-9)


def test_torch_and_numpy_agree(poses):
    pred, gt = poses
    for fn in (mpjpe, pa_mpjpe, pck, auc):
        assert fn(torch.tensor(pred, dtype=torch.float32), torch.tensor(gt)) == pytest.approx(fn(pred, gt), rel=1e-5)


def test_pck_and_auc_count_joints_below_threshold(poses):
    pred, gt = poses
    err = np.linalg.norm(pred - gt, axis=-1)
    assert pck(pred, gt, threshold=100.0) == pytest.approx((err < 100).mean())
    thresholds = np.arange(0, 151, 5)
    assert auc(pred, gt) == pytest.approx(np.mean([(err < t).mean() for t in thresholds]))
    exact = np.zeros_like(gt)
    exact[:, 0, 0] = 150.0  # error exactly at the threshold does not count (strict <)
    assert pck(exact, np.zeros_like(gt)) == pytest.approx(16 / 17)
    assert auc(gt, gt, thresholds=[0.0, 10.0]) == pytest.approx(0.5)


def test_joint_restriction_and_per_frame(poses):
    pred, gt = poses
    joints = [0, 3, 5, 9]
    assert mpjpe(pred, gt, joints=joints) == pytest.approx(mpjpe(pred[:, joints], gt[:, joints]))
    assert pa_mpjpe(pred, gt, joints=joints) == pytest.approx(pa_mpjpe(pred[:, joints], gt[:, joints]))
    per = pck(pred, gt, per_frame=True)
    assert per.shape == (len(gt),) and per.mean() == pytest.approx(pck(pred, gt))


def test_compute_metric_dispatch(poses):
    pred, gt = poses
    assert compute_metric(pred, gt, mode="pa_mpjpe") == pa_mpjpe(pred, gt)
    assert compute_metric(pred, gt, mode="pck", threshold=80.0) == pck(pred, gt, threshold=80.0)
    with pytest.raises(MetricError, match="unknown metric mode"):
        compute_metric(pred, gt, mode="n-mpjpe")


@pytest.mark.parametrize(
    "pred_shape, gt_shape, match",
    [((4, 16, 3), (4, 17, 3), "must both be"), ((4, 17, 2), (4, 17, 2), "must both be"), ((0, 17, 3), (0, 17, 3), "N = 0")],
)
def test_bad_shapes(pred_shape, gt_shape, match):
    with pytest.raises(MetricError, match=match):
        mpjpe(np.zeros(pred_shape), np.zeros(gt_shape))


def test_nan_and_bad_joints(poses):
    pred, gt = poses
    bad = pred.copy()
    bad[3, 2, 1] = np.nan
    with pytest.raises(MetricError, match="NaN"):
        pa_mpjpe(bad, gt)
    with pytest.raises(MetricError, match="joints"):
        mpjpe(pred, gt, joints=[0, 17])
    assert issubclass(MetricError, ValueError)

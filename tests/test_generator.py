"""The built-in pose generator: determinism, rigid bones, exact projection, plausibility."""
from __future__ import annotations

import numpy as np
import pytest

from gridconv_core.data import DataError
from gridconv_core.data.generator import GeneratorConfig, generate_poses, synthesize
from gridconv_core.data.normalization import unnormalize_screen
from gridconv_core.skeleton import H36M17

N = 1200


@pytest.fixture(scope="module")
def poses():
    return generate_poses(N, seed=7)


def _bones(x: np.ndarray) -> np.ndarray:
    return np.stack([np.linalg.norm(x[:, j] - x[:, p], axis=-1) for j, p in enumerate(H36M17.parents) if p >= 0], 1)


def test_shapes_labels_and_finite(poses):
    assert len(poses) == N
    assert tuple(poses.pose2d.shape) == (N, 17, 2) and tuple(poses.pose3d.shape) == (N, 17, 3)
    assert np.isfinite(poses.pose2d.numpy()).all() and np.isfinite(poses.pose3d.numpy()).all()
    assert set(poses.subject) == {"synthetic"} and set(poses.action) == {"synthetic"}
    assert poses.pose3d[:, 0].abs().max() == 0  # root-relative
    assert len(set(poses.sequence)) == N // GeneratorConfig().sequence_length


def test_deterministic_for_a_seed(poses):
    again = generate_poses(N, seed=7)
    assert again.pose2d.equal(poses.pose2d) and again.pose3d.equal(poses.pose3d)
    other = generate_poses(N, seed=8)
    assert (other.pose3d - poses.pose3d).abs().max() > 0.1


def test_bone_lengths_constant_within_a_sequence_and_realistic(poses):
    bones = _bones(poses.pose3d.numpy().astype(np.float64))  # metres
    for seq in np.unique(poses.sequence)[:5]:
        b = bones[poses.sequence == seq]
        assert b.std(axis=0).max() < 1e-5
    mean = bones.mean(axis=0)
    assert 0.35 < mean[H36M17.index("RKnee") - 1] < 0.55  # thigh
    assert 0.2 < mean[H36M17.index("LElbow") - 1] < 0.35  # upper arm
    lefts, rights = [j - 1 for j in H36M17.left], [j - 1 for j in H36M17.right]
    np.testing.assert_allclose(bones[:, lefts], bones[:, rights], rtol=1e-4)  # symmetric body


def test_2d_is_the_projection_of_the_3d():
    cfg = GeneratorConfig()
    cap = synthesize(300, seed=3, config=cfg)
    ps = generate_poses(300, seed=3, config=cfg)
    x_cam = np.einsum("nij,nkj->nki", cap.R, cap.joints_world - cap.T[:, None])  # mm
    np.testing.assert_allclose(ps.pose3d.numpy(), (x_cam - x_cam[:, :1]) / 1000, atol=1e-5)
    assert (x_cam[..., 2] > 1500).all()  # in front of the camera
    uv = cap.f[:, None] * x_cam[..., :2] / x_cam[..., 2:] + cap.c[:, None]
    w, h = cfg.image_size
    np.testing.assert_allclose(unnormalize_screen(ps.pose2d.numpy().astype(np.float64), w, h), uv, atol=1e-2)
    assert ((uv > 0) & (uv < 1000)).mean() > 0.99  # the subject is in the image


def test_noise_px_perturbs_2d_only():
    clean = generate_poses(400, seed=1)
    noisy = generate_poses(400, seed=1, noise_px=5.0)
    assert noisy.pose3d.equal(clean.pose3d)
    diff_px = (noisy.pose2d - clean.pose2d).numpy() * 1000 / 2  # screen units to pixels (w = 1000)
    assert 4.0 < diff_px.std() < 6.0


def test_motion_is_smooth_and_plausible():
    cap = synthesize(2000, seed=4)
    w = cap.joints_world
    same_seq = cap.sequence[1:] == cap.sequence[:-1]
    speed = np.linalg.norm(w[1:] - w[:-1], axis=-1)[same_seq]  # mm per frame at 50 fps
    assert np.median(speed) < 30 and speed.max() < 200
    assert (w[:, H36M17.index("Head"), 1] > w[:, 0, 1]).mean() > 0.99  # head above pelvis
    assert (w[:, H36M17.index("RAnkle"), 1] < w[:, 0, 1]).mean() > 0.9


def test_bad_arguments():
    with pytest.raises(DataError, match="h36m17"):
        generate_poses(10, skeleton="coco17")
    with pytest.raises(DataError, match="noise_px"):
        generate_poses(10, noise_px=-1)
    with pytest.raises(DataError, match="n >= 1"):
        generate_poses(0)

"""The real shared Human3.6M: frame counts, projection vs detections, exclusions, bad inputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gridconv_core.data import DataError
from gridconv_core.data.h36m import (
    ACTIONS, CAMERA_IDS, DRIFT_SEQUENCES, FILES, TEST_SUBJECTS, TRAIN_SUBJECTS, h36m_root, load_h36m, load_h36m32,
)
from gridconv_core.data.keypoints import H36M32_TO_H36M17
from gridconv_core.data.normalization import unnormalize_screen


@pytest.fixture(scope="session")
def frames_3d(h36m_dir: Path) -> dict[str, int]:
    """Frames per ``subject/sequence`` read straight from the 3D npz."""
    with np.load(h36m_dir / FILES["3d17"]) as npz:
        return {k: npz[k].shape[0] for k in npz.files}


@pytest.fixture(scope="session")
def test_gt(h36m_dir):
    return load_h36m(h36m_dir, TEST_SUBJECTS, source="gt")


@pytest.fixture(scope="session")
def test_sh(h36m_dir):
    return load_h36m(h36m_dir, TEST_SUBJECTS, source="sh")


def _pixels(ps) -> np.ndarray:
    h = np.where(np.isin(ps.camera, ["54138969", "60457274"]), 1002, 1000)
    return unnormalize_screen(ps.pose2d.numpy().astype(np.float64), 1000, h)


def test_test_set_frame_counts_and_exclusions(test_gt, test_sh, frames_3d):
    kept = {k: t for k, t in frames_3d.items() if k.split("/")[0] in TEST_SUBJECTS and k != "S11/Directions"}
    assert len(test_gt) == 4 * sum(kept.values())
    drift = sum(frames_3d[f"{s}/{q}"] for s, q in DRIFT_SEQUENCES)
    assert len(test_sh) == 4 * (sum(kept.values()) - drift)
    assert not ((test_gt.subject == "S11") & (test_gt.sequence == "Directions")).any()
    for s, q in DRIFT_SEQUENCES:
        assert ((test_gt.subject == s) & (test_gt.sequence == q)).sum() == 4 * frames_3d[f"{s}/{q}"]
        assert not ((test_sh.subject == s) & (test_sh.sequence == q)).any()
    assert set(test_gt.action) == set(ACTIONS) and set(test_gt.camera) == set(CAMERA_IDS)


def test_train_set_frame_count(h36m_dir, frames_3d):
    one_cam = load_h36m(h36m_dir, TRAIN_SUBJECTS, cameras=["55011271"])
    assert len(one_cam) == sum(t for k, t in frames_3d.items() if k.split("/")[0] in TRAIN_SUBJECTS)
    assert set(one_cam.subject) == set(TRAIN_SUBJECTS)


def test_root_relative_metres_and_frame_labels(test_gt, frames_3d):
    assert test_gt.pose3d[:, 0].abs().max() == 0
    bone = (test_gt.pose3d[:, 2] - test_gt.pose3d[:, 1]).norm(dim=-1)  # right thigh, metres
    assert 0.35 < float(bone.median()) < 0.55
    rows = (test_gt.subject == "S9") & (test_gt.sequence == "Walking 1") & (test_gt.camera == CAMERA_IDS[0])
    assert list(test_gt.frame[rows]) == list(range(frames_3d["S9/Walking 1"]))


def test_projected_gt_close_to_sh_detections(test_gt, test_sh):
    drift = np.zeros(len(test_gt), dtype=bool)
    for s, q in DRIFT_SEQUENCES:
        drift |= (test_gt.subject == s) & (test_gt.sequence == q)
    gt_same = test_gt.subset(~drift)
    assert np.array_equal(gt_same.sequence, test_sh.sequence) and np.array_equal(gt_same.frame, test_sh.frame)
    err = np.linalg.norm(_pixels(gt_same) - _pixels(test_sh), axis=-1)
    assert np.median(err) < 15.0
    assert np.median(err[:, 9]) < 15.0  # the interpolated Neck/Nose too


def test_official_normalisation_and_every(h36m_dir):
    a = load_h36m(h36m_dir, ["S9"], cameras=["55011271"], every=5)
    b = load_h36m(h36m_dir, ["S9"], cameras=["55011271"], every=5, normalization="official")
    assert np.allclose(a.pose2d.numpy(), b.pose2d.numpy(), atol=1e-5)  # identical for a 1000 x 1000 camera
    assert (a.frame % 5 == 0).all()


def test_h36m32_consistent_with_17(h36m_dir):
    p32 = load_h36m32(h36m_dir, ["S11"], cameras=["58860488"])
    p17 = load_h36m(h36m_dir, ["S11"], cameras=["58860488"], every=4)
    assert p32.skeleton.num_joints == 32 and np.array_equal(p32.frame, p17.frame)
    np.testing.assert_allclose(p32.pose3d[:, list(H36M32_TO_H36M17)].numpy(), p17.pose3d.numpy(), atol=1e-6)


def test_bad_inputs(h36m_dir, tmp_path, monkeypatch):
    with pytest.raises(DataError, match="unknown subject 'S2'"):
        load_h36m(h36m_dir, ["S2"])
    with pytest.raises(DataError, match="unknown camera"):
        load_h36m(h36m_dir, ["S9"], cameras=["123"])
    with pytest.raises(DataError, match="unknown 2D source"):
        load_h36m(h36m_dir, ["S9"], source="cpn")
    for name in FILES.values():
        (tmp_path / name).symlink_to(h36m_dir / name)
    (tmp_path / FILES["sh16"]).unlink()
    with pytest.raises(DataError, match="missing file .*h36m_sh16_2d_px.npz"):
        load_h36m(tmp_path, ["S9"], source="sh")
    (tmp_path / FILES["3d17"]).unlink()
    (tmp_path / FILES["3d17"]).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match="corrupt npz file .*h36m_3d17_world_mm.npz"):
        load_h36m(tmp_path, ["S9"])
    (tmp_path / FILES["cameras"]).unlink()
    (tmp_path / FILES["cameras"]).write_text("{}")
    (tmp_path / FILES["3d17"]).unlink()
    (tmp_path / FILES["3d17"]).symlink_to(h36m_dir / FILES["3d17"])
    with pytest.raises(DataError, match="no calibration for camera"):
        load_h36m(tmp_path, ["S9"])
    monkeypatch.setenv("GRIDCONV_H36M", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="GRIDCONV_H36M"):
        h36m_root()
    monkeypatch.setenv("GRIDCONV_H36M", str(h36m_dir))
    assert h36m_root() == h36m_dir

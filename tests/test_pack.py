"""The packed training folder (issue 11): size, round-trip error bounds against the normal loader."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gridconv_core.data import DataError, load_h36m
from gridconv_core.data.camera import Camera
from gridconv_core.data.h36m import CAMERA_IDS, build_poseset
from gridconv_core.data.pack import pack_h36m, pack_sequences, synthetic_h36m
from gridconv_core.data.packed import PACKED_FILE, STEP_MM, PackedSequences
from gridconv_core.skeleton import H36M17

JOINT_BOUND_M = math.sqrt(3) * STEP_MM / 2 / 1000 * 1.01  # rounding error of a joint (module doc), metres
PIXEL_BOUND = 0.1  # projected joints at >= ~1 m from the camera: f / Z * 0.087 mm < 0.1 px


def _assert_close(a, b) -> None:
    assert len(a) == len(b) and (a.subject == b.subject).all() and (a.camera == b.camera).all()
    assert (a.frame == b.frame).all() and (a.sequence == b.sequence).all()
    assert float((a.pose3d - b.pose3d).norm(dim=-1).max()) <= JOINT_BOUND_M
    assert float((a.pose2d - b.pose2d).abs().max()) * 500 <= PIXEL_BOUND  # screen units: 500 px per unit


def test_synthetic_round_trip_within_bound(tmp_path) -> None:
    sequences, cameras = synthetic_h36m(frames_per_subject=40, seed=3)
    out = pack_sequences(sequences, cameras, tmp_path / "packed")
    packed = PackedSequences(out / PACKED_FILE)
    assert packed.keys == set(sequences) and packed.num_frames == 7 * 40
    for key, x in sequences.items():
        err = np.abs(packed[key] - x).max()
        assert 0 < err <= STEP_MM / 2 + 1e-3  # quantised, and no more than half a step
    cams = {s: {cid: Camera.from_dict(cid, d) for cid, d in c.items()} for s, c in cameras.items()}
    for subjects in (["S1", "S5", "S6", "S7", "S8"], ["S9", "S11"]):
        ref = build_poseset({tuple(k.split("/")): sequences[k] for k in sorted(sequences) if k.split("/")[0] in subjects},
                            cams, H36M17, CAMERA_IDS)
        _assert_close(load_h36m(out, subjects), ref)


def test_rejects_far_joints_and_foreign_files(tmp_path) -> None:
    sequences, cameras = synthetic_h36m(frames_per_subject=4)
    key = next(iter(sequences))
    far = dict(sequences)
    far[key] = far[key].copy()
    far[key][0, 5] += 4000.0  # 4 m from the root: beyond int16 at 0.1 mm
    with pytest.raises(DataError, match="from its root"):
        pack_sequences(far, cameras, tmp_path / "far")
    np.savez(tmp_path / PACKED_FILE, keys=np.array(["S1/x"]))
    with pytest.raises(DataError, match="corrupt packed file"):
        PackedSequences(tmp_path / PACKED_FILE)
    out = pack_sequences(sequences, cameras, tmp_path / "ok")
    with pytest.raises(DataError, match="h36m_sh16_2d_px.npz"):  # detections do not travel
        load_h36m(out, ["S9"], source="sh")
    assert json.loads((out / "h36m_cameras.json").read_text()) == cameras


@pytest.mark.h36m
def test_real_round_trip_and_size(h36m_dir, tmp_path) -> None:
    out = pack_h36m(h36m_dir, tmp_path / "packed", subjects=["S9", "S11"])
    _assert_close(load_h36m(out, ["S9", "S11"]), load_h36m(h36m_dir, ["S9", "S11"]))
    frames = PackedSequences(out / PACKED_FILE).num_frames
    per_frame = (out / PACKED_FILE).stat().st_size / frames
    assert per_frame <= 108  # so every frame (497,888 of them) fits in <= ~54 MB, camera file aside

"""PoseSet and the file-format loaders, on small synthetic files written in the real formats."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from gridconv_core.data import DataError, PoseSet
from gridconv_core.data.camera import Camera, project
from gridconv_core.data.formats import load_generic_npz, load_martinez, load_mpi_inf_3dhp, load_videopose3d
from gridconv_core.data.generator import synthesize
from gridconv_core.data.h36m import CAMERA_IDS
from gridconv_core.data.keypoints import (
    H36M32_TO_H36M17, MPI3DHP17_TO_H36M17, SH16_TO_H36M17, SH_NECK_RATIO, coco17_to_h36m17, match_joints,
)
from gridconv_core.data.normalization import normalize_screen, unnormalize_screen
from gridconv_core.skeleton import COCO17, H36M17

T = 60


# ---------------------------------------------------------------------- fixtures: synthetic capture
@pytest.fixture(scope="module")
def capture():
    """Two 60-frame motions (world mm) and four distorted cameras looking at them."""
    cap = synthesize(4 * T, seed=11)
    cams = {}
    for i, cid in enumerate(CAMERA_IDS):
        s = i * T
        cams[cid] = {"R": cap.R[s].tolist(), "T": cap.T[s].tolist(), "f": cap.f[s].tolist(), "c": cap.c[s].tolist(),
                     "k": [-0.2, 0.24, -0.003], "p": [-0.0014, -0.001], "res_w": 1000, "res_h": 1000}
    motions = {"Walking 1": cap.joints_world[:T], "Greeting": cap.joints_world[T:2 * T]}
    return motions, {"S9": cams}


def _cameras(cam_json: dict) -> dict[str, Camera]:
    return {cid: Camera.from_dict(cid, d) for cid, d in cam_json["S9"].items()}


def _expected(world: np.ndarray, cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    x_cam = np.einsum("ij,nkj->nki", cam.R, world - cam.T)
    return (x_cam - x_cam[:, :1]) / 1000, cam.project(x_cam)


def _to32(x17: np.ndarray) -> np.ndarray:
    x32 = np.repeat(x17[:, :1], 32, axis=1) + 7.0
    x32[:, list(H36M32_TO_H36M17)] = x17
    return x32


def _rows(ps: PoseSet, sequence: str, camera: str) -> np.ndarray:
    return (ps.sequence == sequence) & (ps.camera == camera)


# ---------------------------------------------------------------------- PoseSet
def _small_set(n: int = 10) -> PoseSet:
    rng = np.random.default_rng(0)
    return PoseSet(rng.normal(size=(n, 17, 2)), rng.normal(size=(n, 17, 3)), H36M17,
                   subject=np.array(["S1", "S11"] * (n // 2)), action=np.full(n, "Walking"),
                   sequence=np.array([f"Walking {i % 3}" for i in range(n)]), camera=np.full(n, "c"),
                   frame=np.arange(n))


def test_poseset_validation():
    ok = _small_set()
    with pytest.raises(DataError, match="frame-count mismatch"):
        PoseSet(ok.pose2d, ok.pose3d[:5], H36M17, ok.subject, ok.action, ok.sequence, ok.camera, ok.frame)
    with pytest.raises(DataError, match=r"expected \(N, 17, 2\)"):
        PoseSet(ok.pose2d[:, :16], ok.pose3d, H36M17, ok.subject, ok.action, ok.sequence, ok.camera, ok.frame)
    bad = ok.pose3d.clone()
    bad[4, 2, 0] = float("nan")
    with pytest.raises(DataError, match="NaN/inf .*first row 4"):
        PoseSet(ok.pose2d, bad, H36M17, ok.subject, ok.action, ok.sequence, ok.camera, ok.frame)
    with pytest.raises(DataError, match="label 'subject'"):
        PoseSet(ok.pose2d, ok.pose3d, H36M17, ok.subject[:3], ok.action, ok.sequence, ok.camera, ok.frame)


def test_poseset_subset_split_concat():
    ps = _small_set()
    sub = ps.subset(ps.frame % 2 == 0)
    assert len(sub) == 5 and sub.pose3d.equal(ps.pose3d[::2]) and list(sub.frame) == [0, 2, 4, 6, 8]
    assert ps.subset([3, 1]).pose2d.equal(ps.pose2d[[3, 1]])
    s11, rest = ps.subset(ps.subject == "S11"), ps.subset(ps.subject != "S11")
    assert set(s11.subject) == {"S11"} and set(rest.subject) == {"S1"} and len(s11) + len(rest) == len(ps)
    both = PoseSet.concat([rest, s11])
    assert len(both) == len(ps) and sorted(both.frame) == list(range(10))
    with pytest.raises(DataError, match="out of range"):
        ps.subset([10])
    assert ps.to("cpu").device.type == "cpu"


# ---------------------------------------------------------------------- keypoints
def test_coco_and_name_matching():
    coco = np.random.default_rng(1).normal(size=(4, 17, 2))
    h = coco17_to_h36m17(coco)
    np.testing.assert_allclose(h[:, 0], (coco[:, 11] + coco[:, 12]) / 2)
    np.testing.assert_allclose(h[:, 7], (h[:, 0] + h[:, 8]) / 2)
    np.testing.assert_allclose(h[:, 10], (coco[:, 1] + coco[:, 2]) / 2)
    np.testing.assert_allclose(h[:, H36M17.index("RWrist")], coco[:, COCO17.index("RWrist")])
    assert np.array_equal(coco17_to_h36m17(torch.tensor(coco)).numpy(), h)
    idx = match_joints(["left_shoulder", "Hip", "right knee", "Neck/Nose", "tail"], H36M17)
    assert idx[H36M17.index("LShoulder")] == 0 and idx[0] == 1 and idx[H36M17.index("RKnee")] == 2
    assert idx[H36M17.index("Nose")] == 3 and (idx >= 0).sum() == 4


# ---------------------------------------------------------------------- VideoPose3D
def _write_vp3d(tmp: Path, motions: dict, cams: dict[str, Camera], extra: int = 3) -> tuple[Path, Path, dict]:
    pos3d = {"S9": {a: _to32(x) / 1000.0 for a, x in motions.items()}}
    np.savez_compressed(tmp / "data_3d_h36m.npz", positions_3d=pos3d)
    uv = {a: [np.concatenate([_expected(x, cams[c])[1]] * 2)[: T + extra] for c in CAMERA_IDS] for a, x in motions.items()}
    meta = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    np.savez_compressed(tmp / "data_2d_h36m_cpn.npz", positions_2d={"S9": uv}, metadata=meta)
    return tmp / "data_3d_h36m.npz", tmp / "data_2d_h36m_cpn.npz", uv


def test_videopose3d_gt_and_detections(tmp_path, capture):
    motions, cam_json = capture
    cams = _cameras(cam_json)
    (tmp_path / "cams.json").write_text(json.dumps(cam_json))
    npz3, npz2, uv = _write_vp3d(tmp_path, motions, cams)
    gt = load_videopose3d(npz3, subjects=["S9"], cameras=tmp_path / "cams.json")
    assert len(gt) == 2 * T * 4 and set(gt.sequence) == {"Walking 1", "Greeting"}
    for cid in CAMERA_IDS:
        rows = _rows(gt, "Walking 1", cid)
        p3, p2 = _expected(motions["Walking 1"], cams[cid])
        np.testing.assert_allclose(gt.pose3d[rows].numpy(), p3, atol=1e-5)
        np.testing.assert_allclose(gt.pose2d[rows].numpy(), normalize_screen(p2, 1000, 1000), atol=1e-5)
    det = load_videopose3d(npz3, npz2, subjects=["S9"], cameras={"S9": cams})
    assert set(det.sequence) == {"Walking 1"}  # S9 Greeting is a drift sequence for detected input
    rows = _rows(det, "Walking 1", CAMERA_IDS[2])
    np.testing.assert_allclose(det.pose2d[rows].numpy(), normalize_screen(uv["Walking 1"][2][:T], 1000, 1000), atol=1e-5)


def test_videopose3d_rejects_code_in_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    np.savez(tmp_path / "evil.npz", positions_3d=np.array({"S9": Evil()}, dtype=object))
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        load_videopose3d(tmp_path / "evil.npz", cameras={})
    np.savez(tmp_path / "plain.npz", other=np.zeros(3))
    with pytest.raises(DataError, match="no 'positions_3d' entry"):
        load_videopose3d(tmp_path / "plain.npz", cameras={})


def test_videopose3d_short_2d_is_an_error(tmp_path, capture):
    motions, cam_json = capture
    cams = _cameras(cam_json)
    npz3, npz2, _ = _write_vp3d(tmp_path, motions, cams, extra=-5)
    with pytest.raises(DataError, match="2D has shape .*match the 3D frames"):
        load_videopose3d(npz3, npz2, subjects=["S9"], cameras={"S9": cams})


# ---------------------------------------------------------------------- Martinez
def _write_martinez(root: Path, motions: dict, cams: dict[str, Camera]) -> dict:
    with h5py.File(root / "cameras.h5", "w") as f:
        for i, cid in enumerate(CAMERA_IDS):
            g = f.create_group(f"subject9/camera{i + 1}")
            cam = cams[cid]
            g["R"] = cam.R.T  # Martinez stores R transposed
            for name in ("T", "f", "c", "k", "p"):
                g[name] = getattr(cam, name).reshape(-1, 1)
            g["Name"] = np.array([ord(ch) for ch in cid], dtype=np.uint8)
    (root / "S9/MyPoses/3D_positions").mkdir(parents=True)
    (root / "S9/StackedHourglass").mkdir(parents=True)
    names = {"Walking 1": "Walking 1", "Greeting": "TakingPhoto"}  # file names as in the original release
    uv_all = {}
    for seq, x in motions.items():
        with h5py.File(root / f"S9/MyPoses/3D_positions/{names[seq]}.h5", "w") as f:
            f["3D_positions"] = _to32(x).reshape(T, 96).T
        for cid in CAMERA_IDS:
            uv = _expected(x, cams[cid])[1]
            sh = np.zeros((T, 16, 2))
            for j, s in enumerate(SH16_TO_H36M17):
                if s >= 0:
                    sh[:, s] = uv[:, j]
            sh_name = names[seq].replace("TakingPhoto", "Photo").replace(" ", "_")
            with h5py.File(root / f"S9/StackedHourglass/{sh_name}.{cid}.h5", "w") as f:
                f["poses"] = sh
            uv_all[(seq, cid)] = uv
    return uv_all


def test_martinez_layout(tmp_path, capture):
    motions, cam_json = capture
    cams = _cameras(cam_json)
    uv = _write_martinez(tmp_path, motions, cams)
    gt = load_martinez(tmp_path, subjects=["S9"])
    assert set(gt.sequence) == {"Walking 1", "Photo"} and set(gt.action) == {"Walking", "Photo"}
    rows = _rows(gt, "Photo", CAMERA_IDS[1])
    p3, p2 = _expected(motions["Greeting"], cams[CAMERA_IDS[1]])
    np.testing.assert_allclose(gt.pose3d[rows].numpy(), p3, atol=1e-5)
    np.testing.assert_allclose(gt.pose2d[rows].numpy(), normalize_screen(p2, 1000, 1000), atol=1e-5)
    sh = load_martinez(tmp_path, subjects=["S9"], source="sh")
    rows = _rows(sh, "Walking 1", CAMERA_IDS[2])  # a 1000 x 1000 camera
    got = unnormalize_screen(sh.pose2d[rows].numpy().astype(np.float64), 1000, 1000)
    want = uv[("Walking 1", CAMERA_IDS[2])]
    others = [j for j in range(17) if j != 9]
    np.testing.assert_allclose(got[:, others], want[:, others], atol=1e-3)
    np.testing.assert_allclose(got[:, 9], want[:, 8] + SH_NECK_RATIO * (want[:, 10] - want[:, 8]), atol=1e-3)
    with pytest.raises(DataError, match="missing file .*cameras.h5"):
        load_martinez(tmp_path / "S9", subjects=["S9"])


# ---------------------------------------------------------------------- generic npz
def _generic(tmp: Path, capture, **override) -> Path:
    motions, cam_json = capture
    cam = _cameras(cam_json)[CAMERA_IDS[0]]
    x = motions["Walking 1"]
    x_cam = np.einsum("ij,nkj->nki", cam.R, x - cam.T)
    keep = [j for j in range(17) if H36M17.joint_names[j] != "Spine"][::-1]  # reversed order, Spine absent
    names = ["hip" if H36M17.joint_names[j] == "Pelvis" else H36M17.joint_names[j] for j in keep]
    data = {"pose2d": project(x_cam, cam.f, cam.c)[:, keep], "pose3d": x_cam[:, keep], "units": "mm",
            "image_size": np.array([1000, 1000]), "joint_names": np.array(names), "action": np.full(T, "Walking 1")}
    data.update(override)
    path = tmp / "mine.npz"
    np.savez(path, **data)
    return path


def test_generic_npz_matches_joints_by_name(tmp_path, capture):
    ps = load_generic_npz(_generic(tmp_path, capture))
    motions, cam_json = capture
    cam = _cameras(cam_json)[CAMERA_IDS[0]]
    x_cam = np.einsum("ij,nkj->nki", cam.R, motions["Walking 1"] - cam.T)
    spine = H36M17.index("Spine")
    valid = [j for j in range(17) if j != spine]
    assert ps.meta["valid_joints"] == valid and ps.meta["missing_joints"] == ["Spine"]
    np.testing.assert_allclose(ps.pose3d.numpy()[:, valid], ((x_cam - x_cam[:, :1]) / 1000)[:, valid], atol=1e-5)
    assert ps.pose3d[:, spine].abs().max() == 0 and ps.meta["filled_joints"] == ["Spine"]
    pelvis, thorax = ps.pose2d[:, H36M17.index("Pelvis")], ps.pose2d[:, H36M17.index("Thorax")]
    torch.testing.assert_close(ps.pose2d[:, spine], (pelvis + thorax) / 2)  # the fill rule, not the image centre
    zeros = load_generic_npz(_generic(tmp_path, capture), fill_missing=False)
    assert zeros.pose2d[:, spine].abs().max() == 0 and zeros.meta["filled_joints"] == []
    np.testing.assert_allclose(ps.pose2d.numpy()[:, valid], normalize_screen(project(x_cam, cam.f, cam.c), 1000, 1000)[:, valid], atol=1e-5)
    assert set(ps.action) == {"Walking 1"}


def test_generic_npz_bad_inputs(tmp_path, capture):
    good = dict(np.load(_generic(tmp_path, capture)))
    with pytest.raises(DataError, match="frame-count mismatch"):
        load_generic_npz(_generic(tmp_path, capture, pose3d=good["pose3d"][:-1]))
    nan = good["pose2d"].copy()
    nan[7, 1, 0] = np.nan
    with pytest.raises(DataError, match="pose2d has NaN/inf in 1 rows .first row 7"):
        load_generic_npz(_generic(tmp_path, capture, pose2d=nan))
    with pytest.raises(DataError, match="units"):
        load_generic_npz(_generic(tmp_path, capture, units="inch"))
    names = good["joint_names"].copy()
    names[names == "hip"] = "belly"
    with pytest.raises(DataError, match="root joint 'Pelvis'"):
        load_generic_npz(_generic(tmp_path, capture, joint_names=names))
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="corrupt npz file .*junk.npz"):
        load_generic_npz(tmp_path / "junk.npz")
    with pytest.raises(DataError, match="missing file .*nothere.npz"):
        load_generic_npz(tmp_path / "nothere.npz")
    np.savez_compressed(tmp_path / "damaged.npz", **good)
    raw = bytearray((tmp_path / "damaged.npz").read_bytes())
    raw[200:260] = bytes(60)  # inside the first member's compressed data
    (tmp_path / "damaged.npz").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="corrupt array .*damaged.npz"):
        load_generic_npz(tmp_path / "damaged.npz")


def test_generic_npz_per_frame_image_size(tmp_path, capture):
    good = dict(np.load(_generic(tmp_path, capture)))
    sizes = np.tile([[1000, 1000], [2000, 1000]], (T // 2, 1))
    ps = load_generic_npz(_generic(tmp_path, capture, image_size=sizes))
    ref = load_generic_npz(_generic(tmp_path, capture))
    np.testing.assert_allclose(ps.pose2d[::2].numpy(), ref.pose2d[::2].numpy(), atol=1e-6)
    spine = H36M17.index("Spine")
    wide = normalize_screen(good["pose2d"][1::2], 2000, 1000)[:, ::-1]  # joints were stored in reverse order
    np.testing.assert_allclose(np.delete(ps.pose2d[1::2].numpy(), spine, axis=1), wide, atol=1e-5)


# ---------------------------------------------------------------------- MPI-INF-3DHP
def _write_3dhp(root: Path, x17: np.ndarray, uv17: np.ndarray, ts: str, v73: bool) -> np.ndarray:
    inv = np.argsort(MPI3DHP17_TO_H36M17)  # H36M index of each 3DHP joint
    x3, u2 = x17[:, inv], uv17[:, inv]
    valid = np.ones(len(x17), dtype=np.uint8)
    valid[::5] = 0
    (root / ts).mkdir(parents=True)
    if v73:  # MATLAB v7.3 = HDF5 (512-byte user block), axes reversed as h5py sees them
        with h5py.File(root / ts / "annot_data.mat", "w", userblock_size=512) as f:
            f["annot2"] = u2[:, None]
            f["univ_annot3"] = x3[:, None]
            f["valid_frame"] = valid[:, None].astype(np.float64)
    else:  # MATLAB order (C, 17, 1, T)
        scipy.io.savemat(root / ts / "annot_data.mat", {
            "annot2": u2.transpose(2, 1, 0)[:, :, None], "univ_annot3": x3.transpose(2, 1, 0)[:, :, None],
            "valid_frame": valid[None], "activity_annotation": np.full((1, len(x17)), 3.0)})
    return valid.astype(bool)


@pytest.mark.parametrize("v73", [False, True])
def test_mpi_inf_3dhp(tmp_path, capture, v73):
    motions, cam_json = capture
    cam = _cameras(cam_json)[CAMERA_IDS[0]]
    x_cam = np.einsum("ij,nkj->nki", cam.R, motions["Walking 1"] - cam.T)
    uv = project(x_cam, cam.f, cam.c) * 1.9
    valid = _write_3dhp(tmp_path, x_cam, uv, "TS5", v73)
    ps = load_mpi_inf_3dhp(tmp_path, sequences=["TS5"])
    assert len(ps) == valid.sum() and list(ps.frame) == list(np.flatnonzero(valid))
    np.testing.assert_allclose(ps.pose3d.numpy(), ((x_cam - x_cam[:, :1]) / 1000)[valid], atol=1e-5)
    np.testing.assert_allclose(ps.pose2d.numpy(), normalize_screen(uv, 1920, 1080)[valid], atol=1e-5)
    assert set(ps.action) == ({"unknown"} if v73 else {"Sitting"})
    with pytest.raises(DataError, match="missing file .*TS1.annot_data.mat"):
        load_mpi_inf_3dhp(tmp_path, sequences=["TS1"])
    with pytest.raises(DataError, match="unknown 3DHP sequence 'TS9'"):
        load_mpi_inf_3dhp(tmp_path, sequences=["TS9"])


# ---------------------------------------------------------------------- detection files as a 2D source
def _write_compact(root: Path, motions: dict, cam_json: dict) -> dict[str, np.ndarray]:
    """A compact Human3.6M folder for subject S1 with sequences "Walking 1" and "Photo"."""
    seqs = {"Walking 1": motions["Walking 1"], "Photo": motions["Greeting"]}
    np.savez(root / "h36m_3d17_world_mm.npz", **{f"S1/{k}": v.astype(np.float32) for k, v in seqs.items()})
    (root / "h36m_cameras.json").write_text(json.dumps({"S1": cam_json["S9"]}))
    return seqs


def _detected(seqs: dict, cams: dict[str, Camera], extra: int = 2) -> dict[tuple[str, str], np.ndarray]:
    """Noisy 'detections' ((T + extra), 17, 2) px per (sequence, camera); the extra frames are trimmed."""
    rng = np.random.default_rng(3)
    return {(s, c): np.concatenate([_expected(x, cams[c])[1]] * 2)[: T + extra] + rng.normal(0, 5, (T + extra, 17, 2))
            for s, x in seqs.items() for c in CAMERA_IDS}


@pytest.mark.parametrize("kind", ["cpn.npz", "detectron.npz", "hrnet.npy", "hrnet.pth.tar"])
def test_detection_files_are_a_training_and_evaluation_source(tmp_path, capture, kind):
    from gridconv_core.data import load_h36m
    from gridconv_core.train import TrainConfig
    from gridconv_core.train.trainer import load_train_val

    motions, cam_json = capture
    cams = _cameras(cam_json)
    seqs = _write_compact(tmp_path, motions, cam_json)
    det = _detected(seqs, cams)
    path = tmp_path / f"data_2d_h36m_{kind}" if kind.endswith("npz") else tmp_path / kind
    expected = {k: v[:T] for k, v in det.items()}
    vp3d_names = {"Walking 1": "Walking 1", "Photo": "TakingPhoto"}  # VideoPose3D keeps the original names
    if kind == "cpn.npz":
        np.savez(path, metadata={"layout_name": "h36m", "num_joints": 17},
                 positions_2d={"S1": {vp3d_names[s]: [det[(s, c)] for c in CAMERA_IDS] for s in seqs}})
    elif kind == "detectron.npz":  # COCO layout with a score column, converted to H36M-17
        coco = {k: np.concatenate([v, np.ones((len(v), 17, 1))], axis=2) for k, v in det.items()}
        np.savez(path, metadata={"layout_name": "coco", "num_joints": 17},
                 positions_2d={"S1": {vp3d_names[s]: [coco[(s, c)] for c in CAMERA_IDS] for s in seqs}})
        expected = {k: coco17_to_h36m17(v[:T]) for k, v in det.items()}
    else:  # EvoSkeleton / the authors' HRNet files: {(subject, action, "<sequence>.<camera>"): (T, 34)}
        tracks = {(1 if kind.endswith("tar") else "S1", s.split(" ")[0], f"{s}.{c}.h5"): det[(s, c)].reshape(-1, 34)
                  for s in seqs for c in CAMERA_IDS}
        if kind.endswith("npy"):
            np.save(path, tracks, allow_pickle=True)
        else:
            torch.save(tracks, path)
    ps = load_h36m(tmp_path, ["S1"], source=f"detections:{path}")
    assert ps.meta["source"] == path.stem and ps.meta["detections"] == str(path) and ps.meta["exclude_drift"]
    assert len(ps) == 2 * T * 4
    for (s, c), uv in expected.items():
        np.testing.assert_allclose(ps.pose2d[_rows(ps, s, c)].numpy(), normalize_screen(uv, 1000, 1000), atol=1e-5)
    config = TrainConfig(dataset="h36m", data_root=str(tmp_path), source=f"detections:{path}", train_subjects=["S1"],
                         val_subjects=[], selection="last")
    train_set, val_set = load_train_val(config)
    assert val_set is None and torch.equal(train_set.pose2d, ps.pose2d)


def test_detection_source_errors(tmp_path, capture):
    from gridconv_core.errors import ConfigError
    from gridconv_core.data import load_h36m
    from gridconv_core.train import TrainConfig

    motions, cam_json = capture
    cams = _cameras(cam_json)
    seqs = _write_compact(tmp_path, motions, cam_json)
    det = _detected(seqs, cams)
    missing = {(s, c): v for (s, c), v in det.items() if (s, c) != ("Photo", CAMERA_IDS[2])}
    np.save(tmp_path / "missing.npy", {("S1", s, f"{s}.{c}"): v for (s, c), v in missing.items()}, allow_pickle=True)
    with pytest.raises(DataError, match=f"missing.npy has no 2D for S1/Photo camera {CAMERA_IDS[2]}$"):
        load_h36m(tmp_path, ["S1"], source=f"detections:{tmp_path / 'missing.npy'}")
    short = _detected(seqs, cams, extra=-4)
    np.save(tmp_path / "short.npy", {("S1", s, f"{s}.{c}"): v for (s, c), v in short.items()}, allow_pickle=True)
    with pytest.raises(DataError, match=r"S1/Photo/54138969: 2D has shape \(56, 17, 2\), expected \(60, J, 2\)"):
        load_h36m(tmp_path, ["S1"], source=f"detections:{tmp_path / 'short.npy'}")
    with pytest.raises(DataError, match="missing detection file"):
        load_h36m(tmp_path, ["S1"], source=f"detections:{tmp_path / 'none.npz'}")
    (tmp_path / "junk.pth.tar").write_bytes(b"junk")
    with pytest.raises(DataError, match="corrupt detection file"):
        load_h36m(tmp_path, ["S1"], source=f"detections:{tmp_path / 'junk.pth.tar'}")
    for bad in ("cpn", "detections:"):
        with pytest.raises(DataError, match="unknown 2D source"):
            load_h36m(tmp_path, ["S1"], source=bad)
        with pytest.raises(ConfigError, match="detections:PATH"):
            TrainConfig(source=bad)


def test_paper_detected_config_is_the_paper_config_with_c_z_padding():
    """The authors' detected-input (HRNet) models use padding (c, z); everything else is the paper recipe."""
    from gridconv_core.train import TrainConfig
    from gridconv_core.train.config import default_config_path

    paper = TrainConfig.from_json(default_config_path("paper_dgridconv")).to_dict()
    detected = TrainConfig.from_json(default_config_path("paper_dgridconv_detected")).to_dict()
    assert detected["model"].pop("paddings") == ["circular", "zeros"] and paper["model"].pop("paddings") == ["circular", "replicate"]
    assert detected.pop("source") == "sh" and paper.pop("source") == "gt"
    assert detected == paper


def test_fill_missing_joints_rules():
    from gridconv_core.data.keypoints import FILL_RULES, fill_missing_joints

    rng = np.random.default_rng(0)
    full = rng.normal(size=(5, 17, 2))
    idx = {n: H36M17.index(n) for n in H36M17.joint_names}
    lacking = [idx["Spine"], idx["Nose"], idx["Thorax"], idx["RWrist"], idx["RElbow"]]
    filled, names = fill_missing_joints(full, "h36m17", lacking)
    assert names == ["Spine", "Thorax", "Nose", "RElbow", "RWrist"]
    thorax = (full[:, idx["LShoulder"]] + full[:, idx["RShoulder"]]) / 2  # filled first, then used by Spine and Nose
    np.testing.assert_allclose(filled[:, idx["Thorax"]], thorax)
    np.testing.assert_allclose(filled[:, idx["Spine"]], (full[:, idx["Pelvis"]] + thorax) / 2)
    np.testing.assert_allclose(filled[:, idx["Nose"]], thorax + FILL_RULES["Nose"][2] * (full[:, idx["Head"]] - thorax))
    for limb in ("RElbow", "RWrist"):  # no rule: the nearest present ancestor (RShoulder)
        np.testing.assert_allclose(filled[:, idx[limb]], full[:, idx["RShoulder"]])
    kept = [j for j in range(17) if j not in lacking]
    np.testing.assert_array_equal(filled[:, kept], full[:, kept])
    torch.testing.assert_close(fill_missing_joints(torch.as_tensor(full), "h36m17", lacking)[0], torch.as_tensor(filled))
    with pytest.raises(DataError, match="root joint 'Pelvis'"):
        fill_missing_joints(full, "h36m17", [0])

"""Loaders for the pose-data formats users have (issue 3 "Data"), all returning :class:`PoseSet`.

* :func:`load_videopose3d`: VideoPose3D ``data_3d_h36m.npz`` (+ ``data_2d_h36m_<source>.npz``).
* :func:`load_martinez`: the Martinez et al. layout (``S*/MyPoses/3D_positions/*.h5``, ``cameras.h5``,
  ``S*/StackedHourglass/*.h5``).
* :func:`load_generic_npz`: the documented paired-pose npz for any other dataset.
* :func:`load_mpi_inf_3dhp`: the MPI-INF-3DHP test set (``TS1..TS6/annot_data.mat``).

Human3.6M formats go through the same :func:`.h36m.build_poseset` pipeline as the compact files; files of
Human3.6M 2D detections are read by :func:`.h36m.read_detections`.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..skeleton import H36M17, Skeleton, get_skeleton
from .camera import Camera, load_cameras_json
from .h36m import (CAMERA_IDS, SUBJECTS, Detections, _check_choice, build_poseset, canonical_sequence, h36m_root,
                   is_excluded, open_npz, read_detections)
from .keypoints import (H36M32_TO_H36M17, SH_NECK_RATIO, fill_missing_joints, match_joints,
                        mpi3dhp17_to_h36m17, sh16_to_h36m17)
from .normalization import normalize
from .poseset import PoseSet
from .safe_pickle import load_pickled_member

__all__ = ["load_videopose3d", "load_martinez", "load_generic_npz", "load_mpi_inf_3dhp",
           "MPI3DHP_IMAGE_SIZE"]

MPI3DHP_IMAGE_SIZE = {"TS1": (2048, 2048), "TS2": (2048, 2048), "TS3": (2048, 2048), "TS4": (2048, 2048),
                      "TS5": (1920, 1080), "TS6": (1920, 1080)}
MPI3DHP_ACTIVITIES = ("Standing/Walking", "Exercising", "Sitting", "Reaching/Crouching", "On the floor",
                      "Sports", "Miscellaneous")
CameraSource = str | os.PathLike[str] | Mapping[str, Mapping[str, Camera]] | None


# ---------------------------------------------------------------------- VideoPose3D
def _cameras(cameras: CameraSource) -> Mapping[str, Mapping[str, Camera]]:
    if cameras is None:
        return load_cameras_json(h36m_root() / "h36m_cameras.json")
    if isinstance(cameras, Mapping):
        return cameras
    return load_cameras_json(cameras)


def load_videopose3d(
    npz_3d: str | os.PathLike[str],
    npz_2d: str | os.PathLike[str] | None = None,
    subjects: Sequence[str] = SUBJECTS,
    cameras: CameraSource = None,
    every: int = 1,
    exclude_drift: bool | None = None,
    normalization: str = "screen",
) -> PoseSet:
    """VideoPose3D's Human3.6M files as a 17-joint :class:`PoseSet`.

    ``npz_3d``: ``positions_3d`` = {subject: {action: (T, 32, 3) world metres}}. ``npz_2d``
    (optional, else GT 2D is projected): ``positions_2d`` = {subject: {action: [4 x (T', 17, 2)]}}
    pixels in the camera order of :data:`CAMERA_IDS`, ``metadata["layout_name"]`` ``"h36m"`` or
    ``"coco"``; longer 2D tracks are trimmed to the 3D length, as VideoPose3D does. ``cameras``: a
    ``h36m_cameras.json`` path or ``{subject: {id: Camera}}`` (default: the shared json).
    """
    subjects = _check_choice("subject", subjects, SUBJECTS)
    exclude_drift = npz_2d is not None if exclude_drift is None else exclude_drift
    positions = load_pickled_member(Path(npz_3d), "positions_3d")
    sequences = {}
    for subject in subjects:
        for action, x in positions.get(subject, {}).items():
            if not is_excluded(subject, action, exclude_drift):
                x = np.asarray(x)
                if x.ndim != 3 or x.shape[1:] != (32, 3):
                    raise DataError(f"{npz_3d}: {subject}/{action} has shape {x.shape}, expected (T, 32, 3)")
                sequences[(subject, action)] = x[:, list(H36M32_TO_H36M17)] * 1000.0
    detections: Detections | None = None
    if npz_2d is not None:
        read = read_detections(npz_2d)

        def detections(subject: str, action: str, cid: str) -> np.ndarray:
            return read(subject, action, cid)[: len(sequences[(subject, action)])]

    return build_poseset(sequences, _cameras(cameras), H36M17, CAMERA_IDS, every, normalization, detections,
                         meta={"dataset": "h36m", "format": "videopose3d",
                               "source": "gt" if npz_2d is None else Path(npz_2d).stem, "exclude_drift": exclude_drift})


# ---------------------------------------------------------------------- detection files
# ---------------------------------------------------------------------- Martinez
def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise DataError("reading .h5/.mat v7.3 files needs h5py: pip install 'gridconv-lab[formats]'") from None
    return h5py


def _read_h5(path: Path, key: str) -> np.ndarray:
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as f:
            return np.asarray(f[key][()])
    except KeyError:
        raise DataError(f"{path} has no dataset {key!r}") from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err}") from None


def _martinez_cameras(path: Path) -> dict[str, dict[str, Camera]]:
    """``cameras.h5`` of Martinez et al.: ``subject<n>/camera<m>/{R, T, f, c, k, p, Name}`` (R stored transposed)."""
    h5py = _h5py()
    cams: dict[str, dict[str, Camera]] = {}
    try:
        with h5py.File(path, "r") as f:
            for subj_key in f:
                subject = "S" + subj_key.removeprefix("subject")
                for cam_key in f[subj_key]:
                    g = f[subj_key][cam_key]
                    cid = "".join(chr(int(c)) for c in np.asarray(g["Name"][()]).reshape(-1))
                    d = {n: np.asarray(g[n][()]) for n in ("R", "T", "f", "c", "k", "p")}
                    d["R"] = d["R"].T
                    width, height = (1000, 1002) if cid in ("54138969", "60457274") else (1000, 1000)
                    cams.setdefault(subject, {})[cid] = Camera.from_dict(cid, {**d, "res_w": width, "res_h": height})
    except FileNotFoundError:
        raise DataError(f"missing file {path}") from None
    except (OSError, KeyError) as err:
        raise DataError(f"corrupt camera file {path}: {err}") from None
    return cams


def load_martinez(
    root: str | os.PathLike[str],
    subjects: Sequence[str] = SUBJECTS,
    source: str = "gt",
    every: int = 1,
    exclude_drift: bool | None = None,
    normalization: str = "screen",
    neck_ratio: float = SH_NECK_RATIO,
) -> PoseSet:
    """The Martinez et al. layout under ``root``.

    ``root/cameras.h5``; ``root/S*/MyPoses/3D_positions/<sequence>.h5`` (key ``3D_positions``,
    ``(96, T)`` world mm, 32 joints); for ``source="sh"``
    ``root/S*/StackedHourglass/<sequence>.<camera>.h5`` (key ``poses``, ``(T, 16, 2)`` px).
    ``TakingPhoto``/``WalkingDog`` and underscores are read as ``Photo``/``WalkDog`` and spaces.
    """
    root = Path(root)
    subjects = _check_choice("subject", subjects, SUBJECTS)
    if source not in ("gt", "sh"):
        raise DataError(f"unknown 2D source {source!r}; choose 'gt' or 'sh'")
    exclude_drift = source == "sh" if exclude_drift is None else exclude_drift
    cams = _martinez_cameras(root / "cameras.h5")
    sequences = {}
    for subject in subjects:
        files = sorted((root / subject).glob("MyPoses/3D_positions/*.h5")) + sorted((root / subject).glob("3D_positions/*.h5"))
        for path in files:
            name = canonical_sequence(path.stem)
            if not is_excluded(subject, name, exclude_drift):
                flat = _read_h5(path, "3D_positions")
                if flat.ndim != 2 or flat.shape[0] != 96:
                    raise DataError(f"{path}: 3D_positions has shape {flat.shape}, expected (96, T)")
                sequences[(subject, name)] = flat.T.reshape(-1, 32, 3)[:, list(H36M32_TO_H36M17)]
    if not sequences:
        raise DataError(f"no 3D_positions/*.h5 files for {', '.join(subjects)} under {root}")
    detections: Detections | None = None
    if source == "sh":
        sh_files = {}
        for subject in subjects:
            for path in (root / subject / "StackedHourglass").glob("*.h5"):
                seq, _, cid = path.stem.rpartition(".")
                sh_files[(subject, canonical_sequence(seq), cid)] = path

        def detections(subject: str, name: str, cid: str) -> np.ndarray:
            path = sh_files.get((subject, name, cid))
            if path is None:
                raise DataError(f"no StackedHourglass file for {subject}/{name} camera {cid} under {root}")
            return sh16_to_h36m17(_read_h5(path, "poses")[: len(sequences[(subject, name)])], neck_ratio)

    return build_poseset(sequences, cams, H36M17, CAMERA_IDS, every, normalization, detections,
                         meta={"dataset": "h36m", "format": "martinez", "source": source, "exclude_drift": exclude_drift})


# ---------------------------------------------------------------------- generic npz
def load_generic_npz(path: str | os.PathLike[str], skeleton: str | Skeleton = "h36m17",
                     normalization: str = "screen", fill_missing: bool = True) -> PoseSet:
    """Paired poses of any dataset from one npz (plain arrays, no pickle).

    Keys: ``pose2d`` (N, J, 2) pixels; ``pose3d`` (N, J, 3) camera-frame; ``units`` ``"mm"``
    or ``"m"``; ``image_size`` (2,) or (N, 2) as (width, height); ``joint_names`` (J,);
    optional ``action``, ``subject``, ``sequence`` (N,) strings. Joints are matched to
    ``skeleton`` by name (:func:`.keypoints.match_joints`); its root must be present. Missing 2D
    input joints are placed from their neighbours (:func:`.keypoints.fill_missing_joints`, listed in
    ``meta["filled_joints"]``; ``fill_missing=False`` leaves zeros, the image centre); their 3D is zero
    and they stay out of ``meta["valid_joints"]`` (and so of the metrics). 3D becomes root-relative metres.
    """
    path = Path(path)
    sk = get_skeleton(skeleton)
    npz = open_npz(path)
    for key in ("pose2d", "pose3d", "units", "image_size", "joint_names"):
        if key not in npz.keys:
            raise DataError(f"{path} lacks the required key {key!r}")
    p2, p3 = npz["pose2d"].astype(np.float64), npz["pose3d"].astype(np.float64)
    names = [str(n) for n in npz["joint_names"].reshape(-1)]
    units = str(npz["units"])
    n = p2.shape[0]
    if p2.ndim != 3 or p2.shape[1:] != (len(names), 2) or p3.ndim != 3 or p3.shape[1:] != (len(names), 3):
        raise DataError(f"{path}: pose2d {p2.shape} and pose3d {p3.shape} must be (N, {len(names)}, 2|3) for {len(names)} joint names")
    if p3.shape[0] != n:
        raise DataError(f"{path}: 2D/3D frame-count mismatch ({n} 2D frames, {p3.shape[0]} 3D frames)")
    if units not in ("mm", "m"):
        raise DataError(f"{path}: units must be 'mm' or 'm', got {units!r}")
    size = npz["image_size"].astype(np.float64)
    if size.shape not in ((2,), (n, 2)) or not (size > 0).all():
        raise DataError(f"{path}: image_size must be positive (2,) or ({n}, 2), got shape {size.shape}")
    for key, arr in (("pose2d", p2), ("pose3d", p3)):
        bad = ~np.isfinite(arr).reshape(n, -1).all(axis=1)
        if bad.any():
            raise DataError(f"{path}: {key} has NaN/inf in {int(bad.sum())} rows (first row {int(np.argmax(bad))})")
    src = match_joints(names, sk)
    root = sk.parents.index(-1)
    if src[root] < 0:
        raise DataError(f"{path}: joint names lack the root joint {sk.joint_names[root]!r} of {sk.name}")
    valid = np.flatnonzero(src >= 0)
    pose2d, pose3d = np.zeros((n, sk.num_joints, 2)), np.zeros((n, sk.num_joints, 3))
    pose2d[:, valid] = normalize(p2[:, src[valid]], size[..., 0], size[..., 1], normalization)
    rel = p3[:, src[valid]] - p3[:, src[root]][:, None]
    pose3d[:, valid] = rel / 1000.0 if units == "mm" else rel
    missing = np.flatnonzero(src < 0)
    filled: list[str] = []
    if fill_missing and missing.size:
        pose2d, filled = fill_missing_joints(pose2d, sk, missing)

    def label(key: str, default: str) -> np.ndarray:
        return npz[key].astype(str).reshape(-1) if key in npz.keys else np.full(n, default)

    return PoseSet(pose2d, pose3d, sk, subject=label("subject", path.stem), action=label("action", "unknown"),
                   sequence=label("sequence", path.stem), camera=np.full(n, "camera"), frame=np.arange(n),
                   meta={"dataset": path.stem, "format": "generic-npz", "normalization": normalization,
                         "valid_joints": valid.tolist(), "filled_joints": filled,
                         "missing_joints": [sk.joint_names[j] for j in missing]})


# ---------------------------------------------------------------------- MPI-INF-3DHP
def _read_mat(path: Path) -> dict[str, np.ndarray]:
    """Arrays of a MATLAB file in MATLAB axis order (scipy for v5, h5py for v7.3)."""
    if not path.is_file():
        raise DataError(f"missing file {path}")
    h5py = _h5py()
    if h5py.is_hdf5(path):
        try:
            with h5py.File(path, "r") as f:
                # h5py sees MATLAB arrays with reversed axes.
                return {k: np.asarray(f[k][()]).T for k in f.keys() if isinstance(f[k], h5py.Dataset)}
        except OSError as err:
            raise DataError(f"corrupt MATLAB file {path}: {err}") from None
    try:
        import scipy.io
    except ImportError:
        raise DataError("reading .mat files needs scipy: pip install 'gridconv-lab[formats]'") from None
    try:
        return {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    except Exception as err:  # scipy raises many types on damaged files
        raise DataError(f"corrupt MATLAB file {path}: {err}") from None


def _frames_first(arr: np.ndarray, channels: int, path: Path, key: str) -> np.ndarray:
    """MATLAB ``(C, 17, 1, T)`` to ``(T, 17, C)``."""
    if arr.shape[:2] != (channels, 17) or arr.ndim not in (3, 4):
        raise DataError(f"{path}: {key} has MATLAB shape {arr.shape}, expected ({channels}, 17, 1, T)")
    return arr.reshape(channels, 17, -1).transpose(2, 1, 0).astype(np.float64)


def load_mpi_inf_3dhp(
    root: str | os.PathLike[str],
    sequences: Sequence[str] = tuple(MPI3DHP_IMAGE_SIZE),
    valid_only: bool = True,
    normalization: str = "screen",
) -> PoseSet:
    """MPI-INF-3DHP test set ``root/TS<i>/annot_data.mat`` as H36M-17 (cross-dataset evaluation).

    Uses ``annot2`` (px), ``univ_annot3`` (mm, the universal skeleton scaled to H36M height) and
    ``valid_frame``; optional ``activity_annotation`` gives the action (7 activities). Image sizes:
    2048 x 2048 for TS1-4, 1920 x 1080 for TS5-6. Joints mapped by :data:`.keypoints.MPI3DHP17_TO_H36M17`.
    """
    root = Path(root)
    sequences = _check_choice("3DHP sequence", sequences, tuple(MPI3DHP_IMAGE_SIZE))
    parts = []
    for ts in sequences:
        path = root / ts / "annot_data.mat"
        mat = _read_mat(path)
        for key in ("annot2", "univ_annot3", "valid_frame"):
            if key not in mat:
                raise DataError(f"{path} lacks {key!r}")
        p2 = _frames_first(mat["annot2"], 2, path, "annot2")
        p3 = _frames_first(mat["univ_annot3"], 3, path, "univ_annot3")
        valid = mat["valid_frame"].reshape(-1).astype(bool)
        if not (len(p2) == len(p3) == len(valid)):
            raise DataError(f"{path}: frame counts differ (annot2 {len(p2)}, univ_annot3 {len(p3)}, valid_frame {len(valid)})")
        keep = np.flatnonzero(valid) if valid_only else np.arange(len(valid))
        if "activity_annotation" in mat:
            act = mat["activity_annotation"].reshape(-1).astype(int)[keep]
            known = (act >= 1) & (act <= len(MPI3DHP_ACTIVITIES))  # 1-based labels; anything else is unknown
            actions = np.array(MPI3DHP_ACTIVITIES + ("unknown",))[np.where(known, act - 1, len(MPI3DHP_ACTIVITIES))]
        else:
            actions = np.full(len(keep), "unknown")
        w, h = MPI3DHP_IMAGE_SIZE[ts]
        x3 = mpi3dhp17_to_h36m17(p3[keep])
        parts.append(PoseSet(
            normalize(mpi3dhp17_to_h36m17(p2[keep]), w, h, normalization), (x3 - x3[:, :1]) / 1000.0, H36M17,
            subject=np.full(len(keep), ts), action=actions, sequence=np.full(len(keep), ts),
            camera=np.full(len(keep), ts), frame=keep,
            meta={"dataset": "mpi_inf_3dhp", "normalization": normalization, "valid_joints": list(range(17)),
                  "image_size": {ts: (w, h) for ts in sequences}},
        ))
    return PoseSet.concat(parts)

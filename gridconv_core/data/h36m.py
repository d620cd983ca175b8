"""Human3.6M: the compact shared files, the standard splits and exclusions (paper 4.1, A.4).

Files (see ``../shared/data/h36m/README.md``): ``h36m_3d17_world_mm.npz`` (``"S9/Walking 1"`` ->
``(T, 17, 3)`` world mm), ``h36m_sh16_2d_px.npz`` (``"S9/Walking 1/54138969"`` -> ``(T, 16, 2)`` px),
``h36m_3d32_world_mm_every4.npz`` (all 32 joints, every 4th frame) and ``h36m_cameras.json``.

Pipeline (:func:`build_poseset`, shared with the VideoPose3D and Martinez loaders): world ->
camera frame per camera, root-relative, millimetres -> metres; 2D either projected with the full
camera model ("gt") or the detections ("sh", SH-16 -> H36M-17, see :mod:`.keypoints`), then
normalised (:mod:`.normalization`). Everything is vectorised over the frames of a subject.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..skeleton import H36M17, H36M32, Skeleton
from .camera import Camera, load_cameras_json
from .keypoints import SH_NECK_RATIO, coco17_to_h36m17, sh16_to_h36m17
from .normalization import NORMALIZATIONS, normalize
from .packed import PACKED_FILE, PackedSequences
from .poseset import PoseSet
from .safe_pickle import load_pickled_member, read_pickled_npy

__all__ = [
    "TRAIN_SUBJECTS", "TEST_SUBJECTS", "SUBJECTS", "ACTIONS", "CAMERA_IDS", "FILES",
    "ALWAYS_EXCLUDED", "DRIFT_SEQUENCES", "h36m_root", "action_group", "canonical_sequence",
    "is_excluded", "open_npz", "build_poseset", "load_h36m", "load_h36m32", "detection_path", "read_detections",
]

TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")
SUBJECTS = TRAIN_SUBJECTS + TEST_SUBJECTS
ACTIONS = ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing", "Purchases",
           "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking", "WalkTogether")
"""The 15 action groups (sequence name up to the first space)."""
CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")
FILES = {"3d17": "h36m_3d17_world_mm.npz", "sh16": "h36m_sh16_2d_px.npz",
         "3d32": "h36m_3d32_world_mm_every4.npz", "cameras": "h36m_cameras.json"}

ALWAYS_EXCLUDED = frozenset({("S11", "Directions")})
"""S11 "Directions" (corrupt video of camera 54138969), skipped for every input."""
DRIFT_SEQUENCES = frozenset({("S9", "Greeting"), ("S9", "SittingDown 1"), ("S9", "Waiting 1")})
"""S9 sequences with ground-truth drift, skipped for detected 2D input (EvoSkeleton / GridConv)."""

_SEQUENCE_ALIASES = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}

Detections = Callable[[str, str, str], np.ndarray]


def h36m_root(path: str | os.PathLike[str] | None = None) -> Path:
    """The Human3.6M folder: ``path``, else env ``GRIDCONV_H36M``, else ``../shared/data/h36m`` of the repo."""
    if path is None:
        env = os.environ.get("GRIDCONV_H36M")
        path = env if env else Path(__file__).resolve().parents[2].parent / "shared" / "data" / "h36m"
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"Human3.6M folder {root} not found; pass root= or set GRIDCONV_H36M")
    return root


def canonical_sequence(name: str) -> str:
    """Sequence name with underscores as spaces and ``TakingPhoto``/``WalkingDog`` as ``Photo``/``WalkDog``."""
    name = name.replace("_", " ").strip()
    for old, new in _SEQUENCE_ALIASES.items():
        if name == old or name.startswith(old + " "):
            name = new + name[len(old):]
    return name


def action_group(sequence: str) -> str:
    """The action of a sequence: the text before the first space (``"Walking 1"`` -> ``"Walking"``)."""
    return canonical_sequence(sequence).split(" ")[0]


def is_excluded(subject: str, sequence: str, exclude_drift: bool) -> bool:
    """Whether the standard protocol skips this sequence."""
    key = (subject, canonical_sequence(sequence))
    return key in ALWAYS_EXCLUDED or (exclude_drift and key in DRIFT_SEQUENCES)


class _Npz:
    """A plain (pickle-free) npz whose read errors become :class:`DataError` naming the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._npz = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise DataError(f"missing file {path}") from None
        except Exception as err:  # numpy/zipfile raise many types on damaged files
            raise DataError(f"corrupt npz file {path}: {type(err).__name__}: {err}") from None
        if not hasattr(self._npz, "files"):
            raise DataError(f"corrupt npz file {path}: a single .npy array, expected an npz archive")
        self.keys = frozenset(self._npz.files)

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.keys:
            raise DataError(f"{self.path.name} has no array {key!r}")
        try:
            return self._npz[key]
        except Exception as err:  # zlib, zipfile CRC, header parsing (SyntaxError, TokenError)...
            raise DataError(f"corrupt array {key!r} in {self.path}: {type(err).__name__}: {err}") from None


def open_npz(path: str | os.PathLike[str]) -> _Npz:
    """Open a pickle-free npz archive; missing or corrupt files raise :class:`DataError`."""
    return _Npz(Path(path))


def build_poseset(
    sequences: Mapping[tuple[str, str], np.ndarray],
    cameras: Mapping[str, Mapping[str, Camera]],
    skeleton: Skeleton,
    camera_ids: Sequence[str] = CAMERA_IDS,
    every: int = 1,
    normalization: str = "screen",
    detections: Detections | None = None,
    frame_step: int = 1,
    meta: Mapping[str, object] | None = None,
) -> PoseSet:
    """Pose set from world-frame sequences ``{(subject, sequence): (T, J, 3) mm}``.

    3D: ``R (X - T)`` per camera, minus the root joint, in metres. 2D: the camera projection
    (ground truth) or ``detections(subject, sequence, camera) -> (T, J, 2)`` pixels; then the
    ``normalization``. ``every`` subsamples frames; ``frame_step`` is the file's own stride (for
    the frame labels).
    """
    if every < 1:
        raise DataError(f"every must be a positive integer, got {every}")
    if normalization not in NORMALIZATIONS:
        raise DataError(f"unknown normalization {normalization!r}; choose one of {', '.join(NORMALIZATIONS)}")
    if not sequences:
        raise DataError("no sequences selected")
    by_subject: dict[str, list[tuple[str, np.ndarray]]] = {}
    for (subject, name), x in sequences.items():
        if x.ndim != 3 or x.shape[1:] != (skeleton.num_joints, 3):
            raise DataError(f"{subject}/{name}: 3D has shape {x.shape}, expected (T, {skeleton.num_joints}, 3)")
        by_subject.setdefault(subject, []).append((name, x))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("p2", "p3", "subject", "action", "sequence", "camera", "frame")}
    sizes: dict[str, tuple[int, int]] = {}
    for subject, seqs in by_subject.items():
        lengths = np.array([len(x[::every]) for _, x in seqs])
        world = np.concatenate([x[::every] for _, x in seqs]).astype(np.float32)
        names = np.repeat(np.array([n for n, _ in seqs]), lengths)
        groups = np.repeat(np.array([action_group(n) for n, _ in seqs]), lengths)
        frames = np.concatenate([np.arange(len(x))[::every] * frame_step for _, x in seqs])
        for cid in camera_ids:
            try:
                cam = cameras[subject][cid]
            except KeyError:
                raise DataError(f"no calibration for camera {cid} of subject {subject}") from None
            x_cam = cam.world_to_camera(world)
            parts["p3"].append(((x_cam - x_cam[:, :1]) / 1000.0).astype(np.float32))
            if detections is None:
                uv = cam.project(x_cam)
            else:
                uv = np.concatenate([_detection(detections, subject, n, cid, len(x))[::every] for n, x in seqs])
            parts["p2"].append(normalize(uv.astype(np.float32), cam.res_w, cam.res_h, normalization))
            parts["subject"].append(np.full(len(world), subject))
            parts["action"].append(groups)
            parts["sequence"].append(names)
            parts["camera"].append(np.full(len(world), cid))
            parts["frame"].append(frames)
            sizes[cid] = cam.image_size
    info = {"normalization": normalization, "image_size": sizes, "every": every,
            "valid_joints": list(range(skeleton.num_joints))}
    info.update(meta or {})
    return PoseSet(
        pose2d=np.concatenate(parts["p2"]), pose3d=np.concatenate(parts["p3"]), skeleton=skeleton,
        subject=np.concatenate(parts["subject"]), action=np.concatenate(parts["action"]),
        sequence=np.concatenate(parts["sequence"]),
        camera=np.concatenate(parts["camera"]), frame=np.concatenate(parts["frame"]), meta=info,
    )


def _detection(detections: Detections, subject: str, name: str, cid: str, length: int) -> np.ndarray:
    uv = detections(subject, name, cid)
    if uv.ndim != 3 or uv.shape[0] != length or uv.shape[2] != 2:
        raise DataError(f"{subject}/{name}/{cid}: 2D has shape {uv.shape}, expected ({length}, J, 2) to match the 3D frames")
    return uv


def _check_choice(kind: str, values: Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    values = (values,) if isinstance(values, str) else tuple(values)
    unknown = [v for v in values if v not in known]
    if unknown or not values:
        raise DataError(f"unknown {kind} {', '.join(map(repr, unknown)) or '(none given)'}; known: {', '.join(known)}")
    return values


def _open_3d17(root: Path) -> Any:
    """The shared 3D file, or a packed folder's (:mod:`.packed`) when only that one is there."""
    if not (root / FILES["3d17"]).exists() and (root / PACKED_FILE).exists():
        return PackedSequences(root / PACKED_FILE)
    return open_npz(root / FILES["3d17"])


def _select(npz: Any, subjects: Sequence[str], exclude_drift: bool) -> dict[tuple[str, str], np.ndarray]:
    chosen = {}
    for key in sorted(npz.keys):
        subject, _, name = key.partition("/")
        if subject in subjects and not is_excluded(subject, name, exclude_drift):
            chosen[(subject, name)] = npz[key]
    return chosen


def load_h36m(
    root: str | os.PathLike[str] | None = None,
    subjects: Sequence[str] = TRAIN_SUBJECTS,
    source: str = "gt",
    cameras: Sequence[str] | None = None,
    every: int = 1,
    exclude_drift: bool | None = None,
    normalization: str = "screen",
    neck_ratio: float = SH_NECK_RATIO,
) -> PoseSet:
    """Human3.6M-17 from the compact shared files.

    Args:
        root: the data folder (default :func:`h36m_root`), or a packed folder (:mod:`.packed`, ground truth only).
        subjects: e.g. :data:`TRAIN_SUBJECTS` or :data:`TEST_SUBJECTS`.
        source: ``"gt"`` (3D projected with the full camera model), ``"sh"`` (SH detections) or
            ``"detections:PATH"`` (any file :func:`read_detections` reads: VideoPose3D CPN /
            Detectron npz, EvoSkeleton HRNet); ``meta["source"]`` is then the file's stem.
        cameras: camera ids (default all four).
        every: keep every n-th frame.
        exclude_drift: skip :data:`DRIFT_SEQUENCES`; default True for detections, False for ``"gt"``.
            S11 "Directions" is always skipped.
        normalization: ``"screen"`` (VideoPose3D, default), ``"official"`` ((x-500)/500) or ``"wild"``.
        neck_ratio: where Neck/Nose goes on Thorax -> Head for SH input.
    """
    root = h36m_root(root)
    subjects = _check_choice("subject", subjects, SUBJECTS)
    camera_ids = _check_choice("camera", cameras if cameras is not None else CAMERA_IDS, CAMERA_IDS)
    detection_file = detection_path(source)
    exclude_drift = source != "gt" if exclude_drift is None else exclude_drift
    cams = load_cameras_json(root / FILES["cameras"])
    sequences = _select(_open_3d17(root), subjects, exclude_drift)
    detections: Detections | None = None
    label = source
    if source == "sh":
        sh = open_npz(root / FILES["sh16"])

        def detections(subject: str, name: str, cid: str) -> np.ndarray:
            return sh16_to_h36m17(sh[f"{subject}/{name}/{cid}"], neck_ratio)
    elif detection_file is not None:
        read, label = read_detections(detection_file), Path(detection_file).stem

        def detections(subject: str, name: str, cid: str) -> np.ndarray:
            return read(subject, name, cid)[: len(sequences[(subject, name)])]  # longer tracks: trimmed
    return build_poseset(
        sequences, cams, H36M17, camera_ids, every, normalization, detections,
        meta={"dataset": "h36m", "source": label, "exclude_drift": exclude_drift,
              "neck_ratio": neck_ratio if source == "sh" else None,
              **({"detections": detection_file} if detection_file else {})},
    )


def detection_path(source: str) -> str | None:
    """The file of a ``"detections:PATH"`` 2D source, ``None`` for ``"gt"`` / ``"sh"``; else :class:`DataError`."""
    if source in ("gt", "sh"):
        return None
    kind, sep, path = str(source).partition(":")
    if kind != "detections" or not sep or not path:
        raise DataError(f"unknown 2D source {source!r}; choose 'gt', 'sh' or 'detections:PATH'")
    return path


def load_h36m32(
    root: str | os.PathLike[str] | None = None,
    subjects: Sequence[str] = TRAIN_SUBJECTS,
    cameras: Sequence[str] | None = None,
    every: int = 1,
    normalization: str = "screen",
) -> PoseSet:
    """Human3.6M-32 (paper Table 6) from ``h36m_3d32_world_mm_every4.npz`` with projected GT 2D.

    The file holds every 4th frame; ``every`` subsamples further. Frame labels are 50 fps indices.
    """
    root = h36m_root(root)
    subjects = _check_choice("subject", subjects, SUBJECTS)
    camera_ids = _check_choice("camera", cameras if cameras is not None else CAMERA_IDS, CAMERA_IDS)
    cams = load_cameras_json(root / FILES["cameras"])
    sequences = _select(open_npz(root / FILES["3d32"]), subjects, exclude_drift=False)
    return build_poseset(sequences, cams, H36M32, camera_ids, every, normalization, frame_step=4,
                         meta={"dataset": "h36m32", "source": "gt", "exclude_drift": False})


# ---------------------------------------------------------------------- 2D detection files
Track = tuple[str, str, str]
"""``(subject, canonical sequence, camera id)`` of one 2D track."""


def read_detections(path: str | os.PathLike[str]) -> Detections:
    """Human3.6M 2D detections in a file, as ``detections(subject, sequence, camera) -> (T', 17, 2)`` px.

    * VideoPose3D ``data_2d_h36m_<name>.npz`` (CPN fine-tuned, Detectron, ...): ``positions_2d`` =
      {subject: {action: [4 x (T', J, 2+)]}} in the camera order of :data:`CAMERA_IDS`;
      ``metadata["layout_name"]`` ``"h36m"`` (H36M-17) or ``"coco"`` (COCO-17, converted).
    * EvoSkeleton's HRNet detections, the input of the authors' detected-2D models: a dict
      ``{(subject, action, "<sequence>.<camera>"): (T', 34) or (T', 17, 2)}`` in H36M-17 order, saved by
      ``np.save`` (``.npy``) or ``torch.save`` (``.pth.tar``, ``.pt``, ``.pth``); subjects ``"S9"`` or ``9``.

    Sequence names are matched after :func:`canonical_sequence`. Only arrays and plain containers
    are unpickled. A missing track raises a one-line :class:`DataError` naming subject, sequence and camera;
    callers trim longer tracks to the 3D length (as VideoPose3D does) and
    :func:`build_poseset` refuses shorter ones.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing detection file {path}")
    tracks = _videopose3d_tracks(path) if path.suffix == ".npz" else _evoskeleton_tracks(path)

    def detections(subject: str, sequence: str, cid: str) -> np.ndarray:
        kp = tracks.get((subject, canonical_sequence(sequence), cid))
        if kp is None:
            raise DataError(f"{path.name} has no 2D for {subject}/{sequence} camera {cid}")
        return kp

    return detections


def _h36m17_px(kp: Any, where: str, layout: str = "h36m") -> np.ndarray:
    kp = np.asarray(kp, dtype=np.float32)
    if kp.ndim == 2 and kp.shape[1] == 34:
        kp = kp.reshape(len(kp), 17, 2)
    if kp.ndim != 3 or kp.shape[1] != 17 or kp.shape[2] < 2:
        raise DataError(f"{where}: 2D has shape {kp.shape}, expected (T, 17, 2) or (T, 34)")
    kp = kp[..., :2]
    return coco17_to_h36m17(kp) if layout == "coco" else kp


def _videopose3d_tracks(path: Path) -> dict[Track, np.ndarray]:
    positions = load_pickled_member(path, "positions_2d")
    layout = load_pickled_member(path, "metadata").get("layout_name", "h36m")
    if layout not in ("h36m", "coco"):
        raise DataError(f"{path}: 2D layout {layout!r} is not 'h36m' or 'coco'")
    tracks = {}
    for subject, actions in positions.items():
        for action, cams in actions.items():
            for cid, kp in zip(CAMERA_IDS, cams):
                tracks[(str(subject), canonical_sequence(str(action)), cid)] = _h36m17_px(kp, f"{path} {subject}/{action}", layout)
    return tracks


def _evoskeleton_tracks(path: Path) -> dict[Track, np.ndarray]:
    try:
        if path.suffix == ".npy":
            with path.open("rb") as fh:
                data = read_pickled_npy(fh, str(path))
        else:
            import torch

            safe = [np.zeros(0).__reduce__()[0], np.ndarray, np.dtype,
                    *{type(np.dtype(t)) for t in (np.float16, np.float32, np.float64, np.int32, np.int64)}]
            with torch.serialization.safe_globals(safe):
                data = torch.load(path, map_location="cpu", weights_only=True)
    except DataError:
        raise
    except Exception as err:  # damaged file or a refused global
        raise DataError(f"corrupt detection file {path} ({type(err).__name__}); expected a pickled dict of arrays") from None
    if not isinstance(data, dict):
        raise DataError(f"{path} holds {type(data).__name__}, expected a dict of 2D tracks")
    tracks = {}
    for key, kp in data.items():
        if not (isinstance(key, tuple) and len(key) == 3):
            raise DataError(f"{path}: key {key!r} is not (subject, action, '<sequence>.<camera>')")
        subject, _, name = (k.decode("latin1") if isinstance(k, bytes) else k for k in key)  # Python 2 strings
        sequence, _, cid = str(name).removesuffix(".h5").rpartition(".")
        subject = f"S{subject}" if isinstance(subject, (int, np.integer)) else str(subject)
        tracks[(subject, canonical_sequence(sequence), cid)] = _h36m17_px(kp, f"{path} {key}")
    return tracks

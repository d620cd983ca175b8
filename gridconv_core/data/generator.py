"""The built-in pose generator: synthetic Human3.6M-17 motion seen by random virtual cameras.

So that training and evaluation run on a fresh machine with no data. A kinematic H36M-17
skeleton with realistic bone lengths (mm, scaled per sequence, left/right symmetric) moves by
smooth random walks of its joint angles, reflected into anatomical limits (hips, knees, spine,
thorax, neck, shoulders, elbows) plus a global yaw walk, pitch/roll and root translation. Each
sequence gets one virtual camera (distance, elevation, azimuth, focal ~1150 px, 1000 x 1000
image) looking at the subject; 2D is the projection (:func:`.camera.project`), normalised like
the real data, optionally with detector-like Gaussian noise. Everything is vectorised over
sequences and frames (the only Python loop walks the 17 joints of the kinematic tree).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..skeleton import H36M17, Skeleton, get_skeleton
from .camera import project, world_to_camera
from .normalization import normalize
from ..errors import DataError
from .poseset import PoseSet

__all__ = ["GeneratorConfig", "SyntheticCapture", "synthesize", "generate_poses", "REST_OFFSETS", "JOINT_LIMITS"]

REST_OFFSETS = np.array([
    (0, 0, 0), (-130, 0, 0), (0, -455, 0), (0, -460, 0), (130, 0, 0), (0, -455, 0), (0, -460, 0),
    (0, 240, 0), (0, 255, 0), (0, 100, 66), (0, 109, -35), (160, -40, 0), (0, -285, 0), (0, -250, 0),
    (-160, -40, 0), (0, -285, 0), (0, -250, 0),
], dtype=np.float64)
"""Offset of each H36M-17 joint from its parent in the parent's frame, mm (x: subject's left,
y: up, z: forward); lengths are typical Human3.6M bone lengths."""

JOINT_LIMITS = {
    1: ((-1.9, 0.4), (-0.4, 0.4), (-0.6, 0.15)),   # right hip: flexion, twist, abduction
    2: ((0.0, 2.3), (0.0, 0.0), (0.0, 0.0)),       # right knee
    4: ((-1.9, 0.4), (-0.4, 0.4), (-0.15, 0.6)),   # left hip
    5: ((0.0, 2.3), (0.0, 0.0), (0.0, 0.0)),       # left knee
    7: ((-0.3, 0.8), (-0.5, 0.5), (-0.3, 0.3)),    # spine (lumbar)
    8: ((-0.2, 0.4), (-0.3, 0.3), (-0.2, 0.2)),    # thorax
    9: ((-0.6, 0.6), (-1.0, 1.0), (-0.4, 0.4)),    # neck (moves the head)
    11: ((-2.6, 0.8), (-0.8, 0.8), (0.0, 1.8)),    # left shoulder
    12: ((-2.5, 0.0), (0.0, 0.0), (0.0, 0.0)),     # left elbow
    14: ((-2.6, 0.8), (-0.8, 0.8), (-1.8, 0.0)),   # right shoulder
    15: ((-2.5, 0.0), (0.0, 0.0), (0.0, 0.0)),     # right elbow
    0: ((-0.2, 0.5), (0.0, 0.0), (-0.15, 0.15)),   # root pitch and roll (yaw walks freely)
}
"""Euler-angle limits (rad) about the x, y, z axes of each rotating joint's parent frame."""


@dataclass(frozen=True)
class GeneratorConfig:
    """Generator settings; defaults give varied, plausible motion and H36M-like cameras."""

    sequence_length: int = 100
    body_scale: tuple[float, float] = (0.9, 1.1)
    bone_jitter: float = 0.04
    angle_step: float = 0.03
    yaw_step: float = 0.02
    smooth_window: int = 9
    translation_mm: float = 300.0
    camera_distance_m: tuple[float, float] = (3.0, 6.0)
    camera_elevation_deg: tuple[float, float] = (-5.0, 35.0)
    focal_px: tuple[float, float] = (1100.0, 1200.0)
    principal_jitter_px: float = 10.0
    image_size: tuple[int, int] = (1000, 1000)


@dataclass(frozen=True)
class SyntheticCapture:
    """World-frame joints and the per-sample virtual camera (``R (X - T)``, pinhole ``f``, ``c``)."""

    joints_world: np.ndarray  # (N, J, 3) mm
    R: np.ndarray  # (N, 3, 3)
    T: np.ndarray  # (N, 3) camera centre, mm
    f: np.ndarray  # (N, 2) px
    c: np.ndarray  # (N, 2) px
    sequence: np.ndarray  # (N,) int
    frame: np.ndarray  # (N,) int


def _rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` about coordinate ``axis`` (0 x, 1 y, 2 z)."""
    c, s = np.cos(angle), np.sin(angle)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r = np.zeros(angle.shape + (3, 3))
    r[..., axis, axis] = 1.0
    r[..., i, i], r[..., i, j], r[..., j, i], r[..., j, j] = c, -s, s, c
    return r


def _euler(angles: np.ndarray) -> np.ndarray:
    """``Ry(twist) Rx(flexion) Rz(abduction)`` from angles ``(..., 3)`` ordered (x, y, z), in closed form."""
    ca, sa = np.cos(angles[..., 0]), np.sin(angles[..., 0])
    cb, sb = np.cos(angles[..., 1]), np.sin(angles[..., 1])
    cc, sc = np.cos(angles[..., 2]), np.sin(angles[..., 2])
    rows = (
        (cb * cc + sb * sa * sc, sb * sa * cc - cb * sc, sb * ca),
        (ca * sc, ca * cc, -sa),
        (cb * sa * sc - sb * cc, sb * sc + cb * sa * cc, cb * ca),
    )
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def _smooth_walk(rng: np.random.Generator, shape: tuple[int, int, int], step: float, window: int) -> np.ndarray:
    """Cumulative sums of moving-averaged Gaussian steps along axis 1: smooth random walks."""
    steps = rng.normal(0.0, step, (shape[0], shape[1] + window - 1, shape[2]))
    c = np.cumsum(steps, axis=1)
    smoothed = (c[:, window - 1:] - np.concatenate([np.zeros_like(c[:, :1]), c[:, :-window]], axis=1)) / np.sqrt(window)
    return np.cumsum(smoothed, axis=1)


def _reflect(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Fold values into ``[lo, hi]`` by reflection at the bounds (a triangle wave)."""
    span = np.maximum(hi - lo, 1e-12)
    u = np.mod((x - lo) / span, 2.0)
    return lo + span * (1.0 - np.abs(u - 1.0))


def synthesize(n: int, seed: int = 0, config: GeneratorConfig | None = None) -> SyntheticCapture:
    """``n`` frames of synthetic motion (sequences of ``config.sequence_length``) with cameras."""
    cfg = config or GeneratorConfig()
    if n < 1 or cfg.sequence_length < 1:
        raise DataError(f"need n >= 1 and sequence_length >= 1, got n={n}, sequence_length={cfg.sequence_length}")
    rng = np.random.default_rng(seed)
    s, t = -(-n // cfg.sequence_length), cfg.sequence_length
    joints = sorted(JOINT_LIMITS)
    lo = np.array([[a[0] for a in JOINT_LIMITS[j]] for j in joints])  # (D, 3)
    hi = np.array([[a[1] for a in JOINT_LIMITS[j]] for j in joints])
    start = lo + (hi - lo) * rng.beta(2.0, 2.0, (s, 1, len(joints), 3))
    walk = _smooth_walk(rng, (s, t, len(joints) * 3), cfg.angle_step, cfg.smooth_window).reshape(s, t, len(joints), 3)
    local = dict(zip(joints, np.moveaxis(_euler(_reflect(start + walk, lo, hi)), 2, 0)))

    yaw = rng.uniform(0, 2 * np.pi, (s, 1)) + _smooth_walk(rng, (s, t, 1), cfg.yaw_step, cfg.smooth_window)[..., 0]
    tr_lim = np.full(3, cfg.translation_mm) * np.array([1.0, 0.0, 1.0])
    trans = _reflect(_smooth_walk(rng, (s, t, 3), 6.0, cfg.smooth_window) + rng.uniform(-tr_lim, tr_lim, (s, 1, 3)), -tr_lim, tr_lim)

    sym = rng.normal(0.0, cfg.bone_jitter, (s, H36M17.num_joints))
    sym = (sym + sym[:, list(H36M17.flip_permutation)]) / 2  # left and right bones alike
    offsets = REST_OFFSETS * (rng.uniform(*cfg.body_scale, (s, 1)) [..., None] * (1.0 + sym[..., None]))[:, None]  # (S,1,J,3)

    rot = [np.empty(0)] * H36M17.num_joints
    pos = np.zeros((s, t, H36M17.num_joints, 3))
    rot[0] = _rotation(1, yaw) @ local[0]
    pos[:, :, 0] = trans
    for j, p in enumerate(H36M17.parents):
        if p < 0:
            continue
        pos[:, :, j] = pos[:, :, p] + (rot[p] @ offsets[:, :, j, :, None])[..., 0]
        rot[j] = rot[p] @ local[j] if j in local else rot[p]

    # One look-at camera per sequence (world y up; camera x right, y down, z forward).
    dist = rng.uniform(*cfg.camera_distance_m, s) * 1000.0
    elev = np.deg2rad(rng.uniform(*cfg.camera_elevation_deg, s))
    azim = rng.uniform(0, 2 * np.pi, s)
    target = pos[:, :, 0].mean(axis=1) + rng.normal(0.0, 100.0, (s, 3))
    centre = target + dist[:, None] * np.stack([np.cos(elev) * np.sin(azim), np.sin(elev), np.cos(elev) * np.cos(azim)], -1)
    fwd = (target - centre) / np.linalg.norm(target - centre, axis=-1, keepdims=True)
    right = np.cross(fwd, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right, axis=-1, keepdims=True)
    r_cam = np.stack([right, np.cross(fwd, right), fwd], axis=1)  # rows: x, y (down), z
    focal = rng.uniform(*cfg.focal_px, (s, 1)) * (1.0 + rng.normal(0.0, 0.002, (s, 2)))
    centre_px = np.array(cfg.image_size) / 2.0 + rng.normal(0.0, cfg.principal_jitter_px, (s, 2))

    def per_frame(a: np.ndarray) -> np.ndarray:
        return np.repeat(a, t, axis=0)[:n]

    return SyntheticCapture(
        joints_world=pos.reshape(s * t, H36M17.num_joints, 3)[:n], R=per_frame(r_cam), T=per_frame(centre),
        f=per_frame(focal), c=per_frame(centre_px), sequence=per_frame(np.arange(s)),
        frame=np.tile(np.arange(t), s)[:n],
    )


def generate_poses(
    n: int,
    seed: int = 0,
    skeleton: str | Skeleton = "h36m17",
    noise_px: float = 0.0,
    normalization: str = "screen",
    config: GeneratorConfig | None = None,
) -> PoseSet:
    """A :class:`PoseSet` of ``n`` synthetic samples, deterministic for ``seed``.

    2D: pinhole projection in pixels (+ ``noise_px`` Gaussian noise per coordinate), normalised
    as the real data; 3D: root-relative camera frame, metres. Labels are ``"synthetic"``.
    """
    if get_skeleton(skeleton) != H36M17:
        raise DataError(f"the built-in generator makes h36m17 poses, not {get_skeleton(skeleton).name}")
    if noise_px < 0:
        raise DataError(f"noise_px must be >= 0, got {noise_px}")
    cfg = config or GeneratorConfig()
    cap = synthesize(n, seed, cfg)
    x_cam = world_to_camera(cap.joints_world, cap.R, cap.T)
    uv = project(x_cam, cap.f, cap.c)
    if noise_px > 0:
        uv = uv + np.random.default_rng([seed, 1]).normal(0.0, noise_px, uv.shape)
    w, h = cfg.image_size
    return PoseSet(
        pose2d=normalize(uv, w, h, normalization), pose3d=(x_cam - x_cam[:, :1]) / 1000.0, skeleton=H36M17,
        subject=np.full(n, "synthetic"), action=np.full(n, "synthetic"),
        sequence=np.char.add("synthetic ", cap.sequence.astype(str)), camera=np.char.add("virtual ", cap.sequence.astype(str)),
        frame=cap.frame,
        meta={"dataset": "synthetic", "seed": seed, "noise_px": noise_px, "normalization": normalization,
              "image_size": {"virtual": (w, h)}, "valid_joints": list(range(H36M17.num_joints))},
    )

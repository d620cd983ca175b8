"""Writing a compact Human3.6M-17 training folder for machines that receive the repository only (issue 11).

``python -m gridconv_core.data.pack [--root DIR] [--out packed/h36m]`` writes into a git-ignored
folder (never commit it: it is derived from Human3.6M), in the format of :mod:`.packed`:

* ``h36m_3d17_int16.npz``: every sequence's world-frame joints as the root joint (float32 mm) plus
  the 16 other joints relative to it (int16, 0.1 mm steps); compressed, about 46 MB for the 497,888
  frames of the shared file (108 bytes a frame before compression);
* ``h36m_cameras.json``: a copy of the calibration.

:func:`~gridconv_core.data.load_h36m` reads such a folder exactly like the shared one (``source="gt"``
only: no detections travel), so the camera-frame targets and projected 2D inputs are rebuilt by the
same code (:func:`~gridconv_core.data.h36m.build_poseset`). Rounding to 0.1 mm moves a world
coordinate by at most 0.05 mm, so a camera-frame root-relative joint by at most 0.087 mm (a
rotation keeps lengths) and a projected joint by about ``f / Z`` times that (~0.05 px at 2 m).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..io import atomic_write_bytes, atomic_write_text
from .generator import GeneratorConfig, synthesize
from .h36m import ACTIONS, CAMERA_IDS, FILES, SUBJECTS, _check_choice, h36m_root, open_npz
from .packed import _LIMIT, FORMAT, PACKED_FILE, STEP_MM, PackedSequences

__all__ = ["pack_sequences", "pack_h36m", "synthetic_h36m", "main"]

def pack_sequences(sequences: Mapping[str, np.ndarray], cameras: Mapping[str, Any], out_dir: str | os.PathLike[str]) -> Path:
    """Write ``{"S1/Directions 1": (T, 17, 3) world mm}`` and the calibration dict as a packed folder."""
    names = sorted(sequences)
    if not names:
        raise DataError("no sequences to pack")
    for name in names:
        if sequences[name].ndim != 3 or sequences[name].shape[1:] != (17, 3):
            raise DataError(f"{name}: shape {sequences[name].shape}, expected (T, 17, 3) world mm")
    world = np.concatenate([sequences[n] for n in names]).astype(np.float64)
    offset = np.round((world[:, 1:] - world[:, :1]) / STEP_MM)
    if not np.isfinite(offset).all() or np.abs(offset).max() > _LIMIT:
        raise DataError(f"a joint lies more than {_LIMIT * STEP_MM:.1f} mm from its root (or is not finite)")
    buf = io.BytesIO()
    np.savez_compressed(buf, format=np.array(FORMAT), keys=np.array(names),
                        lengths=np.array([len(sequences[n]) for n in names], dtype=np.int64),
                        root_mm=world[:, 0].astype(np.float32), offset_01mm=offset.astype(np.int16))
    out = Path(out_dir)
    atomic_write_bytes(out / PACKED_FILE, buf.getvalue())
    atomic_write_text(out / FILES["cameras"], json.dumps(cameras) + "\n")
    return out


def pack_h36m(root: str | os.PathLike[str] | None = None, out_dir: str | os.PathLike[str] = "packed/h36m",
              subjects: Sequence[str] | None = None, sequences_per_subject: int = 0, frames_per_sequence: int = 0) -> Path:
    """Pack the shared Human3.6M-17 files (optionally a subset: the first sequences / frames)."""
    root = h36m_root(root)
    chosen = _check_choice("subject", subjects if subjects is not None else SUBJECTS, SUBJECTS)
    npz = open_npz(root / FILES["3d17"])
    by_subject: dict[str, list[str]] = {}
    for key in sorted(npz.keys):
        by_subject.setdefault(key.partition("/")[0], []).append(key)
    keys = [k for s in chosen for k in by_subject.get(s, [])[:sequences_per_subject or None]]
    seqs = {k: npz[k][:frames_per_sequence or None] for k in keys}
    cams = json.loads((root / FILES["cameras"]).read_text())
    return pack_sequences(seqs, {s: cams[s] for s in chosen if s in cams}, out_dir)


def synthetic_h36m(frames_per_subject: int = 200, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Human3.6M-shaped stand-in from the built-in generator: 7 subjects, 4 look-at cameras each.

    Returns ``(sequences, cameras)`` for :func:`pack_sequences`; for tests and the GPU script's dry run.
    """
    length = max(1, frames_per_subject // 2)
    sequences: dict[str, np.ndarray] = {}
    cameras: dict[str, Any] = {}
    for i, subject in enumerate(SUBJECTS):
        cap = synthesize(2 * length, seed=seed * 101 + i, config=GeneratorConfig(sequence_length=length))
        for s in range(2):
            sequences[f"{subject}/{ACTIONS[(i + s) % len(ACTIONS)]} 1"] = cap.joints_world[s * length:(s + 1) * length].astype(np.float32)
        views = synthesize(4 * length, seed=seed * 101 + 50 + i, config=GeneratorConfig(sequence_length=length))
        cameras[subject] = {
            cid: {"R": views.R[v * length].tolist(), "T": views.T[v * length].tolist(), "f": views.f[v * length].tolist(),
                  "c": views.c[v * length].tolist(), "k": [0.0, 0.0, 0.0], "p": [0.0, 0.0], "res_w": 1000, "res_h": 1000}
            for v, cid in enumerate(CAMERA_IDS)
        }
    return sequences, cameras


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: pack the shared files (default ``../shared/data/h36m`` or ``$GRIDCONV_H36M``) into ``--out``."""
    parser = argparse.ArgumentParser(prog="python -m gridconv_core.data.pack", description=main.__doc__)
    parser.add_argument("--root", default=None, help="the Human3.6M folder (default: gridconv_core.data.h36m_root())")
    parser.add_argument("--out", default="packed/h36m", help="output folder (keep it git-ignored)")
    args = parser.parse_args(argv)
    try:
        out = pack_h36m(args.root, args.out)
        frames = PackedSequences(out / PACKED_FILE).num_frames
    except (DataError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    print(f"packed {frames} frames into {out} ({size:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The packed Human3.6M-17 file (written by :mod:`.pack`): read side and format constants.

``h36m_3d17_int16.npz`` holds every sequence's world-frame root joint (float32 mm) and the 16 other joints
relative to it (int16, :data:`STEP_MM` steps). :func:`~gridconv_core.data.load_h36m` reads a folder holding it
like the shared one.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["PACKED_FILE", "FORMAT", "STEP_MM", "PackedSequences"]

PACKED_FILE = "h36m_3d17_int16.npz"
FORMAT = "gridconv-h36m17-int16-v1"
STEP_MM = 0.1
"""Quantisation step of the root-relative joints (mm): int16 then spans +-3276.7 mm."""
_LIMIT = np.iinfo(np.int16).max


class PackedSequences:
    """Read side of a packed file: ``keys`` and ``self["S9/Walking 1"] -> (T, 17, 3)`` float32 world mm.

    Mirrors the shared ``h36m_3d17_world_mm.npz`` (what :func:`~gridconv_core.data.h36m.open_npz` gives).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                fmt, names = str(npz["format"]), [str(k) for k in npz["keys"]]
                lengths, self._root, self._offset = npz["lengths"], npz["root_mm"], npz["offset_01mm"]
        except FileNotFoundError:
            raise DataError(f"missing file {self.path}") from None
        except Exception as err:  # zipfile, zlib, missing arrays, header parsing
            raise DataError(f"corrupt packed file {self.path}: {type(err).__name__}: {err}") from None
        frames = int(lengths.sum())
        if fmt != FORMAT or len(names) != len(lengths) or self._root.shape != (frames, 3) \
                or self._offset.shape != (frames, 16, 3) or self._offset.dtype != np.int16:
            raise DataError(f"{self.path} is not a {FORMAT} file (or its arrays disagree in size)")
        ends = np.cumsum(lengths)
        self._slices = {k: slice(int(e - n), int(e)) for k, n, e in zip(names, lengths, ends)}
        self.keys = frozenset(names)
        self.lengths = {k: int(n) for k, n in zip(names, lengths)}
        self.num_frames = frames

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._slices:
            raise DataError(f"{self.path.name} has no sequence {key!r}")
        s = self._slices[key]
        root = self._root[s]
        x = np.empty((len(root), 17, 3), dtype=np.float32)
        x[:, 0] = root
        x[:, 1:] = root[:, None] + self._offset[s].astype(np.float32) * np.float32(STEP_MM)
        return x

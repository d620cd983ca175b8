"""Reading pickled numpy data without running pickled code: only arrays, dtypes and plain containers.

VideoPose3D and EvoSkeleton store their dicts as pickled object arrays, which ``np.load`` reads only with
``allow_pickle=True`` (arbitrary code on a malicious file); these readers rebuild the same data safely.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["read_pickled_npy", "load_pickled_member"]

PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}
"""The globals an array pickle may name."""


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds only numpy arrays, dtypes and plain containers; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in PICKLE_ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_pickled_npy(fh: Any, what: str) -> Any:
    """The object of a pickled ``.npy`` stream (an object array, as ``np.save`` writes a dict) via
    :class:`_ArrayUnpickler`; a 0-d array becomes its item."""
    version = np.lib.format.read_magic(fh)
    if version not in ((1, 0), (2, 0)):
        raise DataError(f"unsupported .npy format version {version}")
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    _, _, dtype = read_header(fh)
    if not dtype.hasobject:
        raise DataError(f"{what} is a plain array, expected a pickled dict")
    array = _ArrayUnpickler(fh, encoding="latin1").load()
    return array.item() if isinstance(array, np.ndarray) and array.shape == () else array


def load_pickled_member(path: Path, key: str) -> Any:
    """The object stored under ``key`` of a VideoPose3D npz (a pickled 0-d object array).

    VideoPose3D saves its dicts as object arrays, which ``np.load`` reads only with
    ``allow_pickle=True`` (arbitrary code on a malicious file). We read that one member with a
    restricted unpickler instead: the same data, no code execution.
    """
    try:
        with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as fh:
            value = read_pickled_npy(fh, f"{path}: {key!r}")
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"missing file {path}") from None
    except KeyError:
        raise DataError(f"{path} has no {key!r} entry (not a VideoPose3D file)") from None
    except Exception as err:  # damaged zip or pickle data, or a refused global
        raise DataError(f"corrupt VideoPose3D file {path}: {err}") from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: {key!r} holds {type(value).__name__}, expected a dict")
    return value

"""Training checkpoints: plain dicts of tensors and primitives, written atomically every epoch.

A checkpoint loads with ``torch.load(path, weights_only=True)``: RNG states are stored as tensors
and lists, histories as lists. It holds the config, layout JSON, model,
optimiser and scheduler states, RNG states, the finished epoch count, the metric history, the best
(validation-selected) state and the S^prob history of AutoGrids (A.3).
"""
from __future__ import annotations

import io
import os
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError
from ..io import atomic_write_bytes

__all__ = ["CHECKPOINT_FORMAT", "save_checkpoint", "load_checkpoint",
           "rng_state", "set_rng_state", "check_model_config"]

CHECKPOINT_FORMAT = "gridconv-train-checkpoint"
CHECKPOINT_VERSION = 1
REQUIRED_KEYS = {"config": dict, "model": dict, "best_state": dict, "epoch": int, "history": list}
"""Entries every checkpoint holds, with their types."""


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` (plus format tags) to ``path`` atomically."""
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only``); any defect raises a one-line :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on foreign files
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - a damaged file can fail anywhere inside the unpickler
        raise CheckpointError(f"cannot read checkpoint {path}: {_unreadable(path, err)}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a gridconv training checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} has checkpoint version {state.get('version')!r}, expected {CHECKPOINT_VERSION}")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path} is incomplete: missing {', '.join(missing)}")
    wrong = [f"{k} ({type(state[k]).__name__})" for k, kind in REQUIRED_KEYS.items() if not isinstance(state[k], kind)]
    if wrong:
        raise CheckpointError(f"{path} is damaged: wrong type of {', '.join(wrong)}")
    return state


def _unreadable(path: Path, err: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in our words (torch's own message spans many lines)."""
    with path.open("rb") as fh:
        head = fh.read(2)
    if not head:
        return "the file is empty"
    if head == b"PK":
        if "Unsupported global" in str(err):
            return "it stores Python objects besides tensors and plain containers, which are never unpickled here"
        return "the torch archive is truncated or damaged"
    if head[:1] == b"\x80":
        return "it is a raw pickle (or an old torch file) that a safe load refuses; pickled code is never run here"
    return "it is not a torch checkpoint file"


def check_model_config(state: dict[str, Any], expected: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Refuse a checkpoint whose model config differs from ``expected`` (names the differing keys)."""
    stored = state["config"].get("model", {})
    keys = sorted(k for k in set(stored) | set(expected) if stored.get(k) != expected.get(k))
    if keys:
        diff = ", ".join(f"{k}={stored.get(k)!r} (expected {expected.get(k)!r})" for k in keys[:4])
        raise CheckpointError(f"checkpoint {path} is for a different model: {diff}")


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch and CUDA RNG states as tensors and lists (weights_only-loadable)."""
    version, mt, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    return {
        "python": {"version": version, "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
        "numpy": {"name": np_name, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the RNG states captured by :func:`rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state((npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["gauss"]))
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])

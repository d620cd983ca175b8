"""File I/O shared by the toolkit: atomic writes (readers never see half a file) and ``CheckpointError``."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["CheckpointError", "atomic_write_bytes", "atomic_write_text"]


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, unsafe, not ours, or belongs to a different model."""


def atomic_write_bytes(path: str | os.PathLike[str], payload: bytes) -> None:
    """Write ``payload`` to a temporary file in the target folder, fsync it, then ``os.replace`` it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))

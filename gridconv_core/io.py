"""File I/O shared by the toolkit: atomic writes (readers never see half a file) and ``CheckpointError``."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["CheckpointError", "atomic_write_bytes", "atomic_write_text", "read_json", "write_json"]


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, unsafe, not ours, or belongs to a different model."""


def atomic_write_bytes(path: str | os.PathLike[str], payload: bytes) -> None:
    """Write ``payload`` to a temporary file in the target folder, fsync it, then ``os.replace`` it into place.

    The file gets the usual permissions of a new file (``0o666`` less the umask), not ``mkstemp``'s ``0o600``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
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


def read_json(source: str | os.PathLike[str], error: type[ValueError], what: str) -> Any:
    """Parse ``source`` as JSON text (when it starts with ``{``) or read it as a JSON file.

    Any failure raises ``error`` with a one-line message naming ``what`` (e.g. "layout").
    """
    text = str(source)
    if isinstance(source, os.PathLike) or not text.lstrip().startswith("{"):
        try:
            text = Path(source).read_text()
        except OSError as err:
            raise error(f"cannot read {what} file {source}: {err.strerror or err}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"malformed {what} JSON: {err.msg} at line {err.lineno} column {err.colno}") from None


def write_json(data: Any, path: str | os.PathLike[str] | None = None) -> str:
    """``data`` as indented JSON text; with ``path`` it is also written there atomically."""
    text = json.dumps(data, indent=2)
    if path is not None:
        atomic_write_text(path, text + "\n")
    return text

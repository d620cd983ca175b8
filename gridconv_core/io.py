"""File I/O shared by the toolkit: atomic writes (readers never see half a file) and JSON reading."""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "read_json", "write_json"]


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path in ``path``'s folder for a writer that needs a file name (e.g. the ONNX exporter).

    When the block succeeds the file is ``os.replace``-d onto ``path`` (readers never see half a file); when
    it raises, the temporary file is removed and ``path`` is untouched. The file gets the usual permissions
    of a new file (``0o666`` less the umask), not ``mkstemp``'s ``0o600``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        os.close(fd)
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike[str], payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically (:func:`atomic_path`), fsynced before the rename."""
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def read_json(source: str | os.PathLike[str], error: type[ValueError], what: str) -> Any:
    """Parse ``source`` as JSON text (when it starts with ``{``) or read it as a JSON file.

    Any failure raises ``error`` with a one-line message naming ``what`` (e.g. "layout").
    """
    text, where = str(source), ""
    if isinstance(source, os.PathLike) or not text.lstrip().startswith("{"):
        where = f" in {source}"
        try:
            text = Path(source).read_text()
        except OSError as err:
            raise error(f"cannot read {what} file {source}: {err.strerror or err}") from None
        except UnicodeDecodeError:
            raise error(f"malformed {what} JSON{where}: not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"malformed {what} JSON{where}: {err.msg} at line {err.lineno} column {err.colno}") from None


def write_json(data: Any, path: str | os.PathLike[str] | None = None) -> str:
    """``data`` as indented JSON text; with ``path`` it is also written there atomically."""
    text = json.dumps(data, indent=2)
    if path is not None:
        atomic_write_text(path, text + "\n")
    return text

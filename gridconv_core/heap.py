"""The CPU process heap: keep freed buffers for reuse instead of handing them back to the OS (glibc).

PyTorch's CPU tensors come from ``malloc``. glibc returns big freed blocks to the OS (``munmap``, or trimming
the heap top), so the next step's buffers of the same size are fresh pages, and every 4 KiB page faults on its
first write (about 1.2 us each on a 2-core AMD EPYC). A training step of the default GLN at batch 200 takes
5,000-55,000 such faults, depending on what the process allocated before, and the authors' unfold network about
750,000, 43% of its step (``benchmarks/bench_heap.py``). :func:`keep_freed_memory` raises glibc's mmap and trim
thresholds (``mallopt``), so those buffers are served again from the heap: no faults once the heap has grown
(a few steps).
This is the standard advice for PyTorch on CPU (a caching ``malloc`` such as jemalloc or tcmalloc, preloaded).

It is a setting of the whole process and stays set: the process keeps up to ``limit`` bytes of freed memory
instead of returning it to the OS. The ``gridconv`` command sets it for its own process, :func:`train` when
``TrainConfig.keep_freed_memory`` is on (the default) and the device is the CPU; a notebook can call it once.
"""
from __future__ import annotations

import ctypes
import os

__all__ = ["GLIBC", "keep_freed_memory"]



def _glibc() -> bool:
    """Whether the C library is glibc, asked of the C library itself (no file is read)."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (AttributeError, ValueError, OSError):
        return False


GLIBC = _glibc()
"""Whether this process runs on glibc, whose ``mallopt`` :func:`keep_freed_memory` calls."""

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_INT_MAX = 2**31 - 1  # mallopt takes an int


def keep_freed_memory(limit: int = 1 << 30) -> bool:
    """Serve blocks up to ``limit`` bytes from the heap and keep up to ``limit`` bytes of freed heap (module doc).

    Returns whether glibc took both settings; ``False`` (nothing changed) on other C libraries.
    """
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= _INT_MAX:
        raise ValueError(f"keep_freed_memory: limit must be an integer in [1, {_INT_MAX}] bytes, got {limit!r}")
    if not GLIBC:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: libc is loaded, nothing is searched
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, limit)) & bool(mallopt(_M_TRIM_THRESHOLD, limit))

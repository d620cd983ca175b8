"""gridconv_core.heap: freed CPU buffers are reused instead of page-faulted anew (counted, not timed)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gridconv_core.errors import ConfigError
from gridconv_core.heap import GLIBC, keep_freed_memory
from gridconv_core.train import TrainConfig
from gridconv_core.train import trainer as trainer_module

# A loop that allocates and frees a 40 MB tensor (above glibc's 32 MB dynamic mmap ceiling, so each one is a
# fresh mapping by default) and prints the minor page faults per iteration after a warm-up (with the heap kept,
# glibc settles within about ten such buffers).
_FAULTS = """
import resource, sys, torch
from gridconv_core.heap import GLIBC, keep_freed_memory
if sys.argv[1] == "kept":
    assert keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(30):
    torch.ones(10 * 2**20)
start = faults()
for _ in range(10):
    torch.ones(10 * 2**20)
print((faults() - start) / 10)
"""


def _faults_per_buffer(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    return float(out.stdout.split()[-1])


@pytest.mark.skipif(not GLIBC, reason="keep_freed_memory sets glibc's malloc thresholds; this C library is not glibc")
def test_kept_heap_serves_freed_buffers_again_without_page_faults() -> None:
    pages = 40 * 2**20 / 4096
    assert _faults_per_buffer("default") > 0.9 * pages  # every page of every fresh 40 MB buffer faults
    assert _faults_per_buffer("kept") < 0.01 * pages  # after the warm-up the same block comes back


def test_limit_is_checked() -> None:
    for bad in (0, -1, 2**31, 1.5, True):
        with pytest.raises(ValueError, match="limit must be an integer"):
            keep_freed_memory(bad)  # type: ignore[arg-type]


def test_train_keeps_freed_memory_on_cpu_unless_switched_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    class Stop(Exception):
        pass

    def stop(*args: object, **kwargs: object) -> None:
        raise Stop

    monkeypatch.setattr(trainer_module, "keep_freed_memory", lambda: calls.append("kept"))
    monkeypatch.setattr(trainer_module, "_Run", stop)  # the heap setting comes before any run state
    for enabled, expected in ((True, ["kept"]), (False, [])):
        calls.clear()
        with pytest.raises(Stop):
            trainer_module.train(TrainConfig(device="cpu", keep_freed_memory=enabled, out_dir=str(tmp_path), name="r"))
        assert calls == expected
    with pytest.raises(ConfigError, match="keep_freed_memory must be true or false"):
        TrainConfig(keep_freed_memory="yes")  # type: ignore[arg-type]

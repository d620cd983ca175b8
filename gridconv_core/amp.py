"""Mixed precision: ``amp="auto"`` is bf16 autocast where the hardware multiplies bf16 natively, else fp32.

Native means a CUDA device with bf16 support, or a CPU with AVX512-BF16 or AMX-BF16 matrix instructions
(``torch.backends.cpu.get_cpu_capability()`` reports only the vector ISA, so the CPU flags are read
from ``/proc/cpuinfo``). Elsewhere bf16 is emulated and slower than fp32.
"""
from __future__ import annotations

import warnings
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch

from .errors import ConfigError

__all__ = ["AMP_MODES", "BF16_CPU_FLAGS", "cpu_flags", "native_bf16", "resolve_amp", "autocast"]

AMP_MODES = ("none", "bf16", "auto")
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return frozenset()
    return next((frozenset(ln.split(":", 1)[1].split()) for ln in lines if ln.startswith("flags")), frozenset())


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` has native bf16 matrix instructions (module doc)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device.type == "cpu" and bool(BF16_CPU_FLAGS & cpu_flags())


def resolve_amp(amp: str, device: torch.device | str) -> str:
    """``"none"`` or ``"bf16"``: ``"auto"`` becomes bf16 where :func:`native_bf16`, else none."""
    if amp not in AMP_MODES:
        raise ConfigError(f"amp={amp!r} is not one of {', '.join(AMP_MODES)}")
    if amp == "auto":
        return "bf16" if native_bf16(device) else "none"
    return amp


def autocast(amp: str, device: torch.device | str) -> AbstractContextManager[object]:
    """The autocast context of ``amp`` on ``device`` (a no-op for fp32); warns when ``amp="bf16"`` asks for bf16
    on a CPU that would emulate it."""
    device = torch.device(device)
    if amp == "bf16" and device.type == "cpu" and not native_bf16(device):
        warnings.warn("amp='bf16' on a CPU without AVX512-BF16 or AMX: bf16 is emulated there, far slower than fp32 "
                      "(amp='auto' picks fp32)", stacklevel=2)
    if resolve_amp(amp, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()

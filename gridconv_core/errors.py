"""Every error the toolkit raises on bad user input, and the model input check (the package's ground floor).

Each class is a ``ValueError`` with a one-line message (docs/CONTRACTS.md). This module imports nothing
from the package, so every other module can import it.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "SkeletonError",
    "LayoutError",
    "ConfigError",
    "InputError",
    "DataError",
    "CheckpointError",
    "EvalError",
    "MetricError",
    "CliError",
    "check_pose_input",
]


class SkeletonError(ValueError):
    """An unknown skeleton or joint name, or a malformed or conflicting skeleton definition."""


class LayoutError(ValueError):
    """A grid layout is malformed; the message names the offending cells or joints."""


class ConfigError(ValueError):
    """A model or training configuration (or an option of a module) is invalid; the message names the field."""


class InputError(ValueError):
    """A model input (pose batch, grid feature, graph) has the wrong shape or non-finite values."""


class DataError(ValueError):
    """A data file or pose set is missing, malformed or inconsistent."""


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, unsafe, not ours, or belongs to a different model."""


class EvalError(ValueError):
    """An evaluation request does not fit the data (wrong input source, unknown protocol, no joints)."""


class MetricError(ValueError):
    """Inputs a metric cannot score (shape mismatch, NaN, bad joint list, unknown metric)."""


class CliError(ValueError):
    """A command-line input is invalid."""


def check_pose_input(x: Tensor, num_joints: int, skeleton_name: str = "", training: bool = False) -> None:
    """Raise :class:`InputError` unless ``x`` is a finite floating-point ``(B, J, 2)`` batch (eq. 9's input).

    The finiteness check reads a value back to the host; a training step on CUDA skips it (training
    batches are rows of a PoseSet, checked when it was built), so the step never waits for the device.
    """
    if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[1] != num_joints or x.shape[2] != 2:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        of = f" for skeleton {skeleton_name}" if skeleton_name else ""
        raise InputError(f"expected 2D poses of shape (B, {num_joints}, 2){of}, got {got}")
    if not x.is_floating_point():
        raise InputError(f"expected floating-point 2D poses, got dtype {x.dtype}")
    if (training and x.is_cuda) or torch.compiler.is_compiling():
        return
    if not bool(torch.isfinite(x).all()):
        raise InputError("2D poses contain NaN or infinite values")

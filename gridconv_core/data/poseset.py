"""Paired 2D/3D pose data held as tensors and batched by index (paper A.4, issue 3 "Data").

A :class:`PoseSet` is what every loader returns: normalised 2D inputs ``(N, J, 2)``,
root-relative camera-frame 3D targets in metres ``(N, J, 3)`` and per-sample labels.
Training draws batches by indexing the tensors on their device (``torch.randperm`` there):
no per-sample Python ``__getitem__`` in the hot path.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from ..skeleton import Skeleton

__all__ = ["PoseSet", "LABEL_FIELDS"]

LABEL_FIELDS = ("subject", "action", "sequence", "camera", "frame")
"""Per-sample label arrays of a :class:`PoseSet` (numpy, length ``N``)."""


@dataclass
class PoseSet:
    """Paired poses of one skeleton.

    Attributes:
        pose2d: ``(N, J, 2)`` float32 normalised screen coordinates (the model input).
        pose3d: ``(N, J, 3)`` float32 root-relative camera-frame 3D in metres (the target).
        skeleton: the joints' :class:`Skeleton`.
        subject, action, sequence, camera: ``(N,)`` string labels; ``action`` is the action
            group (sequence name up to the first space).
        frame: ``(N,)`` int64 frame index within the sequence.
        meta: free-form provenance (2D source, normalisation, image sizes, ``valid_joints``...).
    """

    pose2d: Tensor
    pose3d: Tensor
    skeleton: Skeleton
    subject: np.ndarray
    action: np.ndarray
    sequence: np.ndarray
    camera: np.ndarray
    frame: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pose2d = torch.as_tensor(self.pose2d, dtype=torch.float32)
        self.pose3d = torch.as_tensor(self.pose3d, dtype=torch.float32, device=self.pose2d.device)
        j = self.skeleton.num_joints
        if self.pose2d.ndim != 3 or tuple(self.pose2d.shape[1:]) != (j, 2):
            raise DataError(f"pose2d has shape {tuple(self.pose2d.shape)}, expected (N, {j}, 2) for {self.skeleton.name}")
        if self.pose3d.ndim != 3 or tuple(self.pose3d.shape[1:]) != (j, 3):
            raise DataError(f"pose3d has shape {tuple(self.pose3d.shape)}, expected (N, {j}, 3) for {self.skeleton.name}")
        n = self.pose2d.shape[0]
        if self.pose3d.shape[0] != n:
            raise DataError(f"2D/3D frame-count mismatch: {n} 2D poses but {self.pose3d.shape[0]} 3D poses")
        for name in LABEL_FIELDS:
            arr = np.asarray(getattr(self, name), dtype=np.int64 if name == "frame" else str)
            if arr.shape != (n,):
                raise DataError(f"label {name!r} has shape {arr.shape}, expected ({n},)")
            setattr(self, name, arr)
        for name, t in (("pose2d", self.pose2d), ("pose3d", self.pose3d)):
            bad = ~torch.isfinite(t).flatten(1).all(dim=1)
            if bool(bad.any()):
                rows = torch.nonzero(bad).flatten()
                raise DataError(f"{name} has {rows.numel()} rows with NaN/inf values (first row {int(rows[0])})")

    def __len__(self) -> int:
        return int(self.pose2d.shape[0])

    @property
    def device(self) -> torch.device:
        return self.pose2d.device

    def to(self, device: torch.device | str) -> PoseSet:
        """A copy whose tensors live on ``device`` (labels stay numpy)."""
        return replace(self, pose2d=self.pose2d.to(device), pose3d=self.pose3d.to(device))

    def subset(self, mask_or_index: np.ndarray | Tensor | Sequence[int] | Sequence[bool]) -> PoseSet:
        """Rows selected by a boolean mask of length ``N`` or an integer index array."""
        idx = mask_or_index.detach().cpu().numpy() if isinstance(mask_or_index, Tensor) else np.asarray(mask_or_index)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise DataError(f"boolean mask has shape {idx.shape}, expected ({len(self)},)")
            idx = np.flatnonzero(idx)
        elif idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise DataError(f"subset expects a boolean mask or integer indices, got dtype {idx.dtype}")
        idx = idx.astype(np.int64).reshape(-1)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise DataError(f"subset index out of range for {len(self)} samples")
        t = torch.from_numpy(idx).to(self.device)
        labels = {name: getattr(self, name)[idx] for name in LABEL_FIELDS}
        return replace(self, pose2d=self.pose2d[t], pose3d=self.pose3d[t], meta=dict(self.meta), **labels)

    def split_tail(self, fraction: float, gap: int = 50) -> tuple[PoseSet, PoseSet]:
        """``(head, tail)``: the last ``fraction`` of every sequence's frames (the same frame range for
        every camera) is the tail; the ``gap`` frames before it (1 s at 50 Hz) belong to neither, so no
        near-duplicate neighbour of a tail frame is left in the head."""
        if not 0 < fraction < 1:
            raise DataError(f"tail fraction must be in (0, 1), got {fraction!r}")
        _, seq = np.unique(np.char.add(np.char.add(self.subject, "/"), self.sequence), return_inverse=True)
        last = np.zeros(seq.max() + 1 if len(self) else 0, dtype=np.int64)
        np.maximum.at(last, seq, self.frame)
        cut = np.ceil((1.0 - fraction) * (last[seq] + 1)).astype(np.int64)
        return self.subset(self.frame < cut - gap), self.subset(self.frame >= cut)

    @staticmethod
    def concat(sets: Sequence[PoseSet]) -> PoseSet:
        """Stack pose sets of one skeleton; ``meta`` is kept when equal, else listed under ``parts``."""
        if not sets:
            raise DataError("cannot concatenate an empty list of pose sets")
        first = sets[0]
        for other in sets[1:]:
            if other.skeleton != first.skeleton:
                raise DataError(f"cannot concatenate skeletons {first.skeleton.name} and {other.skeleton.name}")
        same_meta = all(_meta_equal(s.meta, first.meta) for s in sets[1:])
        return PoseSet(
            pose2d=torch.cat([s.pose2d.to(first.device) for s in sets]),
            pose3d=torch.cat([s.pose3d.to(first.device) for s in sets]),
            skeleton=first.skeleton,
            meta=dict(first.meta) if same_meta else {"parts": [dict(s.meta) for s in sets]},
            **{name: np.concatenate([getattr(s, name) for s in sets]) for name in LABEL_FIELDS},
        )

    def __repr__(self) -> str:
        subjects = ",".join(np.unique(self.subject)[:8])
        return f"PoseSet({len(self)} x {self.skeleton.name}, subjects {subjects}, device {self.device})"


def _meta_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    try:
        return bool(a == b)
    except (ValueError, TypeError):  # array-valued entries
        return False

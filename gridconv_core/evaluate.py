"""Evaluation protocols (paper 4.1): P1, P1*, P2 per action on Human3.6M; PCK/AUC cross-dataset.

Each protocol is a metric (``gridconv_core.metrics``) on a given 2D input source. Errors are averaged
per action (frame-weighted within an action) and reported both as the unweighted mean over actions
and as the frame-wise mean. The headline is the action mean on Human3.6M (the paper's number) and the
frame mean over all valid frames on MPI-INF-3DHP (PoseAug's and the MATLAB scripts' convention; the
per-activity figures stand beside it). Metrics can be restricted to the joints a dataset shares with
the model's skeleton; the report names the joints left out.

Source policy on Human3.6M (:func:`h36m_source`, :func:`evaluate_h36m`): a checkpoint is scored on
the 2D source it was trained on (P1 + P2 for detections, P1* + P2 for ground truth); a cross-input
score (a GT-trained model on detections, or the reverse) is computed only on request, labelled ``cross``.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from . import metrics
from .amp import autocast
from .errors import EvalError

__all__ = ["Protocol", "PROTOCOLS", "ProtocolResult", "EvalReport", "evaluate", "predict",
           "check_protocols", "default_protocols", "combine_reports", "h36m_source", "evaluate_h36m", "HEADLINES", "ACTION_DATASETS"]


DETECTED = "detected"
"""Protocol source meaning any detector's 2D output, i.e. any source other than ``"gt"``."""


@dataclass(frozen=True)
class Protocol:
    """A metric on a given 2D input source (``None``: any source)."""

    metric: str
    """A key of :data:`gridconv_core.metrics.METRICS`."""
    source: str | None
    unit: str
    description: str


PROTOCOLS: dict[str, Protocol] = {
    "P1": Protocol("mpjpe", DETECTED, "mm", "MPJPE, detected 2D input (SH, CPN, HRNet, ...)"),
    "P1*": Protocol("mpjpe", "gt", "mm", "MPJPE, ground-truth 2D input"),
    "P2": Protocol("pa_mpjpe", None, "mm", "PA-MPJPE (similarity alignment per frame)"),
    "MPJPE": Protocol("mpjpe", None, "mm", "MPJPE on the given input"),
    "PCK": Protocol("pck", None, "%", "3D PCK at 150 mm"),
    "AUC": Protocol("auc", None, "%", "AUC of PCK over 0..150 mm in 5 mm steps"),
}
HEADLINES = {"mpi_inf_3dhp": "frame"}
"""Headline average per ``meta["dataset"]``; any other dataset: ``"action"`` (the mean over actions)."""


ACTION_DATASETS = ("h36m", "h36m32", "synthetic")
"""Datasets scored with the paper's Human3.6M protocols (the built-in generator mimics Human3.6M)."""


def check_protocols(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as a tuple, or :class:`EvalError` naming the first that is not in :data:`PROTOCOLS`."""
    names = tuple(names)
    for name in names:
        if name not in PROTOCOLS:
            raise EvalError(f"unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)}")
    return names


def default_protocols(source: str, has_actions: bool, dataset: str | None = None) -> tuple[str, ...]:
    """Human3.6M-style data (action labels, ``dataset`` in :data:`ACTION_DATASETS` or unnamed): P1 (or
    P1*) and P2; other datasets (MPI-INF-3DHP, generic files) and unlabelled data: MPJPE, P2, PCK, AUC."""
    if not has_actions or dataset not in (None, *ACTION_DATASETS):
        return ("MPJPE", "P2", "PCK", "AUC")
    return ("P1*" if source == "gt" else "P1", "P2")


@dataclass
class ProtocolResult:
    """One protocol's numbers: per action, action-wise mean and frame-wise mean."""

    protocol: str
    source: str
    unit: str
    frame_mean: float
    action_mean: float | None = None
    per_action: dict[str, float] = field(default_factory=dict)
    frames_per_action: dict[str, int] = field(default_factory=dict)
    headline: str = "action"
    cross: bool = False
    """True when the input source differs from the model's training source."""

    @property
    def value(self) -> float:
        """The headline number: the action-wise mean when actions are known and ``headline == "action"``,
        else the frame-wise mean (all valid frames)."""
        return self.frame_mean if self.action_mean is None or self.headline == "frame" else self.action_mean


@dataclass
class EvalReport:
    """Results of :func:`evaluate`: one :class:`ProtocolResult` per protocol."""

    results: dict[str, ProtocolResult]
    num_frames: int
    joints: list[str]
    excluded_joints: list[str] = field(default_factory=list)
    filled_joints: list[str] = field(default_factory=list)
    """2D input joints the data lacked, placed from their neighbours (``meta["filled_joints"]``)."""

    def __getitem__(self, protocol: str) -> float:
        return self.results[protocol].value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "num_frames": self.num_frames,
            "joints": list(self.joints),
            "excluded_joints": list(self.excluded_joints),
            "filled_joints": list(self.filled_joints),
            "protocols": {
                name: {"source": r.source, "unit": r.unit, "value": r.value, "headline": r.headline,
                       "cross": r.cross, "action_mean": r.action_mean,
                       "frame_mean": r.frame_mean, "per_action": dict(r.per_action),
                       "frames_per_action": dict(r.frames_per_action)}
                for name, r in self.results.items()
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def table(self) -> str:
        """Rows = actions (then the two means), columns = protocols."""
        names = list(self.results)
        actions: list[str] = []
        for r in self.results.values():
            actions += [a for a in r.per_action if a not in actions]
        header = ["", *(f"{n} ({r.unit}, {r.source}{', cross' if r.cross else ''})"
                        for n, r in self.results.items())]
        rows = [[a, *(_fmt(self.results[n].per_action.get(a)) for n in names)] for a in actions]
        if actions:
            rows.append(["action mean", *(_fmt(self.results[n].action_mean) for n in names)])
        rows.append(["frame mean", *(_fmt(self.results[n].frame_mean) for n in names)])
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row))
                 for row in [header, *rows]]
        lines.insert(1, "-" * len(lines[0]))
        excluded = ", ".join(self.excluded_joints) or "none"
        frame = not actions or any(r.headline == "frame" for r in self.results.values())
        headline = "frame mean" if frame else "action mean"
        lines.append(f"{self.num_frames} frames; {len(self.joints)} joints evaluated (excluded: {excluded}); "
                     f"headline: {headline}")
        if self.filled_joints:
            lines.append(f"2D input joints filled from their neighbours: {', '.join(self.filled_joints)}")
        return "\n".join(lines)


def predict(model: nn.Module, pose2d: Tensor | np.ndarray, batch_size: int = 1000, amp: str = "none") -> Tensor:
    """Batched inference ``(N, J, 2) -> (N, J, 3)`` metres in eval mode, without gradients (eq. 9).

    ``amp``: ``"none"``, ``"bf16"`` or ``"auto"`` (:func:`gridconv_core.amp.resolve_amp`)."""
    device = next(model.parameters()).device
    x = torch.as_tensor(pose2d, dtype=torch.float32)
    was_training = model.training
    if was_training:  # an eval model is left as it is: a call per video frame pays no mode switches
        model.eval()
    try:
        with torch.no_grad(), autocast(amp, device):
            out = [model(chunk.to(device, non_blocking=True)).float() for chunk in x.split(batch_size)]
    finally:
        if was_training:
            model.train()
    return out[0] if len(out) == 1 else torch.cat(out)  # an empty batch is one empty chunk


def evaluate(
    model: nn.Module,
    poseset: Any,
    protocols: Sequence[str] | None = None,
    batch_size: int = 1000,
    amp: str = "none",
    joints: Sequence[int | str] | None = None,
    cross: bool = False,
) -> EvalReport:
    """Run ``model`` on a ``PoseSet``'s 2D input and score it under ``protocols`` (paper 4.1).

    The input source is ``poseset.meta["source"]`` ("gt" when absent); P1 needs detected input (any
    source but "gt"), P1* ground truth. ``joints`` (indices or names) restricts every metric; by default
    only ``poseset.meta["valid_joints"]`` are scored. The headline average follows :data:`HEADLINES`;
    ``cross`` labels the results as a cross-input score.
    """
    meta = getattr(poseset, "meta", None) or {}
    source = str(meta.get("source", "gt"))
    actions = _actions(poseset)
    dataset = meta.get("dataset")
    headline = HEADLINES.get(str(dataset), "action")
    protocols = check_protocols(protocols) if protocols else default_protocols(source, actions is not None, dataset)
    for name in protocols:
        need = PROTOCOLS[name].source
        if need is not None and (source == "gt") != (need == "gt"):
            raise EvalError(f"protocol {name} needs {need!r} 2D input but the data has {source!r} input")
    names = list(poseset.skeleton.joint_names)
    keep = _joint_indices(joints, meta.get("valid_joints"), names)
    pred_mm = predict(model, poseset.pose2d, batch_size, amp) * 1000.0
    gt_mm = torch.as_tensor(poseset.pose3d, dtype=torch.float32, device=pred_mm.device) * 1000.0
    results = {}
    for name in protocols:
        proto = PROTOCOLS[name]
        per_frame = _to_numpy(metrics.METRICS[proto.metric](pred_mm, gt_mm, joints=keep, per_frame=True))
        if proto.unit == "%":
            per_frame = per_frame * 100.0
        results[name] = replace(_aggregate(name, proto, source, per_frame, actions), headline=headline, cross=cross)
    excluded = [names[j] for j in range(len(names)) if j not in keep]
    return EvalReport(results, int(pred_mm.shape[0]), [names[j] for j in keep], excluded,
                      list(meta.get("filled_joints", [])))


def h36m_source(train_source: str, cross: str | None = None) -> str:
    """The Human3.6M 2D source to score a checkpoint trained on ``train_source`` (module doc).

    ``cross=None``: its own source. ``cross="auto"``: the other kind (SH detections for a GT-trained
    model, ground truth for a detection-trained one); any other value names the cross source itself.
    """
    if cross is None:
        return train_source
    source = ("sh" if train_source == "gt" else "gt") if cross == "auto" else cross
    if source == train_source:
        raise EvalError(f"the checkpoint was trained on {train_source!r} 2D: its cross score needs another source")
    return source


def evaluate_h36m(model: nn.Module, train_source: str, root: Any, subjects: Sequence[str], every: int = 1,
                  protocols: Sequence[str] | None = None, cross: str | None = None, batch_size: int = 1000,
                  amp: str = "none") -> EvalReport:
    """Score ``model`` on the Human3.6M test ``subjects`` under the source policy of the module doc.

    Default protocols: P1 + P2 on detections, P1* + P2 on ground truth. A protocol that needs the other
    kind of input (P1 for a GT-trained model, P1* for a detection-trained one) is a cross score and is
    refused unless ``cross`` asks for one (:func:`h36m_source`).
    """
    from .data import load_h36m

    source = h36m_source(train_source, cross)
    for name in check_protocols(protocols or ()):  # before the data are read
        need = PROTOCOLS[name].source
        if cross is None and need is not None and (need == "gt") != (source == "gt"):
            raise EvalError(f"{name} scores {need} 2D input but the checkpoint was trained on {train_source!r}: "
                            f"that is a cross score; ask for it explicitly (--cross)")
    poseset = load_h36m(root, subjects, source=source, every=every)
    return evaluate(model, poseset, protocols, batch_size, amp, cross=cross is not None)


def combine_reports(reports: Iterable[EvalReport]) -> EvalReport:
    """Merge reports of the same model on different input sources (e.g. P1 on SH and P1* on GT)."""
    reports = list(reports)
    if not reports:
        raise EvalError("no reports to combine")
    results: dict[str, ProtocolResult] = {}
    for rep in reports:
        results.update(rep.results)
    return EvalReport(results, max(r.num_frames for r in reports), reports[0].joints, reports[0].excluded_joints,
                      reports[0].filled_joints)


def _aggregate(name: str, proto: Protocol, source: str, per_frame: np.ndarray, actions: np.ndarray | None
               ) -> ProtocolResult:
    if per_frame.size == 0:
        raise EvalError("no frames to evaluate")
    frame_mean = float(per_frame.mean())
    if actions is None:
        return ProtocolResult(name, source, proto.unit, frame_mean)
    labels, inverse, counts = np.unique(actions, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=per_frame, minlength=len(labels))
    per_action = {str(a): float(s / c) for a, s, c in zip(labels, sums, counts)}
    order = _action_order(list(per_action))
    return ProtocolResult(
        name, source, proto.unit, frame_mean, float(np.mean(list(per_action.values()))),
        {a: per_action[a] for a in order}, {a: int(counts[list(labels).index(a)]) for a in order},
    )


def _actions(poseset: Any) -> np.ndarray | None:
    """Action label per frame (text before the first space), or None when the data has none."""
    action = getattr(poseset, "action", None)
    if action is None:
        return None
    arr = np.asarray(action).astype(str)
    if arr.size == 0 or np.all(arr == ""):
        return None
    return np.char.partition(arr, " ")[:, 0]  # PoseSet actions are already groups; sequence names become them


def _action_order(actions: list[str]) -> list[str]:
    """The standard 15-action order where it applies, then the rest alphabetically."""
    from .data import ACTIONS

    rank = {a: i for i, a in enumerate(ACTIONS)}
    return sorted(actions, key=lambda a: (rank.get(a, len(rank)), a))


def _joint_indices(joints: Sequence[int | str] | None, valid: Iterable[int | str] | None, names: list[str]
                   ) -> list[int]:
    def index(j: int | str) -> int:
        if isinstance(j, str):
            if j not in names:
                raise EvalError(f"unknown joint {j!r}; the skeleton has {', '.join(names)}")
            return names.index(j)
        if not 0 <= int(j) < len(names):
            raise EvalError(f"joint index {j} out of range 0..{len(names) - 1}")
        return int(j)

    chosen = {index(j) for j in joints} if joints is not None else set(range(len(names)))
    present = {index(j) for j in valid} if valid is not None else set(range(len(names)))
    keep = sorted(chosen & present)
    if not keep:
        raise EvalError("no joints left to evaluate")
    return keep


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.detach().double().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"

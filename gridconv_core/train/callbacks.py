"""Training callbacks: hooks for notebooks and widgets (the AutoGrids widget feeds on ``on_epoch_end``)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import nn

__all__ = ["Callback", "CallbackList", "History"]


class Callback:
    """Base class; override any hook. ``metrics`` are plain JSON-able dicts, ``model`` the bare model.

    ``wants_batch_values``: set True to receive the batch ``loss`` in :meth:`on_batch_end`; reading it
    waits for the device every step, so the trainer only does so when some callback asks.
    """

    wants_batch_values: bool = False

    def on_epoch_start(self, epoch: int, model: nn.Module) -> None:
        """Called before epoch ``epoch`` (0-based) trains."""

    def on_batch_end(self, metrics: dict[str, Any], model: nn.Module) -> None:
        """Called after each optimiser step with ``epoch``, ``step`` and (if ``wants_batch_values``) ``loss``."""

    def on_epoch_end(self, metrics: dict[str, Any], model: nn.Module) -> None:
        """Called after validation with the epoch's metric record (also written to metrics.jsonl)."""


class CallbackList(Callback):
    """Dispatches each hook to several callbacks in order."""

    def __init__(self, callbacks: Iterable[Callback]) -> None:
        self.callbacks = list(callbacks)
        self.wants_batch_values = any(cb.wants_batch_values for cb in self.callbacks)

    def on_epoch_start(self, epoch: int, model: nn.Module) -> None:
        for cb in self.callbacks:
            cb.on_epoch_start(epoch, model)

    def on_batch_end(self, metrics: dict[str, Any], model: nn.Module) -> None:
        for cb in self.callbacks:
            cb.on_batch_end(metrics, model)

    def on_epoch_end(self, metrics: dict[str, Any], model: nn.Module) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(metrics, model)


class History(Callback):
    """Keeps every epoch record and batch loss in memory (for plots in a notebook)."""

    wants_batch_values = True

    def __init__(self) -> None:
        self.epochs: list[dict[str, Any]] = []
        self.losses: list[float] = []

    def on_batch_end(self, metrics: dict[str, Any], model: nn.Module) -> None:
        self.losses.append(float(metrics["loss"]))

    def on_epoch_end(self, metrics: dict[str, Any], model: nn.Module) -> None:
        self.epochs.append(dict(metrics))

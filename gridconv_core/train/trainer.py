"""The training loop (eq. 10 loss, A.3 schedules), with validation-based model selection.

Data live as tensors on the device and are batched by index. Every epoch: train, validate (MPJPE on
a split of the training subjects), keep the best state, checkpoint atomically. At the end the
selected model is evaluated on the test set. Under ``torchrun`` the model is wrapped in DDP and
each rank trains on its shard of the indices; only rank 0 writes.
"""
from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm.auto import tqdm

from .. import metrics
from ..evaluate import EvalReport, evaluate, predict
from ..io import atomic_write_text
from ..model import build_model
from .callbacks import Callback, CallbackList
from .checkpoint import (CheckpointError, check_model_config, load_checkpoint, rng_state, save_checkpoint,
                         set_rng_state)
from .config import ConfigError, TrainConfig
from .distributed import DistInfo, all_reduce_mean, cleanup_distributed, setup_distributed, shard_indices

__all__ = ["TrainResult", "train", "load_splits", "resolve_device", "lr_factor", "model_from_checkpoint"]

LAST = "last.pt"
TIMING_KEYS = ("time_s", "samples_per_s", "elapsed_s")


@dataclass
class TrainResult:
    """What :func:`train` returns; ``model`` holds the validation-selected weights."""

    config: TrainConfig
    run_dir: Path
    model: nn.Module
    history: list[dict[str, Any]]
    best_epoch: int
    best_val_mpjpe: float
    test: EvalReport | None
    s_prob_history: list[np.ndarray] = field(default_factory=list)
    mean_pose_mpjpe: float = math.nan
    """Reference: MPJPE (mm) on the test set of always predicting the mean training pose."""


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' requested but CUDA is not available")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def lr_factor(epoch: int, step: int, gamma: float, offset: int) -> float:
    """LR multiplier after ``epoch`` finished epochs for a step schedule (A.3)."""
    return gamma ** ((epoch + offset) // step)


def synthetic_split(config: TrainConfig, split: str) -> Any:
    """One split ("train", "val", "test") of the built-in generator's data, seeded by ``config.seed``."""
    from ..data.generator import generate_poses

    k = ("train", "val", "test").index(split)
    size = (config.synthetic_train, config.synthetic_val, config.synthetic_test)[k]
    return generate_poses(size, seed=config.seed * 3 + k)


def load_splits(config: TrainConfig) -> tuple[Any, Any, Any]:
    """``(train, validation, test)`` PoseSets; validation comes from the training subjects only."""
    from .. import data

    if config.dataset == "synthetic":
        return synthetic_split(config, "train"), synthetic_split(config, "val"), synthetic_split(config, "test")
    if not config.val_subjects:
        raise ConfigError("h36m training needs val_subjects (held-out training subjects for model selection)")
    root = config.data_root or data.h36m_root()

    def load(subjects: list[str], step: int) -> Any:
        return data.load_h36m(root, subjects, source=config.source, every=step)

    return (load(config.train_subjects, config.frame_step), load(config.val_subjects, config.frame_step),
            load(config.test_subjects, config.test_frame_step))


def model_from_checkpoint(path: str | Path, device: torch.device | str = "cpu",
                          which: str = "best_state") -> tuple[nn.Module, TrainConfig]:
    """Rebuild the model of a training checkpoint with its best (or ``"model"``: last) weights."""
    state = load_checkpoint(path)
    try:
        config = TrainConfig.from_dict(state["config"])
    except ConfigError as err:
        raise CheckpointError(f"checkpoint {path} has an invalid config: {err}") from None
    model = build_model(config.model)
    _load_state(model, state[which], path)
    return model.to(device).eval(), config


def train(config: TrainConfig, callbacks: Iterable[Callback] = (), resume: bool = False) -> TrainResult:
    """Train ``config.model`` as configured; with ``resume`` continue from ``run_dir/last.pt``."""
    device = resolve_device(config.device)
    info = setup_distributed(device.type)
    try:
        if info.enabled and device.type == "cuda":
            device = torch.device("cuda", info.local_rank)
            torch.cuda.set_device(device)
        if not config.name:
            config = replace(config, name=_broadcast_name(_auto_name(config), info))
        return _Run(config, info, device, CallbackList(callbacks)).fit(resume)
    finally:
        cleanup_distributed(info)


class _Run:
    """State of one training run (kept private: :func:`train` is the API)."""

    def __init__(self, config: TrainConfig, info: DistInfo, device: torch.device, callbacks: CallbackList) -> None:
        self.config, self.info, self.device, self.callbacks = config, info, device, callbacks
        self.run_dir = config.run_dir
        _seed_everything(config.seed)
        train_set, self.val_set, self.test_set = load_splits(config)
        self.x_train = train_set.pose2d.to(device)
        self.y_train = train_set.pose3d.to(device)
        self.mean_pose = train_set.pose3d.mean(dim=0)
        self.model = build_model(config.model).to(device)
        self.net: nn.Module = self.model
        if info.enabled:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        step, gamma, offset = config.schedule()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, partial(lr_factor, step=step, gamma=gamma, offset=offset))
        self.autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if config.amp == "bf16"
                         else nullcontext())
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best_state = _cpu_state(self.model)
        self.best_epoch, self.best_val = 0, math.inf
        self.s_prob_history: list[np.ndarray] = []
        self.elapsed = 0.0

    # ------------------------------------------------------------------ main loop
    def fit(self, resume: bool) -> TrainResult:
        cfg = self.config
        if resume:
            self._restore(self.run_dir / LAST)
        elif (self.run_dir / LAST).exists():  # every rank checks, so none is left waiting in a collective
            raise ConfigError(f"{self.run_dir} already holds a run; resume it or choose another name")
        if self.info.is_main:
            cfg.to_json(self.run_dir / "config.json")
        start = time.perf_counter() - self.elapsed
        bar = tqdm(total=cfg.epochs, initial=self.epoch, desc="epochs", disable=not self._show_progress())
        stop = False
        while self.epoch < cfg.epochs and not stop:
            stop = self._train_epoch(start)
            record = self._validate()
            self.elapsed = time.perf_counter() - start
            record["elapsed_s"] = round(self.elapsed, 3)
            self.history.append(record)
            self.epoch += 1
            self.scheduler.step()
            if self.info.is_main:
                self._save()
                atomic_write_text(self.run_dir / "metrics.jsonl",
                                  "".join(_json_line(r) for r in self.history))
            self.callbacks.on_epoch_end(record, self.model)
            bar.update(1)
            bar.set_postfix(val_mpjpe=f"{record['val_mpjpe']:.1f}", best=self.best_epoch)
        bar.close()
        self.model.load_state_dict(self.best_state)
        report = evaluate(self.model, self.test_set, batch_size=cfg.eval_batch_size, amp=cfg.amp)
        if self.info.is_main:
            atomic_write_text(self.run_dir / "report.json", report.to_json() + "\n")
            atomic_write_text(self.run_dir / "report.txt", report.table() + "\n")
        reference = float(metrics.mpjpe(self.mean_pose.expand_as(self.test_set.pose3d), self.test_set.pose3d)) * 1000
        return TrainResult(cfg, self.run_dir, self.model, self.history, self.best_epoch, self.best_val, report,
                           self.s_prob_history, reference)

    def _train_epoch(self, start: float) -> bool:
        """One pass over this rank's shard; True when the time budget ran out."""
        cfg, model = self.config, self.model
        model.train()
        if _autogrids(model) is not None:
            _autogrids(model).noise = self.epoch < cfg.noise_off_epoch  # A.3: Gumbel noise until epoch 30
        self.callbacks.on_epoch_start(self.epoch, model)
        idx = shard_indices(len(self.x_train), self.epoch, cfg.seed, self.info, self.device)
        batches = idx.split(max(1, cfg.batch_size // self.info.world_size))
        if cfg.max_steps_per_epoch:
            batches = batches[:cfg.max_steps_per_epoch]
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        out_of_time = False
        steps = 0
        for b in tqdm(batches, desc=f"epoch {self.epoch + 1}", leave=False, disable=not self._show_progress()):
            with self.autocast:
                pred = self.net(self.x_train[b])
            loss = nn.functional.mse_loss(pred.float(), self.y_train[b])  # eq. 10 (per coordinate, metres)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.detach()
            steps += 1
            if self.callbacks.callbacks:
                self.callbacks.on_batch_end({"epoch": self.epoch, "step": steps, "loss": float(loss.detach())}, model)
            if cfg.time_budget_s and self._budget_spent(start):
                out_of_time = True
                break
        if self.info.enabled:
            for buf in model.buffers():  # BN running stats: rank 0's, so every rank holds identical state
                dist.broadcast(buf, 0)
        seconds = time.perf_counter() - t0
        samples = steps * max(1, cfg.batch_size // self.info.world_size) * self.info.world_size
        self._epoch_stats = {
            "train_loss": all_reduce_mean(float(loss_sum) / max(steps, 1), self.info, self.device),
            "steps": steps, "time_s": round(seconds, 3), "samples_per_s": round(samples / max(seconds, 1e-9), 1),
            "lr": self.optimizer.param_groups[0]["lr"],
        }
        return out_of_time

    def _validate(self) -> dict[str, Any]:
        """MPJPE (mm) on the validation split; keeps the best state (never looks at the test set)."""
        cfg = self.config
        pred = predict(self.model, self.val_set.pose2d, cfg.eval_batch_size, cfg.amp)
        val = float(metrics.mpjpe(pred * 1000.0, self.val_set.pose3d.to(pred.device) * 1000.0))  # mm
        if val < self.best_val:
            self.best_val, self.best_epoch, self.best_state = val, self.epoch + 1, _cpu_state(self.model)
        record: dict[str, Any] = {"epoch": self.epoch + 1, **self._epoch_stats, "val_mpjpe": val,
                                  "best_epoch": self.best_epoch, "best_val_mpjpe": self.best_val,
                                  "world_size": self.info.world_size}
        ag = _autogrids(self.model)
        if ag is not None:
            self.s_prob_history.append(ag.snapshot())
            record["noise"] = bool(ag.noise)
        return record

    def _budget_spent(self, start: float) -> bool:
        spent = float(time.perf_counter() - start > self.config.time_budget_s)
        return all_reduce_mean(spent, self.info, self.device) > 0  # every rank stops at the same step

    def _show_progress(self) -> bool:
        return self.config.progress and self.info.is_main

    # ------------------------------------------------------------------ checkpoints
    def _save(self) -> None:
        model = self.model
        save_checkpoint(self.run_dir / LAST, {
            "config": self.config.to_dict(),
            "layout": model.grid_layout().to_json() if hasattr(model, "grid_layout") else None,
            "attention_temperature": float(self.config.model.attention_temperature),
            "model": _cpu_state(model),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(),
            "epoch": self.epoch,
            "history": self.history,
            "best_state": self.best_state,
            "best_epoch": self.best_epoch,
            "best_val": self.best_val,
            "s_prob_history": [torch.from_numpy(np.asarray(s)) for s in self.s_prob_history],
            "elapsed_s": self.elapsed,
        })

    def _restore(self, path: Path) -> None:
        state = load_checkpoint(path, map_location="cpu")  # load_state_dict moves tensors to the model's device
        check_model_config(state, self.config.model.to_dict(), path)
        _load_state(self.model, state["model"], path)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            set_rng_state(state["rng"])
        except (KeyError, ValueError, RuntimeError, TypeError) as err:
            raise CheckpointError(f"checkpoint {path} has an unusable optimiser/scheduler/RNG state: {err}") from None
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.best_state = {k: v.cpu() for k, v in state["best_state"].items()}
        self.best_epoch, self.best_val = int(state["best_epoch"]), float(state["best_val"])
        self.s_prob_history = [t.numpy() for t in state["s_prob_history"]]
        self.elapsed = float(state["elapsed_s"])


def _load_state(model: nn.Module, state: dict[str, Tensor], path: str | Path) -> None:
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"checkpoint {path} does not fit the model: {first[:160]}") from None


def _autogrids(model: nn.Module) -> Any:
    """The model's AutoGrids module, or None (fixed SGT, baselines)."""
    return getattr(model, "autogrids", None)


def _cpu_state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _auto_name(config: TrainConfig) -> str:
    return f"{config.model.sgt}-{time.strftime('%Y%m%d-%H%M%S')}"


def _broadcast_name(name: str, info: DistInfo) -> str:
    if not info.enabled:
        return name
    box = [name]
    dist.broadcast_object_list(box, src=0)
    return str(box[0])


def _json_line(record: dict[str, Any]) -> str:
    return json.dumps(record) + "\n"

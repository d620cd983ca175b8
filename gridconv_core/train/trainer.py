"""The training loop (eq. 10 loss, A.3 schedules), with validation-based model selection.

Data live as tensors on the device and are batched by index. Every epoch: train, validate (MPJPE on
data held out of the training subjects: whole subjects or each sequence's tail), keep the selected
state (best validation epoch, or the last one), checkpoint atomically. The test subjects are read
only after the last epoch, and the selected model is evaluated on them once. Under ``torchrun``
the model is wrapped in DDP and each rank trains on its shard of the indices; only rank 0 writes.
The learning rate follows the configured schedule per optimiser step: the A.3 / official step
schedules change it at epoch boundaries, the smooth ones (warmup, then cosine or linear decay to
zero over the whole run) every step.
"""
from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterable
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
from ..data.poseset import PoseSet
from ..amp import autocast
from ..heap import keep_freed_memory
from ..evaluate import EvalReport, evaluate, predict
from ..io import atomic_write_text
from ..lifting import LiftingModel
from ..model import build_model
from .callbacks import Callback, CallbackList
from ..errors import CheckpointError, ConfigError
from .checkpoint import (check_model_config, load_checkpoint, rng_state, save_checkpoint,
                         set_rng_state)
from .config import LR_SCHEDULES, SMOOTH_SCHEDULES, TrainConfig
from .distributed import DistInfo, all_reduce_mean, cleanup_distributed, setup_distributed, shard_indices

__all__ = ["TrainResult", "train", "load_splits", "load_train_val", "load_test", "resolve_device", "lr_factor",
           "smooth_factor", "lr_lambda", "model_from_checkpoint"]

LAST = "last.pt"


@dataclass
class TrainResult:
    """What :func:`train` returns; ``model`` holds the validation-selected weights."""

    config: TrainConfig
    run_dir: Path
    model: LiftingModel
    history: list[dict[str, Any]]
    best_epoch: int
    best_val_mpjpe: float
    test: EvalReport | None
    s_prob_history: list[np.ndarray] = field(default_factory=list)
    mean_pose_mpjpe: float = math.nan
    """Reference: MPJPE (mm) on the test set of always predicting the mean training pose."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' requested but CUDA is not available")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", 0)


def lr_factor(epoch: int, step: int, gamma: float, offset: int) -> float:
    """LR multiplier after ``epoch`` finished epochs for a step schedule (A.3)."""
    return gamma ** ((epoch + offset) // step)


def smooth_factor(t: int, total: int, warmup: int, shape: str = "cosine") -> float:
    """LR multiplier at optimiser step ``t`` of ``total``: linear warmup over ``warmup`` steps, then
    cosine (or linear) decay to zero at ``total``."""
    if t < warmup:
        return (t + 1) / warmup
    progress = min(1.0, (t - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress)) if shape == "cosine" else 1.0 - progress


def _step_schedule_factor(t: int, steps_per_epoch: int, step: int, gamma: float, offset: int) -> float:
    return lr_factor(t // steps_per_epoch, step, gamma, offset)


def lr_lambda(config: TrainConfig, steps_per_epoch: int) -> partial[float]:
    """The LR multiplier as a function of the optimiser step, for ``LambdaLR`` stepped once per step."""
    name = config.schedule_name()
    if name in SMOOTH_SCHEDULES:
        total = config.epochs * steps_per_epoch
        return partial(smooth_factor, total=total, warmup=round(config.warmup_frac * total), shape=name)
    step, gamma, offset = LR_SCHEDULES[name]
    return partial(_step_schedule_factor, steps_per_epoch=max(1, steps_per_epoch), step=step, gamma=gamma,
                   offset=offset)


def synthetic_split(config: TrainConfig, split: str) -> Any:
    """One split ("train", "val", "test") of the built-in generator's data, seeded by ``config.seed``."""
    from ..data.generator import generate_poses

    k = ("train", "val", "test").index(split)
    size = (config.synthetic_train, config.synthetic_val, config.synthetic_test)[k]
    return generate_poses(size, seed=config.seed * 3 + k)


def _load_h36m(config: TrainConfig, subjects: list[str], step: int) -> Any:
    from .. import data

    return data.load_h36m(config.data_root or data.h36m_root(), subjects, source=config.source, every=step)


def load_train_val(config: TrainConfig) -> tuple[Any, Any | None]:
    """``(train, validation)`` PoseSets, both from the training subjects only; validation is ``None``
    when the config holds none out (``selection="last"``).

    Validation is the ``val_subjects`` (whole held-out subjects) plus, with ``val_tail > 0``, the
    contiguous last ``val_tail`` of every training sequence (all cameras alike, with a one-second gap
    dropped from training): neighbouring 50 Hz frames are near-duplicates, so random frames would leak.
    """
    if config.dataset == "synthetic":
        return synthetic_split(config, "train"), synthetic_split(config, "val")
    val_step = config.val_frame_step or config.frame_step
    train_set = _load_h36m(config, config.train_subjects, config.frame_step)
    parts = []
    if config.val_tail > 0:
        train_set, tail = train_set.split_tail(config.val_tail)
        parts.append(tail.subset(tail.frame % val_step == 0) if val_step > config.frame_step else tail)
    if config.val_subjects:
        parts.append(_load_h36m(config, config.val_subjects, val_step))
    return train_set, PoseSet.concat(parts) if parts else None


def load_test(config: TrainConfig) -> Any | None:
    """The test PoseSet (S9/S11 by default): read once, after training; ``None`` without test subjects."""
    if config.dataset == "synthetic":
        return synthetic_split(config, "test")
    return _load_h36m(config, config.test_subjects, config.test_frame_step) if config.test_subjects else None


def load_splits(config: TrainConfig) -> tuple[Any, Any | None, Any]:
    """``(train, validation, test)`` PoseSets (see :func:`load_train_val` and :func:`load_test`)."""
    return (*load_train_val(config), load_test(config))


def model_from_checkpoint(path: str | Path, device: torch.device | str = "cpu",
                          which: str = "best_state") -> tuple[LiftingModel, TrainConfig]:
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
    if device.type == "cpu" and config.keep_freed_memory:
        keep_freed_memory()
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
        train_set, self.val_set = load_train_val(config)
        self.x_train = train_set.pose2d.to(device)
        self.y_train = train_set.pose3d.to(device)
        self.mean_pose = train_set.pose3d.mean(dim=0)
        self.model = build_model(config.model).to(device)
        self.net: nn.Module = self.model
        if info.enabled:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        if config.compile:
            self.net = torch.compile(self.net)  # the training forward; evaluation runs the plain model
        self.optimizer = _optimizer(self.model, config)
        self.steps_per_epoch = _steps_per_epoch(len(self.x_train), config, info.world_size)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(config, self.steps_per_epoch))
        self.autocast = autocast(config.amp, device)
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
            if self.info.is_main:
                self._save()
                atomic_write_text(self.run_dir / "metrics.jsonl",
                                  "".join(_json_line(r) for r in self.history))
            self.callbacks.on_epoch_end(record, self.model)
            bar.update(1)
            if record["val_mpjpe"] is not None:
                bar.set_postfix(val_mpjpe=f"{record['val_mpjpe']:.1f}", best=self.best_epoch)
        bar.close()
        self.model.load_state_dict(self.best_state)
        self.test_set = load_test(cfg)  # the first and only read of the test subjects
        if self.test_set is None:  # a recipe search: no test subjects at all
            return TrainResult(cfg, self.run_dir, self.model, self.history, self.best_epoch, self.best_val, None,
                               self.s_prob_history)
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
        if model.autogrids is not None:
            model.autogrids.noise = self.epoch < cfg.noise_off_epoch  # A.3: Gumbel noise until epoch 30
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
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip, foreach=True)
            self.optimizer.step()
            lr = self.optimizer.param_groups[0]["lr"]  # the LR this step used
            self.scheduler.step()
            loss_sum += loss.detach()
            steps += 1
            if self.callbacks.callbacks:  # the batch loss only on request: float() waits for the device
                values = {"loss": float(loss.detach())} if self.callbacks.wants_batch_values else {}
                self.callbacks.on_batch_end({"epoch": self.epoch, "step": steps, **values}, model)
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
            "lr": lr if steps else self.optimizer.param_groups[0]["lr"],
        }
        return out_of_time

    def _validate(self) -> dict[str, Any]:
        """MPJPE (mm) on the validation split, if any; keeps the selected state (never looks at the test set)."""
        cfg = self.config
        val: float | None = None
        if self.val_set is not None:
            pred = predict(self.model, self.val_set.pose2d, cfg.eval_batch_size, cfg.amp)
            val = float(metrics.mpjpe(pred * 1000.0, self.val_set.pose3d.to(pred.device) * 1000.0))  # mm
        if cfg.selection == "last" or (val is not None and val < self.best_val):
            self.best_epoch, self.best_state = self.epoch + 1, _cpu_state(self.model)
            self.best_val = math.nan if val is None else val
        best_val = None if math.isnan(self.best_val) else self.best_val  # JSON has no NaN
        record: dict[str, Any] = {"epoch": self.epoch + 1, **self._epoch_stats, "val_mpjpe": val,
                                  "best_epoch": self.best_epoch, "best_val_mpjpe": best_val,
                                  "world_size": self.info.world_size}
        ag = self.model.autogrids
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
        model, layout = self.model, self.model.grid_layout()
        save_checkpoint(self.run_dir / LAST, {
            "config": self.config.to_dict(),
            "layout": None if layout is None else layout.to_json(),
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


def _optimizer(model: LiftingModel, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam (paper A.3) or AdamW; weight decay, if any, only on weight matrices and kernels (not on
    biases, BatchNorm or the AutoGrids scores)."""
    scores = set() if model.autogrids is None else set(model.autogrids.parameters())
    decay, keep = [], []
    for param in model.parameters():
        (decay if param.ndim >= 2 and param not in scores else keep).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": keep, "weight_decay": 0.0}]
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    # fused: one kernel for all parameters, on CPU too (5.3 against 13.7 ms per step for the default GLN, 2-core EPYC)
    return cls([g for g in groups if g["params"]], lr=config.lr, fused=True)


def _steps_per_epoch(num_train: int, config: TrainConfig, world_size: int) -> int:
    """Optimiser steps in one epoch (what :meth:`_Run._train_epoch` runs unless time runs out)."""
    per_rank = -(-num_train // world_size)
    steps = -(-per_rank // max(1, config.batch_size // world_size))
    return min(steps, config.max_steps_per_epoch) if config.max_steps_per_epoch else steps


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

"""Training configuration (paper 4.2 and A.3): data, optimisation, schedules, run folder.

A :class:`TrainConfig` holds the model's :class:`~gridconv_core.model_config.GLNConfig` (field ``model``)
and everything else a run needs. It round-trips through JSON and accepts dotted overrides such as
``model.sgt=autogrids`` or ``epochs=3`` (see :meth:`TrainConfig.with_overrides`).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..amp import AMP_MODES  # "auto": bf16 where the hardware has it (gridconv_core.amp)
from ..data.h36m import detection_path
from ..errors import ConfigError, DataError
from ..model_config import GLNConfig, JsonConfig

__all__ = ["TrainConfig", "LR_SCHEDULES", "RECIPE_FIELDS", "parse_override", "default_config_path",
           "recipe_overrides"]

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"

#: Step schedules as (step size in epochs, gamma, epoch offset): the LR after ``e`` finished epochs is
#: ``lr * gamma ** ((e + offset) // step)``.
LR_SCHEDULES: dict[str, tuple[int, float, int]] = {
    "handcrafted": (1, 0.96, 0),  # A.3: x0.96 per epoch
    "autogrids": (10, 0.1, 0),  # A.3: x0.1 every 10 epochs
    "official": (10, 0.96, 9),  # authors' code (lr_decay=10): x0.96 after epochs 1, 11, 21, ...
    "constant": (1, 1.0, 0),
}
#: Per-step schedules over the whole run: linear warmup for ``warmup_frac`` of the steps, then decay to zero.
SMOOTH_SCHEDULES = ("cosine", "linear")
OPTIMIZERS = ("adam", "adamw")
SELECTIONS = ("best_val", "last")
DATASETS = ("synthetic", "h36m")
DEVICES = ("auto", "cpu", "cuda")
LOSSES = ("mse",)


@dataclass
class TrainConfig(JsonConfig):
    """Everything a training run needs. Defaults are the paper's optimisation (A.3)."""

    WHAT: ClassVar[str] = "config"

    model: GLNConfig = field(default_factory=GLNConfig)
    name: str = ""  # run folder name under out_dir; empty -> "<sgt>-<timestamp>"
    out_dir: str = "runs"
    # data
    dataset: str = "synthetic"  # "synthetic" (built-in generator) | "h36m"
    data_root: str = ""  # empty -> gridconv_core.data.h36m_root()
    source: str = "gt"  # 2D training input: "gt" | "sh" (shared SH detections) | "detections:PATH" (CPN, HRNet...)
    train_subjects: list[str] = field(default_factory=lambda: ["S1", "S5", "S6", "S7"])
    val_subjects: list[str] = field(default_factory=lambda: ["S8"])  # held-out TRAINING subject(s)
    val_tail: float = 0.0  # hold out this fraction of every training sequence's frames (its contiguous end)
    test_subjects: list[str] = field(default_factory=lambda: ["S9", "S11"])  # [] = no test (recipe searches)
    selection: str = "best_val"  # "best_val": the epoch of least validation MPJPE; "last": the final weights
    frame_step: int = 1  # keep every n-th training frame
    val_frame_step: int = 0  # keep every n-th validation frame; 0 = frame_step
    test_frame_step: int = 1
    synthetic_train: int = 20000
    synthetic_val: int = 2000
    synthetic_test: int = 4000
    # optimisation (Adam, eq. 10 loss)
    optimizer: str = "adam"  # "adam" (paper) | "adamw" (decoupled weight decay)
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # clip the global gradient norm to this; 0 = off
    batch_size: int = 200
    eval_batch_size: int = 1000
    epochs: int = 100
    lr_schedule: str = "auto"  # "auto" (by model.sgt) | a key of LR_SCHEDULES | "cosine" | "linear"
    warmup_frac: float = 0.0  # smooth schedules: linear warmup over this fraction of all steps
    noise_off_epoch: int = 30  # AutoGrids Gumbel noise on for epochs [0, noise_off_epoch)
    loss: str = "mse"
    seed: int = 0
    device: str = "auto"
    amp: str = "none"
    compile: bool = False  # wrap the training forward in torch.compile (pays off on GPU: fewer launches)
    keep_freed_memory: bool = True  # CPU: glibc keeps freed buffers for reuse, no page faults per step (heap module)
    max_steps_per_epoch: int = 0  # 0 = the whole training set
    time_budget_s: float = 0.0  # 0 = no limit; else training stops once this many seconds have passed
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = _model_from_dict(self.model)
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid value."""
        choices = {
            "dataset": DATASETS, "device": DEVICES, "amp": AMP_MODES, "loss": LOSSES,
            "lr_schedule": ("auto", *LR_SCHEDULES, *SMOOTH_SCHEDULES), "optimizer": OPTIMIZERS,
            "selection": SELECTIONS,
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}={getattr(self, key)!r} is not one of {', '.join(allowed)}")
        try:
            detection_path(self.source)
        except DataError as err:
            raise ConfigError(str(err)) from None
        positive = ("batch_size", "eval_batch_size", "epochs", "frame_step", "test_frame_step",
                    "synthetic_train", "synthetic_val", "synthetic_test")
        for key in positive:
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{key} must be a positive integer, got {value!r}")
        for key in ("max_steps_per_epoch", "noise_off_epoch", "seed", "val_frame_step"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{key} must be a non-negative integer, got {value!r}")
        if not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise ConfigError(f"lr must be a positive number, got {self.lr!r}")
        for key in ("time_budget_s", "weight_decay", "grad_clip"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise ConfigError(f"{key} must be a number >= 0, got {value!r}")
        for key, top in (("warmup_frac", 1.0), ("val_tail", 0.5)):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < top:
                raise ConfigError(f"{key} must be in [0, {top}), got {value!r}")
        for key in ("compile", "keep_freed_memory"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key} must be true or false, got {getattr(self, key)!r}")
        for key in ("train_subjects", "val_subjects", "test_subjects"):
            value = getattr(self, key)
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise ConfigError(f"{key} must be a list of subject names, got {value!r}")
        if not self.train_subjects:
            raise ConfigError("train_subjects must not be empty")
        if set(self.val_subjects) & set(self.test_subjects) or set(self.train_subjects) & set(self.test_subjects):
            raise ConfigError("validation and training subjects must not include test subjects")
        if set(self.val_subjects) & set(self.train_subjects):
            raise ConfigError("validation subjects must be held out from the training subjects")
        if self.selection == "best_val" and self.dataset != "synthetic" and not self.has_validation:
            raise ConfigError("selection='best_val' needs validation data: set val_subjects or val_tail, "
                              "or use selection='last'")
        if not isinstance(self.name, str) or "/" in self.name or self.name in (".", ".."):
            raise ConfigError(f"name must be a plain folder name, got {self.name!r}")

    # ------------------------------------------------------------------ derived
    @property
    def has_validation(self) -> bool:
        """Whether the run holds out validation data (always for the built-in generator)."""
        return self.dataset == "synthetic" or bool(self.val_subjects) or self.val_tail > 0

    def schedule_name(self) -> str:
        """The LR schedule's key; ``auto`` follows A.3 for the model's SGT."""
        if self.lr_schedule == "auto":
            return "autogrids" if self.model.sgt == "autogrids" else "handcrafted"
        return self.lr_schedule

    def schedule(self) -> tuple[int, float, int]:
        """(step, gamma, offset) of a step schedule (A.3 / the authors' code)."""
        name = self.schedule_name()
        if name not in LR_SCHEDULES:
            raise ConfigError(f"lr_schedule {name!r} is a per-step schedule, not a step schedule")
        return LR_SCHEDULES[name]

    @property
    def run_dir(self) -> Path:
        """``out_dir/name`` (``name`` must be set; :func:`train` fills it in)."""
        if not self.name:
            raise ConfigError("the run has no name yet")
        return Path(self.out_dir) / self.name

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, the model config nested under ``model``."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["model"] = self.model.to_dict()
        return json.loads(json.dumps(data))  # deep copy as plain JSON types

    def with_overrides(self, overrides: list[str] | dict[str, Any]) -> TrainConfig:
        """A copy with dotted ``key=value`` overrides applied (values parsed as JSON when they can be)."""
        data = self.to_dict()
        items = overrides.items() if isinstance(overrides, dict) else (parse_override(o) for o in overrides)
        for key, value in items:
            node = data
            parts = key.split(".")
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    raise ConfigError(f"unknown config key: {key}")
                node = node[part]
            if parts[-1] not in node:
                raise ConfigError(f"unknown config key: {key}")
            node[parts[-1]] = value
        return TrainConfig.from_dict(data)


def parse_override(text: str) -> tuple[str, Any]:
    """``"model.sgt=autogrids"`` -> ``("model.sgt", "autogrids")``; JSON values (numbers, lists) are decoded."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not of the form key=value")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def default_config_path(name: str = "default") -> Path:
    """Path of a packaged config (``gridconv_core/configs/<name>.json``)."""
    return CONFIG_DIR / f"{name}.json"


RECIPE_FIELDS = ("optimizer", "lr", "weight_decay", "grad_clip", "batch_size", "lr_schedule", "warmup_frac", "amp")
"""The fields of a training recipe: how to optimise, not what to train on."""


def recipe_overrides(name: str) -> dict[str, Any]:
    """A packaged config's recipe (:data:`RECIPE_FIELDS` and ``model.dropout``) as dotted overrides, to give
    another model or dataset the same optimisation, e.g. ``recipe_overrides("fast_dgridconv")``."""
    path = default_config_path(name)
    if not path.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
        raise ConfigError(f"no packaged config {name!r}; known: {', '.join(known)}")
    packaged = TrainConfig.from_json(path)
    return {**{key: getattr(packaged, key) for key in RECIPE_FIELDS}, "model.dropout": packaged.model.dropout}


def _model_from_dict(data: dict[str, Any]) -> GLNConfig:
    try:
        return GLNConfig.from_dict(data)
    except (TypeError, KeyError, ValueError) as err:
        msg = str(err.args[0]) if err.args else type(err).__name__
        raise ConfigError(f"invalid model config: {msg}") from None


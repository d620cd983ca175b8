"""Training (eq. 10, A.3): config, trainer, checkpoints, callbacks, DDP."""
from .callbacks import Callback, CallbackList, History
from ..errors import CheckpointError, ConfigError
from .checkpoint import load_checkpoint, save_checkpoint
from .config import LR_SCHEDULES, TrainConfig
from .trainer import TrainResult, load_splits, model_from_checkpoint, train

__all__ = [
    "Callback", "CallbackList", "History", "CheckpointError", "load_checkpoint", "save_checkpoint",
    "LR_SCHEDULES", "ConfigError", "TrainConfig", "TrainResult", "load_splits", "model_from_checkpoint", "train",
]

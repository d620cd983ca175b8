"""Training: loss falls, selection on validation, schedules, AutoGrids noise, config round trip."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gridconv_core import metrics
from gridconv_core.config import ConfigError
from gridconv_core.train import History, TrainConfig, train
from gridconv_core.train import trainer as trainer_module
from gridconv_core.train.config import LR_SCHEDULES, default_config_path
from gridconv_core.train.trainer import lr_factor


def tiny_config(tmp_path: Path, **overrides: Any) -> TrainConfig:
    """A model and data small enough for a test (channels 16, a few hundred poses)."""
    base = {
        "model.channels": 16, "model.num_blocks": 1, "model.dropout": 0.1, "name": "tiny", "out_dir": str(tmp_path),
        "synthetic_train": 400, "synthetic_val": 100, "synthetic_test": 100, "batch_size": 50,
        "eval_batch_size": 64, "epochs": 3, "progress": False, "lr": 3e-3, "device": "cpu",
    }
    base.update(overrides)
    return TrainConfig().with_overrides(base)


def test_training_reduces_loss_and_logs(tmp_path: Path) -> None:
    history = History()
    result = train(tiny_config(tmp_path, epochs=4), callbacks=[history])
    losses = [r["train_loss"] for r in result.history]
    assert losses[-1] < 0.7 * losses[0]
    assert result.history[-1]["val_mpjpe"] < result.history[0]["val_mpjpe"]
    assert len(history.epochs) == 4 and len(history.losses) == 4 * 8  # 400 / 50 steps per epoch
    lines = (result.run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]
    assert result.test is not None and result.test["P1*"] > 0
    saved = json.loads((result.run_dir / "report.json").read_text())
    assert saved["protocols"]["P1*"]["value"] == pytest.approx(result.test["P1*"])
    assert not [p for p in result.run_dir.iterdir() if p.name.endswith(".tmp")]


def test_model_selection_uses_validation_never_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    splits = trainer_module.load_splits(tiny_config(tmp_path))
    test_inputs = splits[2].pose2d
    seen: list[torch.Tensor] = []
    real_predict = trainer_module.predict

    def spy(model: Any, pose2d: torch.Tensor, *args: Any) -> torch.Tensor:
        seen.append(pose2d)
        return real_predict(model, pose2d, *args)

    evaluated: list[Any] = []
    real_evaluate = trainer_module.evaluate

    def spy_eval(model: Any, poseset: Any, **kw: Any) -> Any:
        evaluated.append(poseset)
        return real_evaluate(model, poseset, **kw)

    monkeypatch.setattr(trainer_module, "load_splits", lambda config: splits)
    monkeypatch.setattr(trainer_module, "predict", spy)
    monkeypatch.setattr(trainer_module, "evaluate", spy_eval)
    result = train(tiny_config(tmp_path, epochs=4, lr=2e-2))
    assert len(seen) == 4 and all(t is splits[1].pose2d for t in seen)  # validation only, once per epoch
    assert not any(t is test_inputs for t in seen)
    assert evaluated == [splits[2]]  # the test set: once, after selection
    vals = [r["val_mpjpe"] for r in result.history]
    assert result.best_epoch == int(np.argmin(vals)) + 1
    assert result.best_val_mpjpe == min(vals)
    # the returned model is the selected one: it reproduces the best validation error
    pred = real_predict(result.model, splits[1].pose2d)
    assert metrics.mpjpe(pred * 1000, splits[1].pose3d * 1000) == pytest.approx(min(vals), rel=1e-5)


def test_lr_schedules_of_a3_and_the_official_code() -> None:
    hand, auto, official = (LR_SCHEDULES[k] for k in ("handcrafted", "autogrids", "official"))
    assert [lr_factor(e, *hand) for e in (0, 1, 2)] == pytest.approx([1, 0.96, 0.96**2])
    assert [lr_factor(e, *auto) for e in (0, 9, 10, 20)] == pytest.approx([1, 1, 0.1, 0.01])
    assert [lr_factor(e, *official) for e in (0, 1, 10, 11, 21)] == pytest.approx([1, .96, .96, .96**2, .96**3])
    assert TrainConfig().schedule() == hand
    assert TrainConfig().with_overrides(["model.sgt=autogrids"]).schedule() == auto


def test_autogrids_noise_switches_off_and_s_prob_is_recorded(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, **{"model.sgt": "autogrids", "noise_off_epoch": 1, "epochs": 2,
                                   "lr_schedule": "handcrafted"})
    result = train(cfg)
    assert [r["noise"] for r in result.history] == [True, False]
    assert [r["lr"] for r in result.history] == pytest.approx([3e-3, 3e-3 * 0.96])
    assert len(result.s_prob_history) == 2 and result.s_prob_history[0].shape == (25, 17)
    assert not np.array_equal(result.s_prob_history[0], result.s_prob_history[1])  # S^prob is learnt


def test_config_round_trip_and_overrides(tmp_path: Path) -> None:
    cfg = TrainConfig().with_overrides(["model.sgt=autogrids", "epochs=3", 'train_subjects=["S1","S5"]'])
    assert cfg.model.sgt == "autogrids" and cfg.epochs == 3 and cfg.train_subjects == ["S1", "S5"]
    path = tmp_path / "c.json"
    cfg.to_json(path)
    assert TrainConfig.from_json(path) == cfg
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    for bad, match in [(["epochs=0"], "epochs"), (["nope=1"], "unknown config key"),
                       (["model.nope=1"], "nope"), (["amp=fp8"], "amp"), (["epochs"], "key=value"),
                       (['val_subjects=["S9"]'], "test subjects"),
                       (['val_subjects=["S1"]'], "held out from the training subjects")]:
        with pytest.raises(ConfigError, match=match):
            TrainConfig().with_overrides(bad)
    for name in ("default", "paper_dgridconv", "paper_dgridconv_autogrids"):
        packaged = TrainConfig.from_json(default_config_path(name))
        assert packaged.model.channels == 256 and packaged.model.num_blocks == 2  # the paper's model


@pytest.mark.h36m
def test_short_real_h36m_run_beats_mean_pose(tmp_path: Path, h36m_dir: Path) -> None:
    cfg = tiny_config(tmp_path, **{
        "dataset": "h36m", "data_root": str(h36m_dir), "frame_step": 160, "test_frame_step": 400,
        "model.channels": 32, "model.dropout": 0.0, "epochs": 3, "batch_size": 100, "eval_batch_size": 1000, "lr": 5e-3,
    })
    train_set, _, test_set = trainer_module.load_splits(cfg)
    result = train(cfg)
    mean_pose = train_set.pose3d.mean(dim=0, keepdim=True).expand_as(test_set.pose3d)
    baseline = metrics.mpjpe(mean_pose * 1000, test_set.pose3d * 1000)
    assert result.mean_pose_mpjpe == pytest.approx(baseline, rel=1e-4)
    assert result.test is not None
    assert result.test["P1*"] < 0.6 * baseline, (result.test["P1*"], baseline)

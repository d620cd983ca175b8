"""Training: loss falls, selection on validation, schedules, AutoGrids noise, config round trip."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gridconv_core import metrics
from gridconv_core.errors import ConfigError
from gridconv_core.train import History, TrainConfig, train
from gridconv_core.train import trainer as trainer_module
from gridconv_core.train.config import LR_SCHEDULES, default_config_path
from gridconv_core.train.trainer import lr_factor, lr_lambda, smooth_factor


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

    events: list[str] = []

    def spy_test(config: Any) -> Any:
        events.append(f"test read after {len(seen)} validations")
        return splits[2]

    monkeypatch.setattr(trainer_module, "load_train_val", lambda config: splits[:2])
    monkeypatch.setattr(trainer_module, "load_test", spy_test)
    monkeypatch.setattr(trainer_module, "predict", spy)
    monkeypatch.setattr(trainer_module, "evaluate", spy_eval)
    result = train(tiny_config(tmp_path, epochs=4, lr=2e-2))
    assert len(seen) == 4 and all(t is splits[1].pose2d for t in seen)  # validation only, once per epoch
    assert not any(t is test_inputs for t in seen)
    assert events == ["test read after 4 validations"]  # the test subjects are read once, after training
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


def test_smooth_schedules_warm_up_then_decay_to_zero_per_step() -> None:
    assert [smooth_factor(t, 100, 10) for t in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert smooth_factor(55, 100, 10) == pytest.approx(0.5)  # cosine half way through the decay
    assert smooth_factor(100, 100, 10) == pytest.approx(0.0) and smooth_factor(55, 100, 10, "linear") == 0.5
    cfg = TrainConfig(epochs=4, lr_schedule="cosine", warmup_frac=0.25)
    fn = lr_lambda(cfg, steps_per_epoch=10)
    factors = [fn(t) for t in range(40)]
    assert factors[:10] == pytest.approx([(t + 1) / 10 for t in range(10)])
    assert all(a >= b for a, b in zip(factors[9:], factors[10:])) and factors[-1] < 0.01
    official = lr_lambda(TrainConfig(lr_schedule="official"), steps_per_epoch=10)
    assert [official(t) for t in (0, 9, 10, 109, 110)] == pytest.approx([1, 1, 0.96, 0.96, 0.96**2])
    with pytest.raises(ConfigError, match="per-step"):
        cfg.schedule()


def test_cosine_run_logs_decaying_lr_clips_and_selects_last(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, **{"lr_schedule": "cosine", "warmup_frac": 0.1, "optimizer": "adamw",
                                   "weight_decay": 0.01, "grad_clip": 1.0, "selection": "last", "epochs": 3})
    result = train(cfg)
    lrs = [r["lr"] for r in result.history]
    assert lrs[0] > lrs[1] > lrs[2] > 0 and lrs[2] < 0.1 * cfg.lr
    assert result.best_epoch == 3  # "last": the final weights, whatever validation says
    strict = [json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
              for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["best_epoch"] for r in strict] == [1, 2, 3]
    state = torch.load(result.run_dir / "last.pt", weights_only=False)
    assert all(torch.equal(state["best_state"][k], v) for k, v in state["model"].items())
    groups = state["optimizer"]["param_groups"]
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA"))])
@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_optimizer_is_fused(device: str, optimizer: str) -> None:
    """One fused kernel for all parameters on CPU and CUDA (the for-loop Adam costs 2.6x on CPU)."""
    from gridconv_core.model import build_model

    opt = trainer_module._optimizer(build_model().to(device), TrainConfig(optimizer=optimizer))
    assert all(g["fused"] for g in opt.param_groups)


def test_selection_needs_validation_data_on_real_datasets() -> None:
    with pytest.raises(ConfigError, match="needs validation data"):
        TrainConfig(dataset="h36m", val_subjects=[])
    TrainConfig(dataset="h36m", val_subjects=[], selection="last")  # the paper's fixed schedule
    TrainConfig(dataset="h36m", val_subjects=[], val_tail=0.1)
    with pytest.raises(ConfigError, match="val_tail"):
        TrainConfig(val_tail=0.7)


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
    paper_split = {k: v for k, v in TrainConfig.from_json(default_config_path("paper_dgridconv")).to_dict().items()
                   if k in ("train_subjects", "val_subjects", "selection")}  # five subjects, no selection
    cfg = tiny_config(tmp_path, **paper_split, **{
        "dataset": "h36m", "data_root": str(h36m_dir), "frame_step": 160, "test_frame_step": 400,
        "model.channels": 32, "model.dropout": 0.0, "epochs": 3, "batch_size": 100, "eval_batch_size": 1000, "lr": 5e-3,
    })
    train_set, _, test_set = trainer_module.load_splits(cfg)
    result = train(cfg)
    mean_pose = train_set.pose3d.mean(dim=0, keepdim=True).expand_as(test_set.pose3d)
    baseline = metrics.mpjpe(mean_pose * 1000, test_set.pose3d * 1000)
    assert result.mean_pose_mpjpe == pytest.approx(baseline, rel=1e-4)
    assert result.test is not None and result.best_epoch == cfg.epochs  # the last epoch, nothing selected
    assert sorted(set(train_set.subject)) == ["S1", "S5", "S6", "S7", "S8"]
    assert result.test["P1*"] < 0.6 * baseline, (result.test["P1*"], baseline)


@pytest.mark.h36m
def test_paper_config_trains_on_every_frame_of_the_five_subjects(h36m_dir: Path) -> None:
    cfg = TrainConfig.from_json(default_config_path("paper_dgridconv")).with_overrides({"data_root": str(h36m_dir)})
    assert cfg.train_subjects == ["S1", "S5", "S6", "S7", "S8"] and cfg.selection == "last"
    train_set, val_set = trainer_module.load_train_val(cfg)
    with np.load(h36m_dir / "h36m_3d17_world_mm.npz") as raw:
        expected = sum(len(raw[k]) for k in raw.files if k.split("/")[0] in cfg.train_subjects) * 4  # cameras
    assert len(train_set) == expected == 1_464_400  # 95% of the standard 1,559,752: see the data README
    assert val_set is None and sorted(set(train_set.subject)) == cfg.train_subjects


@pytest.mark.h36m
def test_tail_validation_holds_out_the_end_of_every_sequence(h36m_dir: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, dataset="h36m", data_root=str(h36m_dir), train_subjects=["S1", "S5"],
                      val_subjects=[], val_tail=0.1, frame_step=10, val_frame_step=20)
    train_set, val_set = trainer_module.load_train_val(cfg)
    assert set(val_set.subject) == {"S1", "S5"}
    for key in {(s, q) for s, q in zip(val_set.subject, val_set.sequence)}:
        head = train_set.frame[(train_set.subject == key[0]) & (train_set.sequence == key[1])]
        tail = val_set.frame[(val_set.subject == key[0]) & (val_set.sequence == key[1])]
        assert head.max() + 50 < tail.min()  # contiguous tail, one second away from every training frame
        assert (tail % 20 == 0).all()
    share = len(val_set) * 2 / (len(val_set) * 2 + len(train_set))  # val is at half the training density
    assert 0.08 < share < 0.12


def test_a_run_without_validation_keeps_the_last_weights_and_writes_strict_json(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    splits = trainer_module.load_splits(tiny_config(tmp_path))
    monkeypatch.setattr(trainer_module, "load_train_val", lambda config: (splits[0], None))
    result = train(tiny_config(tmp_path, selection="last", epochs=2))
    lines = (result.run_dir / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} is not JSON")) for line in lines]
    assert [(r["val_mpjpe"], r["best_val_mpjpe"], r["best_epoch"]) for r in records] == [(None, None, 1),
                                                                                       (None, None, 2)]
    assert result.test is not None and result.test["P1*"] > 0

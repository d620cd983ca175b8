"""Checkpoints: weights_only loading, bit-exact resume, clear errors for corrupt or foreign files."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import torch

from gridconv_core.train import Callback, CheckpointError, load_checkpoint, model_from_checkpoint, train
from gridconv_core.train.checkpoint import save_checkpoint
from test_train import tiny_config

TIMING = ("time_s", "samples_per_s", "elapsed_s")


class Kill(Exception):
    """Stands in for a killed process."""


class KillAt(Callback):
    def __init__(self, epoch: int, step: int) -> None:
        self.epoch, self.step = epoch, step

    def on_batch_end(self, metrics: dict[str, Any], model: torch.nn.Module) -> None:
        if metrics["epoch"] == self.epoch and metrics["step"] == self.step:
            raise Kill


def _untimed(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in history]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Any:
    cfg = tiny_config(tmp_path_factory.mktemp("ckpt"), **{"model.sgt": "autogrids", "noise_off_epoch": 2})
    return train(cfg)


def test_checkpoint_is_weights_only_loadable(finished: Any) -> None:
    state = torch.load(finished.run_dir / "last.pt", weights_only=True)
    assert state["epoch"] == 3 and len(state["history"]) == 3
    assert isinstance(state["rng"]["torch"], torch.Tensor)
    assert isinstance(state["rng"]["python"]["state"], torch.Tensor)
    assert len(state["s_prob_history"]) == 3 and state["s_prob_history"][0].shape == (25, 17)
    assert state["config"]["model"]["sgt"] == "autogrids"
    assert "cells" in state["layout"] and "attention_temperature" not in state
    assert set(state["best_state"]) == set(state["model"])
    steps = sum(r["steps"] for r in state["history"])
    assert state["optimizer"]["state"] and state["scheduler"]["last_epoch"] == steps == 3 * 8  # stepped per step


def test_resume_after_kill_is_bit_exact(finished: Any, tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, **{"model.sgt": "autogrids", "noise_off_epoch": 2})
    with pytest.raises(Kill):
        train(cfg, callbacks=[KillAt(epoch=2, step=3)])  # dies in the middle of the third epoch
    assert load_checkpoint(cfg.run_dir / "last.pt")["epoch"] == 2
    resumed = train(cfg, resume=True)
    assert _untimed(resumed.history) == _untimed(finished.history)
    a = load_checkpoint(finished.run_dir / "last.pt")
    b = load_checkpoint(resumed.run_dir / "last.pt")
    for key in ("model", "best_state"):
        assert a[key].keys() == b[key].keys()
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    assert all(torch.equal(x, y) for x, y in zip(a["s_prob_history"], b["s_prob_history"]))
    assert resumed.test is not None and finished.test is not None
    assert resumed.test.to_dict() == finished.test.to_dict()


def test_corrupt_and_foreign_checkpoints_raise_one_line_errors(finished: Any, tmp_path: Path) -> None:
    good = finished.run_dir / "last.pt"
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint" * 10)
    half = tmp_path / "half.pt"
    payload = good.read_bytes()
    half.write_bytes(payload[: len(payload) // 2])
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, other)
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"config": {}, "model": {}}, protocol=4))
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    listed = tmp_path / "list.pt"
    torch.save([1, 2], listed)
    objects = tmp_path / "objects.pt"
    torch.save({"format": "gridconv-train-checkpoint", "thing": Kill()}, objects)
    typed = tmp_path / "typed.pt"
    save_checkpoint(typed, {**{k: v for k, v in load_checkpoint(good).items() if k not in ("format", "version")},
                            "history": "none"})
    for path, match in [(garbage, "not a torch checkpoint"), (half, "truncated or damaged"), (other, "not a gridconv"),
                        (tmp_path / "missing.pt", "not found"), (raw, "raw pickle"), (empty, "empty"),
                        (listed, "not a gridconv"), (objects, "Python objects"), (typed, "wrong type of history")]:
        with pytest.raises(CheckpointError, match=match) as info:
            load_checkpoint(path)
        assert "\n" not in str(info.value)
    # a checkpoint whose weights belong to a different model config
    state = load_checkpoint(good)
    state["config"]["model"]["channels"] = 32
    save_checkpoint(tmp_path / "mismatch.pt", {k: v for k, v in state.items() if k not in ("format", "version")})
    with pytest.raises(CheckpointError, match="does not fit the model"):
        model_from_checkpoint(tmp_path / "mismatch.pt")
    # resuming a run with a different model config
    cfg = tiny_config(finished.run_dir.parent, **{"model.sgt": "autogrids", "model.channels": 32, "name": "tiny"})
    with pytest.raises(CheckpointError, match="different model: channels"):
        train(cfg, resume=True)


def test_model_from_checkpoint_restores_selected_weights(finished: Any) -> None:
    model, cfg = model_from_checkpoint(finished.run_dir / "last.pt")
    assert cfg.model == finished.config.model
    expected = finished.model.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())

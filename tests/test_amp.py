"""``amp="auto"`` resolution (mocked hardware) and batch values only for callbacks that ask for them."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from gridconv_core import amp
from gridconv_core.train import Callback, History, TrainConfig, train
from gridconv_core.errors import ConfigError


@pytest.mark.parametrize(("flags", "expected"), [
    ({"avx512f", "avx512_bf16"}, "bf16"), ({"amx_tile", "amx_bf16"}, "bf16"), ({"avx512f", "avx2"}, "none"), (set(), "none"),
])
def test_auto_is_bf16_only_on_cpus_with_bf16_matrix_instructions(monkeypatch, flags: set[str], expected: str) -> None:
    monkeypatch.setattr(amp, "cpu_flags", lambda: frozenset(flags))
    assert amp.resolve_amp("auto", "cpu") == expected
    assert amp.resolve_amp("none", "cpu") == "none" and amp.resolve_amp("bf16", "cpu") == "bf16"
    with amp.autocast("auto", "cpu"):
        assert torch.is_autocast_enabled("cpu") == (expected == "bf16")
    assert not torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize(("available", "bf16", "expected"), [(True, True, "bf16"), (True, False, "none"), (False, False, "none")])
def test_auto_on_cuda_follows_the_device(monkeypatch, available: bool, bf16: bool, expected: str) -> None:
    monkeypatch.setattr(amp, "cpu_flags", lambda: frozenset({"amx_bf16"}))  # the CPU must not decide for CUDA
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    assert amp.resolve_amp("auto", "cuda") == expected


@pytest.mark.parametrize(("flags", "warns"), [({"avx2"}, True), ({"avx512f", "avx512_bf16"}, False)])
def test_bf16_on_request_warns_where_the_cpu_would_emulate_it(monkeypatch, flags: set[str], warns: bool) -> None:
    monkeypatch.setattr(amp, "cpu_flags", lambda: frozenset(flags))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with amp.autocast("bf16", "cpu"):
            assert torch.is_autocast_enabled("cpu")  # still what was asked for
        with amp.autocast("auto", "cpu"), amp.autocast("none", "cpu"):
            pass
    assert [str(w.message).split(":")[0] for w in caught] == (["amp='bf16' on a CPU without AVX512-BF16 or AMX"]
                                                             if warns else [])


def test_amp_modes_are_validated() -> None:
    with pytest.raises(ValueError, match="amp="):
        amp.resolve_amp("fp16", "cpu")
    with pytest.raises(ConfigError, match="amp"):
        TrainConfig(amp="fp16")
    assert TrainConfig(amp="auto").amp == "auto"


class Steps(Callback):
    """Records the batch metrics it is given, without asking for the loss."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def on_batch_end(self, metrics: dict[str, Any], model: torch.nn.Module) -> None:
        self.seen.append(dict(metrics))


def test_batch_loss_is_read_only_when_a_callback_asks(tmp_path: Path) -> None:
    config = TrainConfig().with_overrides({
        "model.channels": 8, "model.num_blocks": 1, "name": "cb", "out_dir": str(tmp_path), "synthetic_train": 100,
        "synthetic_val": 50, "synthetic_test": 50, "batch_size": 50, "epochs": 1, "progress": False, "device": "cpu",
        "amp": "auto"})
    quiet = Steps()
    train(config, callbacks=[quiet])
    assert [m["step"] for m in quiet.seen] == [1, 2] and all("loss" not in m for m in quiet.seen)
    history, both = History(), Steps()
    train(config.with_overrides({"name": "cb2"}), callbacks=[history, both])
    assert len(history.losses) == 2 and all(isinstance(m["loss"], float) for m in both.seen)

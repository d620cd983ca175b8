"""AutoGridsWatcher and sprob_figure without a browser: history, slider -> figure, bad data banners."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gridconv_core import GLNConfig, build_model, get_skeleton
from gridviz import AutoGridsWatcher, sprob_figure
from gridviz._common import GridvizError

SHAPE = (5, 5)
J = 17


def _history(epochs: int = 4, seed: int = 0) -> np.ndarray:
    """Softmax rows whose argmax drifts by one cell per epoch (so layouts change between epochs)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(epochs, SHAPE[0] * SHAPE[1], J))
    for e in range(epochs):
        logits[e, np.arange(25), (np.arange(25) + e * (np.arange(25) == 3)) % J] += 6.0
    z = np.exp(logits)
    return z / z.sum(axis=2, keepdims=True)


def test_sprob_figure_labels_rows_by_cell_and_columns_by_joint() -> None:
    snap = _history(1)[0]
    fig = sprob_figure(snap, SHAPE, "h36m17", epoch=7)
    heat = fig.data[0]
    assert list(heat.x) == list(get_skeleton("h36m17").joint_names)
    assert list(heat.y)[:3] == ["(0,0)", "(0,1)", "(0,2)"] and list(heat.y)[-1] == "(4,4)"
    np.testing.assert_allclose(np.asarray(heat.z), snap)
    assert fig.layout.title.text == "S<sup>prob</sup> at epoch 7"
    log = sprob_figure(snap, SHAPE, "h36m17", log=True)
    np.testing.assert_allclose(np.asarray(log.data[0].z), np.log10(np.maximum(snap, 1e-4)))
    assert log.layout.title.text.startswith("log10")


@pytest.mark.parametrize(
    ("snapshot", "match"),
    [
        (np.ones((24, 17)), r"shape \(24, 17\), expected \(25, 17\)"),
        (np.ones((25, 16)), r"expected \(25, 17\)"),
        (np.full((25, 17), np.nan), "NaN"),
        ([["a"] * 17] * 25, "not a numeric array"),
    ],
)
def test_sprob_figure_rejects_bad_snapshots(snapshot, match: str) -> None:
    with pytest.raises(GridvizError, match=match):
        sprob_figure(snapshot, SHAPE, "h36m17")


def test_from_history_moves_to_the_latest_epoch() -> None:
    hist = _history(4)
    w = AutoGridsWatcher.from_history(hist, SHAPE, "h36m17")
    assert len(w.history) == 4 and w.epochs == [1, 2, 3, 4]  # 1-based, as the trainer numbers epochs
    assert w.slider.max == 3 and w.slider.value == 3 == w.index and w.play.max == 3
    assert not w.slider.disabled
    np.testing.assert_allclose(np.asarray(w.figure.data[0].z), hist[3])
    assert w.banner.value == ""


def test_slider_updates_heatmap_title_and_hard_grid() -> None:
    hist = _history(4)
    w = AutoGridsWatcher.from_history(hist, SHAPE)
    w.slider.value = 1  # as a drag of the slider does
    assert w.index == 1
    np.testing.assert_allclose(np.asarray(w.figure.data[0].z), hist[1])
    assert w.figure.layout.title.text == "S<sup>prob</sup> at epoch 2"
    names = get_skeleton("h36m17").joint_names
    hard = w.hard_figure
    text = np.array(hard.data[0].text)
    assert text.shape == SHAPE and text[0, 3] == names[int(hist[1][3].argmax())]
    outlined = [(s.y0 + 0.5, s.x0 + 0.5) for s in hard.layout.shapes]
    assert outlined == [(0, 3)]  # cell (0,3) moved
    assert "1 cell changed since the previous epoch" in hard.layout.title.text
    w.index = 0
    assert "0 cells changed" in hard.layout.title.text and hard.layout.shapes == ()


def test_log_toggle_rescales_the_heatmap() -> None:
    hist = _history(2)
    w = AutoGridsWatcher.from_history(hist, SHAPE)
    w.scale.value = True  # the "log" button
    assert w.log
    np.testing.assert_allclose(np.asarray(w.figure.data[0].z), np.log10(np.maximum(hist[1], 1e-4)))
    assert w.figure.layout.title.text == "log10 S<sup>prob</sup> at epoch 2"
    assert w.figure.data[0].colorbar.title.text == "log10 p"
    assert (w.figure.data[0].zmin, w.figure.data[0].zmax) == (-4.0, 0.0)
    w.log = False
    assert w.scale.value is False and (w.figure.data[0].zmin, w.figure.data[0].zmax) == (0.0, 1.0)


def test_hard_layout_and_changed_cells_follow_eq5() -> None:
    hist = _history(3)
    w = AutoGridsWatcher.from_history(hist, SHAPE)
    np.testing.assert_array_equal(w.hard_layout(2), hist[2].argmax(axis=1).reshape(SHAPE))
    assert w.changed_cells(0) == []
    assert w.changed_cells(1) == [(0, 3)]


def test_hard_layout_missing_joints_are_flagged() -> None:
    snap = np.zeros((25, J))
    snap[:, 0] = 1.0  # every cell argmaxes to the pelvis
    w = AutoGridsWatcher.from_history([snap], SHAPE)
    assert "autogrids-hard-problems" in w.hard_problems.value and "joints never appear" in w.hard_problems.value


@pytest.mark.parametrize(
    ("history", "match"),
    [
        (np.ones((3, 25, 16)), "expected (25, 17)"),
        (np.ones((25, 17)), "expected (E, HP, J)"),
        ([[1, 2], [3]], "not a numeric"),
    ],
)
def test_wrong_history_shows_a_banner_not_an_exception(history, match: str) -> None:
    w = AutoGridsWatcher.from_history(history, SHAPE)
    assert "autogrids-error" in w.banner.value and match in w.banner.value
    assert w.history == [] and w.slider.disabled


def test_bad_live_snapshot_keeps_history_and_shows_banner() -> None:
    w = AutoGridsWatcher.from_history(_history(2), SHAPE)
    assert not w.append(np.ones((25, 3)))
    assert len(w.history) == 2 and "expected (25, 17)" in w.banner.value
    assert w.append(_history(3)[2], epoch=9)
    assert w.banner.value == "" and w.epochs[-1] == 9 and w.slider.value == 2


def _autogrids_model() -> torch.nn.Module:
    return build_model(GLNConfig(sgt="autogrids", channels=8, num_blocks=1))


def test_epoch_end_feeds_the_view_live() -> None:
    torch.manual_seed(0)
    w = AutoGridsWatcher(SHAPE, "h36m17")
    assert "Waiting for the first epoch" in w.waiting.value and w.slider.disabled
    assert w.figure_box.layout.display == "none"
    model = _autogrids_model()
    for epoch in range(3):
        with torch.no_grad():
            model.autogrids.s_prob.add_(torch.randn_like(model.autogrids.s_prob))  # as a training epoch would
        w.on_epoch_end({"epoch": epoch, "loss": 1.0}, model)
        assert w.slider.value == epoch and w.figure_box.layout.display == "flex"
        np.testing.assert_allclose(np.asarray(w.figure.data[0].z), model.autogrids.snapshot(), rtol=1e-6)
    w.on_epoch_end({"epoch": 3}, build_model(GLNConfig(channels=8, num_blocks=1)))  # a fixed SGT
    assert "no AutoGrids" in w.banner.value and len(w.history) == 3


def test_callback_is_a_trainer_callback() -> None:
    callbacks = pytest.importorskip("gridconv_core.train.callbacks", reason="gridconv_core.train not importable yet")
    w = AutoGridsWatcher(SHAPE)
    cb = w.callback()
    assert isinstance(cb, callbacks.Callback)
    cb.on_epoch_end({"epoch": 5}, _autogrids_model())
    assert w.epochs == [5]


def test_from_checkpoint_reads_a_real_training_run(tmp_path) -> None:
    from gridconv_core.train import CheckpointError, TrainConfig, train

    config = TrainConfig().with_overrides({
        "model.sgt": "autogrids", "model.channels": 8, "model.num_blocks": 1, "name": "ag", "out_dir": str(tmp_path),
        "synthetic_train": 100, "synthetic_val": 50, "synthetic_test": 50, "batch_size": 50, "epochs": 2,
        "progress": False, "device": "cpu",
    })
    result = train(config)
    w = AutoGridsWatcher.from_checkpoint(result.run_dir / "last.pt")
    assert len(w.history) == 2 and w.shape == (5, 5) and w.skeleton.name == "h36m17"
    np.testing.assert_allclose(w.history[1], result.s_prob_history[1])
    plain = train(config.with_overrides({"model.sgt": "handcrafted", "name": "plain"}))
    with pytest.raises(CheckpointError, match="no S\\^prob history"):
        AutoGridsWatcher.from_checkpoint(plain.run_dir / "last.pt")
    with pytest.raises(CheckpointError, match="not found"):
        AutoGridsWatcher.from_checkpoint(tmp_path / "missing.pt")
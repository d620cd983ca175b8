"""Learning-curve points, text table and figure (gridconv_core.train.curves)."""
from __future__ import annotations

from pathlib import Path

from gridconv_core.train.curves import curve_figure, curve_points, curve_table, sparkline, write_figure

HISTORY = [
    {"epoch": 1, "steps": 10, "elapsed_s": 2.0, "train_loss": 0.5, "val_mpjpe": 300.0, "lr": 1e-3},
    {"epoch": 2, "steps": 10, "elapsed_s": 4.0, "train_loss": 0.1, "val_mpjpe": 120.0, "lr": 5e-4},
    {"epoch": 3, "steps": 5, "elapsed_s": 5.0, "train_loss": 0.05, "val_mpjpe": None, "lr": 1e-5},
]


def test_points_count_samples_cumulatively() -> None:
    points = curve_points(HISTORY, batch_size=200)
    assert [p["samples"] for p in points] == [2000, 4000, 5000]
    assert [p["seconds"] for p in points] == [2.0, 4.0, 5.0] and points[2]["val_mpjpe"] is None


def test_sparkline_maps_values_to_bars_on_a_log_scale() -> None:
    assert sparkline([100.0, 10.0, 1.0]) == "█▅▁"  # 10 is half way on a log scale
    assert sparkline([5.0, None, 5.0]) == "▁ ▁" and sparkline([None]) == ""


def test_table_lists_every_epoch_and_marks_missing_validation() -> None:
    table = curve_table(curve_points(HISTORY, 200)).splitlines()
    assert len(table) == 1 + 3 + 1
    assert "300.0" in table[1] and "4,000" in table[2] and table[3].split()[4] == "-"
    assert table[-1].startswith("train loss █") and "validation MPJPE █▁" in table[-1]


def test_figure_draws_each_run_against_samples_and_seconds(tmp_path: Path) -> None:
    points = curve_points(HISTORY, 200)
    fig = curve_figure({"a": points, "b": points[:1]})
    assert [t.name for t in fig.data] == ["a", "a", "b", "b"]
    assert list(fig.data[0].x) == [2000, 4000] and list(fig.data[1].x) == [2.0, 4.0]  # no point without validation
    assert fig.layout.yaxis.type == "log"
    assert fig.data[0].line.color == fig.data[1].line.color != fig.data[2].line.color  # a run keeps its colour
    written = write_figure(fig, tmp_path / "curve")
    assert written[0] == tmp_path / "curve.html" and "plotly" in written[0].read_text()[:5000].lower()
    assert all(p.exists() for p in written) and not list(tmp_path.glob("*.tmp"))


def test_atomic_writes_get_ordinary_file_permissions(tmp_path: Path) -> None:
    import os
    import stat

    from gridconv_core.io import atomic_write_text

    atomic_write_text(tmp_path / "a.json", "{}")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0o600
    assert (tmp_path / "a.json").read_text() == "{}" and not list(tmp_path.glob(".*.tmp"))

"""The gridconv command: a tiny end-to-end run, and one-line errors for every bad input."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gridconv_core.cli import main
from gridconv_core.layout_families import handcrafted

TINY = ["model.channels=16", "model.num_blocks=1", "synthetic_train=200", "synthetic_val=50",
        "synthetic_test=60", "batch_size=50", "epochs=1", "progress=false", "device=\"cpu\"", "name=tiny"]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, match: str) -> None:
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert match in lines[0], lines[0]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli")
    assert main(["train", "--out", str(out), *sum((["--set", s] for s in TINY), [])]) == 0
    return out / "tiny" / "last.pt"


def test_train_prints_table_and_json(ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ckpt.is_file() and (ckpt.parent / "report.txt").read_text().count("frame mean") == 1
    code, out, _ = run(["train", "--out", str(tmp_path), "--json", "--set", *TINY], capsys)  # several pairs, one --set
    assert code == 0 and json.loads(out)["best_epoch"] == 1
    code, out, _ = run(["train", "--resume", str(tmp_path / "tiny"), "--set", "epochs=2"], capsys)
    assert code == 0 and "best validation epoch" in out and "frame mean" in out
    assert len((tmp_path / "tiny" / "metrics.jsonl").read_text().splitlines()) == 2


def test_evaluate_synthetic(ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["evaluate", "--checkpoint", str(ckpt), "--data", "synthetic", "--json"], capsys)
    assert code == 0 and json.loads(out)["protocols"]["P1*"]["value"] > 0  # the generator mimics Human3.6M
    code, out, _ = run(["evaluate", "--checkpoint", str(ckpt), "--data", "synthetic", "--protocols", "MPJPE,PCK"], capsys)
    assert code == 0 and "PCK (%, gt)" in out


def test_predict_json_csv_npz(ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    kp = rng.uniform(100, 900, size=(4, 17, 2))
    (tmp_path / "k.json").write_text(json.dumps({"keypoints": kp.tolist(), "image_size": [1000, 800]}))
    code, out, _ = run(["predict", str(tmp_path / "k.json"), "--checkpoint", str(ckpt), "--out", str(tmp_path / "p.json")], capsys)
    assert code == 0
    res = json.loads((tmp_path / "p.json").read_text())
    assert np.asarray(res["pose3d"]).shape == (4, 17, 3) and res["unit"] == "m"
    np.savetxt(tmp_path / "k.csv", kp.reshape(4, 34), delimiter=",")
    code, _, _ = run(["predict", str(tmp_path / "k.csv"), "--checkpoint", str(ckpt), "--image-size", "1000", "800",
                      "--out", str(tmp_path / "p.npz")], capsys)
    assert code == 0
    with np.load(tmp_path / "p.npz") as z:
        np.testing.assert_allclose(z["pose3d"], res["pose3d"], atol=1e-5)  # same input, same answer
    np.savez(tmp_path / "coco.npz", keypoints=kp, image_size=np.array([1000, 800]))
    code, _, _ = run(["predict", str(tmp_path / "coco.npz"), "--keypoints", "coco17", "--checkpoint", str(ckpt),
                      "--out", str(tmp_path / "c.json")], capsys)
    assert code == 0 and (tmp_path / "c.json").is_file()


@pytest.mark.parametrize("batch", ["1", "8"])  # traced through the per-branch GEMM and through the base and bands
def test_export_onnx_matches_pytorch(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], batch: str
) -> None:
    code, out, err = run(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "m.onnx"), "--batch", batch],
                         capsys)
    assert code == 0, err
    assert "max abs diff" in out and (tmp_path / "m.onnx").stat().st_size > 1000
    assert float(out.split("max abs diff ")[1].split()[0]) <= 1e-4


def test_layouts_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["layouts", "list"], capsys)
    assert code == 0 and "handcrafted" in out and "auto" in out
    code, out, _ = run(["layouts", "show", "handcrafted"], capsys)
    assert code == 0 and "5x5" in out and "Pelvis" in out
    good = tmp_path / "good.json"
    handcrafted("h36m17").to_json(good)
    code, out, _ = run(["layouts", "validate", str(good)], capsys)
    assert code == 0 and out.startswith("valid")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"skeleton": "h36m17", "cells": [[0, 1], [2, 99]]}))
    assert_one_line_error(*run(["layouts", "validate", str(bad)], capsys)[::2], "out of range")
    assert_one_line_error(*run(["layouts", "show", "nonsense"], capsys)[::2], "unknown layout")
    assert_one_line_error(*run(["layouts", "show", "auto", "--skeleton", "nope"], capsys)[::2], "nope")


def test_bad_inputs_fail_with_one_line(ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00garbage" * 50)
    half = tmp_path / "half.pt"
    half.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    nan = np.full((3, 17, 2), 500.0)
    nan[1, 4, 0] = np.nan
    np.savez(tmp_path / "nan.npz", keypoints=nan, image_size=np.array([1000, 1000]))
    (tmp_path / "malformed.json").write_text("{not json")
    (tmp_path / "noimg.json").write_text(json.dumps([[[1.0, 2.0]] * 17]))
    (tmp_path / "shape.json").write_text(json.dumps({"keypoints": [[[1.0, 2.0]] * 5], "image_size": [10, 10]}))
    names = np.array(["Pelvis", "RHip"])
    np.savez(tmp_path / "mismatch.npz", pose2d=np.zeros((4, 2, 2)), pose3d=np.zeros((3, 2, 3)), units="mm",
             image_size=np.array([100, 100]), joint_names=names)
    (tmp_path / "cfg.json").write_text("{\"epochs\": ")
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"model": {"w": 1}}, protocol=4))
    pickled_run = tmp_path / "pickled"
    pickled_run.mkdir()
    (pickled_run / "config.json").write_text((ckpt.parent / "config.json").read_text())
    (pickled_run / "last.pt").write_bytes(raw.read_bytes())
    c = str(ckpt)
    cases = [
        (["train", "--set", "nope=1"], "unknown config key"),
        (["train", "--set", "epochs=-1"], "epochs"),
        (["train", "--config", str(tmp_path / "missing.json")], "cannot read config"),
        (["train", "--config", str(tmp_path / "cfg.json")], "malformed config"),
        (["train", "--resume", str(tmp_path / "norun")], "nothing to resume"),
        (["train", "--set", "dataset=h36m", "--set", f"data_root={tmp_path}"], "h36m_cameras.json"),
        (["evaluate", "--checkpoint", str(tmp_path / "none.pt"), "--data", "synthetic"], "not found"),
        (["evaluate", "--checkpoint", str(garbage), "--data", "synthetic"], "cannot read"),
        (["evaluate", "--checkpoint", str(half), "--data", "synthetic"], "cannot read"),
        (["evaluate", "--checkpoint", c, "--data", "synthetic", "--protocols", "P9"], "unknown protocol"),
        (["evaluate", "--checkpoint", c, "--data", "mystery"], "--data must be"),
        (["evaluate", "--checkpoint", c, "--data", f"generic:{tmp_path / 'mismatch.npz'}"], "frame-count mismatch"),
        (["evaluate", "--checkpoint", c, "--data", f"generic:{tmp_path / 'nofile.npz'}"], "nofile"),
        (["predict", str(tmp_path / "nan.npz"), "--checkpoint", c, "--out", str(tmp_path / "o1.json")], "NaN"),
        (["predict", str(tmp_path / "none.json"), "--checkpoint", c, "--out", str(tmp_path / "o2.json")], "not found"),
        (["predict", str(tmp_path / "malformed.json"), "--checkpoint", c, "--out", str(tmp_path / "o3.json")], "malformed"),
        (["predict", str(tmp_path / "noimg.json"), "--checkpoint", c, "--out", str(tmp_path / "o4.json")], "image size"),
        (["predict", str(tmp_path / "shape.json"), "--checkpoint", c, "--out", str(tmp_path / "o5.json")], "shape"),
        (["predict", str(tmp_path / "shape.json"), "--checkpoint", c, "--out", str(tmp_path / "o6.txt")], ".json or .npz"),
        (["predict", str(tmp_path / "nan.npz"), "--checkpoint", str(half), "--out", str(tmp_path / "o7.json")], "NaN"),
        (["export", "--checkpoint", str(half), "--out", str(tmp_path / "o8.onnx")], "cannot read"),
        (["evaluate", "--checkpoint", str(raw), "--data", "synthetic"], "raw pickle"),
        (["export", "--checkpoint", str(raw), "--out", str(tmp_path / "o9.onnx")], "raw pickle"),
        (["train", "--resume", str(pickled_run)], "raw pickle"),
        (["train", "--set", "epochs=1", "nope"], "not of the form key=value"),
    ]
    for args, match in cases:
        assert_one_line_error(*run(args, capsys)[::2], match)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(("o", ".o"))]
    assert leftovers == []  # no partial outputs


@pytest.mark.h36m
def test_unknown_subject_on_real_data(ckpt: Path, h36m_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["evaluate", "--checkpoint", str(ckpt), "--data", "h36m", "--data-root", str(h36m_dir), "--subjects", "S99"]
    assert_one_line_error(*run(args, capsys)[::2], "S99")


def test_console_script_never_shows_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    proc = subprocess.run([sys.executable, "-m", "gridconv_core.cli", "evaluate", "--checkpoint", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and "cannot read" in proc.stderr

"""The exploration notebooks (issue 4): committed clean, and each one runs under papermill.

Every notebook writes the values it checked to ``<output_dir>/results.json``; these tests execute
the notebooks with their small defaults into a temporary folder (papermill, ``python3`` kernel,
no widget state stored) and check those values. Each notebook runs once per ``make test``: here. A cell
that raises fails the run, which is what nbval's lax mode checks; ``pytest notebooks/`` (``addopts`` holds
``--nbval-lax``) still runs nbval on the committed notebooks directly, outside ``testpaths``.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest

from gridconv_core import GridLayout

papermill = pytest.importorskip("papermill")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ("01_quickstart", "02_grid_layouts", "03_autogrids", "04_attention", "05_human36m", "06_ablations",
         "07_learning_curves")
CELL_TIMEOUT_S = 300


def execute(name: str, tmp_path: Path, **parameters: Any) -> tuple[dict[str, Any], Any]:
    """Run ``notebooks/<name>.ipynb`` with papermill; returns its results.json and the output notebook."""
    out_dir = tmp_path / "results"
    output = tmp_path / f"{name}.out.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"), str(output), parameters={"output_dir": str(out_dir), **parameters},
        kernel_name="python3", cwd=str(NOTEBOOKS), progress_bar=False, execution_timeout=CELL_TIMEOUT_S,
        start_timeout=120, store_widget_state=False,
    )
    nb = nbformat.read(str(output), as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert "widgets" not in nb.metadata, "widget state (5 MB per FigureWidget) must not be stored"
    return json.loads((out_dir / "results.json").read_text()), nb


def code(name: str) -> str:
    """The source of a notebook's code cells, joined."""
    nb = nbformat.read(str(NOTEBOOKS / f"{name}.ipynb"), as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def parameters(name: str) -> dict[str, Any]:
    """The defaults of a notebook's papermill ``parameters`` cell (plain assignments of constants)."""
    nb = nbformat.read(str(NOTEBOOKS / f"{name}.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body}  # type: ignore[attr-defined]


def calls(source: str, function: str) -> list[ast.Call]:
    """The calls of the plain name ``function`` in ``source`` (not ``x.function()`` methods)."""
    return [n for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == function]


def requested_runs(source: str) -> set[str]:
    """The names a notebook passes to its ``run(name, ...)``: literal names, and the names that
    comprehensions build, found by evaluating each such comprehension with a recording ``run``."""
    names = {c.args[0].value for c in calls(source, "run") if isinstance(c.args[0], ast.Constant)}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.DictComp, ast.ListComp, ast.SetComp)) and calls(ast.unparse(node), "run"):
            eval(compile(ast.Expression(node), "<notebook>", "eval"), {"run": lambda name, **_: names.add(name)})
    return names


# ---------------------------------------------------------------------- committed form
@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_clean(name: str) -> None:
    nb = nbformat.read(str(NOTEBOOKS / f"{name}.ipynb"), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "notebooks are committed without outputs"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "output_dir = " in tagged[0].source
    intro = nb.cells[0]
    assert intro.cell_type == "markdown" and intro.source.startswith("# ") and "Runtime" in intro.source


# ---------------------------------------------------------------------- executed
@pytest.mark.slow
def test_quickstart_trains_and_beats_the_mean_pose(tmp_path: Path) -> None:
    res, _ = execute("01_quickstart", tmp_path)
    assert res["train_loss"][-1] < res["train_loss"][0]
    assert res["P2"] <= res["P1*"] < res["mean_pose_mpjpe"]
    assert res["params"] > 0 and res["worst_frame_mpjpe"] >= res["P1*"]


@pytest.mark.slow
def test_grid_layouts_report_eq2_for_every_family(tmp_path: Path) -> None:
    res, _ = execute("02_grid_layouts", tmp_path)
    fam = res["families"]
    assert fam["handcrafted"]["broken"] == fam["column_shuffle"]["broken"] == fam["auto"]["broken"] == 0
    assert fam["row_shuffle"]["broken"] > 0 and fam["global_shuffle"]["broken"] > 0
    assert fam["learnt_type3"]["missing"] == [0]  # the official prior without a Pelvis
    assert res["h36m32_handcrafted"] == {"shape": [7, 5], "broken": 0}
    assert set(res["auto"]) == {"h36m17", "h36m32", "coco17", "humaneva15"}
    assert all(a["broken"] == 0 for a in res["auto"].values())
    assert res["graphs"]["start"]["lost"] == 0 and res["graphs"]["global_shuffle"]["lost"] > 0
    saved = GridLayout.from_json(tmp_path / "results" / "edited_layout.json")
    assert saved.shape == (5, 5) and saved.topology().satisfied


@pytest.mark.slow
def test_grid_layouts_without_a_handcrafted_layout(tmp_path: Path) -> None:
    res, _ = execute("02_grid_layouts", tmp_path, skeleton="coco17")
    assert "handcrafted" not in res["families"] and res["families"]["auto"]["broken"] == 0
    assert res["graphs"]["start"]["lost"] == 0 and set(res["graphs"]) == {"start", "random"}


@pytest.mark.slow
def test_autogrids_watcher_follows_training_and_layout_is_exported(tmp_path: Path) -> None:
    epochs = parameters("03_autogrids")["epochs"]
    res, _ = execute("03_autogrids", tmp_path)  # the defaults, as a reader runs it
    assert res["epochs_seen"] == epochs and len(res["train_loss"]) == epochs
    assert res["sprob_change"] > 0
    learnt = GridLayout.from_json(tmp_path / "results" / "learnt_layout.json")
    assert learnt.shape == (5, 5) and learnt.skeleton_name == "h36m17"
    assert res["comparison"]["handcrafted"]["eq2_broken"] == 0
    assert res["comparison"]["learnt"]["eq2_kept"] + res["comparison"]["learnt"]["eq2_broken"] == 16


@pytest.mark.slow
def test_attention_maps_depend_on_the_input(tmp_path: Path) -> None:
    res, _ = execute("04_attention", tmp_path)
    assert res["layers"] == ["w1", "linear_stages.0.w1", "linear_stages.0.w2", "w2"]
    assert res["sample_difference"] > 0
    variances = [t[4] for t in res["top_taps"]]
    assert len(variances) == 9 and variances == sorted(variances, reverse=True)
    assert "no kernel attention" in res["static_message"]


@pytest.mark.slow
def test_human36m_notebook_skips_cleanly_without_data(tmp_path: Path) -> None:
    res, nb = execute("05_human36m", tmp_path, h36m_root=str(tmp_path / "no-such-folder"))
    assert res["skipped"] is True and "no-such-folder" in res["skip_reason"]
    assert set(res) == {"skipped", "skip_reason", "runtime_s"}
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "Human3.6M is not available" in printed


@pytest.mark.slow
@pytest.mark.h36m
def test_human36m_notebook_trains_and_reports_protocols(tmp_path: Path, h36m_dir: Path) -> None:
    res, _ = execute("05_human36m", tmp_path, h36m_root=str(h36m_dir))
    assert res["skipped"] is False
    assert res["loss_late"] < res["loss_early"]
    assert np.isfinite([res["P1"], res["P1*"], res["P2"]]).all()
    assert res["P2"] < res["P1"] and res["P1*"] < res["mean_pose_mpjpe"]
    assert res["test_frames"]["sh"] > 1000 and res["test_frames"]["gt"] >= res["test_frames"]["sh"]


@pytest.mark.slow
def test_ablations_train_every_variant(tmp_path: Path) -> None:
    res, nb = execute("06_ablations", tmp_path)
    runs = res["runs"]
    source = code("06_ablations")
    assert runs and set(runs) == requested_runs(source)  # every variant the notebook asks for, once
    assert all(np.isfinite(r["P1*"]) and r["last_loss"] < r["first_loss"] for r in runs.values())
    assert runs["dgridconv"]["P1*"] < res["mean_pose_mpjpe"]
    assert runs["pad-c"]["params"] < runs["dgridconv"]["params"] < runs["pad-crcr"]["params"]
    bars = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(bars) == len(calls(source, "show"))  # one chart per show(): Tables 4, 5, B, D, E and Figs. 7, 8


@pytest.mark.slow
def test_learning_curves_notebook_draws_the_committed_results(tmp_path: Path) -> None:
    res, nb = execute("07_learning_curves", tmp_path)
    search = json.loads((NOTEBOOKS.parent / "benchmarks" / "results" / "recipe_search.json").read_text())
    for name, key in res["best_recipe"].items():
        mine = [r["best_val_mpjpe"] for k, r in search["runs"].items() if k.split(":", 1)[0] == name]
        assert res["best_val_mpjpe"][name] == min(mine) == search["runs"][key]["best_val_mpjpe"]
    figures = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(figures) == len(res["best_recipe"]) + 1  # one per model family, then the best of each

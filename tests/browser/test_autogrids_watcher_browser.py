"""AutoGridsWatcher in JupyterLab: the epoch slider, log toggle and live appends change the heatmap."""
from __future__ import annotations

import pytest

from .conftest import LabNotebook

SETUP = """
import numpy as np
from gridviz import AutoGridsWatcher

rng = np.random.default_rng(0)
logits = rng.normal(size=(5, 25, 17))
for e in range(5):
    logits[e, np.arange(25), (np.arange(25) + e * (np.arange(25) % 4 == 1)) % 17] += 2.0 + e
history = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
watcher = AutoGridsWatcher.from_history(history, (5, 5), "h36m17")
watcher
"""
BAD = "bad = AutoGridsWatcher.from_history(np.ones((3, 20, 17)), (5, 5), 'h36m17')\nbad"

WATCHER = ".gridviz-autogrids >> nth=0"
TITLE = f"{WATCHER} >> .js-plotly-plot .gtitle"
Z00 = "() => document.querySelector('.gridviz-autogrids .js-plotly-plot').data[0].z[0][0]"
# The hard layout (eq. 5) is the watcher's second plotly figure, drawn by figures.grid_figure.
HARD_TEXT = "n => document.querySelectorAll('.gridviz-autogrids')[n].querySelectorAll('.js-plotly-plot')[1].data[0].text.flat()"
HARD_TITLE = "n => document.querySelectorAll('.gridviz-autogrids')[n].querySelectorAll('.js-plotly-plot')[1].layout.title.text"


@pytest.fixture(scope="module")
def watcher_page(lab_notebook: LabNotebook) -> LabNotebook:
    lab_notebook.run_notebook_cells([SETUP, BAD])
    lab_notebook.page.locator(TITLE).first.wait_for()
    return lab_notebook


def title(nb: LabNotebook) -> str:
    """The heatmap title as text (plotly wraps <sup> in zero-width spaces)."""
    return nb.page.locator(TITLE).first.text_content().replace("\u200b", "")


def test_watcher_renders_latest_epoch_without_console_errors(watcher_page: LabNotebook) -> None:
    page = watcher_page.page
    assert title(watcher_page) == "Sprob at epoch 5"
    assert "cells changed since the previous epoch" in page.evaluate(HARD_TITLE, 0)
    hard = watcher_page.kernel_exec("print(' '.join(watcher.skeleton.joint_names[j] for j in watcher.hard_layout(4).ravel()))")
    assert page.evaluate(HARD_TEXT, 0) == hard.split()
    watcher_page.screenshot("autogrids_watcher")
    assert watcher_page.console_errors == []


def test_epoch_slider_changes_the_heatmap(watcher_page: LabNotebook) -> None:
    page = watcher_page.page
    z_before = page.evaluate(Z00)
    handle = page.locator(f"{WATCHER} >> .widget-slider .noUi-handle")
    handle.focus()
    for _ in range(2):
        handle.press("ArrowLeft")
    page.locator(TITLE, has_text="at epoch 3").wait_for()
    assert page.evaluate(Z00) != z_before
    page.wait_for_function(f"() => ({HARD_TITLE})(0).startsWith('Hard layout, epoch 3')")
    assert watcher_page.kernel_exec("print(watcher.slider.value, watcher.index)") == "2 2"
    z_python = float(watcher_page.kernel_exec("print(repr(float(history[2][0, 0])))"))
    assert page.evaluate(Z00) == pytest.approx(z_python)


def test_log_toggle_and_live_append_update_the_view(watcher_page: LabNotebook) -> None:
    page = watcher_page.page
    page.locator(f"{WATCHER} >> .widget-toggle-buttons button", has_text="log").click()
    page.locator(TITLE, has_text="log10").wait_for()
    watcher_page.kernel_exec("watcher.append(history[0], epoch=6)")  # what the training callback does
    page.locator(TITLE, has_text="at epoch 6").wait_for()
    assert title(watcher_page) == "log10 Sprob at epoch 6"
    assert watcher_page.kernel_exec("print(watcher.index, watcher.slider.max, watcher.log)") == "5 5 True"
    watcher_page.screenshot("autogrids_watcher_log_live")
    watcher_page.page.locator(f"{WATCHER} >> .widget-toggle-buttons button", has_text="linear").click()


def test_wrong_history_shape_is_a_visible_banner(watcher_page: LabNotebook) -> None:
    banner = watcher_page.page.locator("[data-testid=autogrids-error]")
    banner.wait_for()
    assert "S^prob snapshot has shape (20, 17), expected (25, 17)" in banner.text_content()
    banner.scroll_into_view_if_needed()
    watcher_page.screenshot("autogrids_watcher_bad_history")
    assert watcher_page.console_errors == []


def test_first_live_snapshot_reveals_the_heatmap(watcher_page: LabNotebook) -> None:
    page = watcher_page.page
    second = page.locator(".gridviz-autogrids").nth(1)
    assert not second.locator(".js-plotly-plot").first.is_visible()
    watcher_page.kernel_exec("bad.append(history[1], epoch=0)")
    second.locator(".js-plotly-plot .gtitle", has_text="at epoch 0").wait_for()
    assert second.locator("[data-testid=autogrids-error]").count() == 0
    assert len(page.evaluate(HARD_TEXT, 1)) == 25
    assert watcher_page.console_errors == []

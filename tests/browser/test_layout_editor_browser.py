"""LayoutEditor in JupyterLab: drags, palette drops, clearing, undo and bad files reach Python and show."""
from __future__ import annotations

import pytest

from .conftest import LabNotebook

# The official handcrafted 5x5 layout (with its Thorax-Nose mixture cell at (2,2)).
START = "[[7, 7, 7, 7, 7], [0, 8, 8, 8, 0], [1, 14, [8, 9], 11, 4], [2, 15, 9, 12, 5], [3, 16, 10, 13, 6]]"


def cell(r: int, c: int) -> str:
    return f"[data-testid=grid-cell-{r}-{c}]"


@pytest.fixture(scope="module")
def editor_page(lab_notebook: LabNotebook) -> LabNotebook:
    lab_notebook.run_notebook_cells([
        "from gridconv_core import GridLayout\nfrom gridviz import LayoutEditor",
        f"START = GridLayout.from_rows({START}, 'h36m17', name='handcrafted')\neditor = LayoutEditor(START)\neditor",
    ])
    lab_notebook.page.locator(cell(4, 4)).wait_for()
    return lab_notebook


@pytest.fixture()
def editor(editor_page: LabNotebook) -> LabNotebook:
    """The editor page, reset to the start layout from Python (which also checks Python -> JS sync)."""
    editor_page.kernel_exec("editor.set_layout(START); editor.message = ''")
    editor_page.page.locator("[data-testid=layout-status]", has_text="Valid layout").wait_for()
    return editor_page


def test_editor_renders_without_console_errors(editor: LabNotebook) -> None:
    page = editor.page
    assert page.locator("[data-testid^=grid-cell-]").count() == 25
    assert page.locator("[data-testid^=palette-joint-]").count() == 17
    assert page.locator(cell(2, 2)).text_content().endswith("Thorax+Nose\u00d7")
    assert "eq. 2 keeps" in page.locator("[data-testid=layout-status]").text_content()
    page.locator(cell(3, 2)).hover()  # highlights Nose in the skeleton sketch
    page.locator("[data-testid=skeleton-joint-9].gle-hot").wait_for()
    editor.screenshot("layout_editor_valid")
    assert editor.console_errors == []


RENDERS = "() => Number(document.querySelector('[data-testid=layout-editor]').dataset.renders)"


def test_one_python_edit_is_one_render_and_hover_stays_in_the_page(editor: LabNotebook) -> None:
    page = editor.page
    page.wait_for_timeout(300)  # let the reset's render settle
    before = page.evaluate(RENDERS)
    editor.kernel_exec("editor.swap((4, 2), (4, 0))")  # cells, verdict and history change in one message
    page.locator(cell(4, 0), has_text="Head").wait_for()
    page.wait_for_timeout(300)
    assert page.evaluate(RENDERS) == before + 1
    page.locator(cell(4, 0)).hover()  # hovering restyles only: no render, nothing sent to the kernel
    page.locator("[data-testid=skeleton-joint-10].gle-hot").wait_for()
    assert page.evaluate(RENDERS) == before + 1
    assert "gle-hover" in page.locator(cell(4, 0)).get_attribute("class")
    assert editor.kernel_exec("print(sorted(editor.keys))").count("hover") == 0


def test_drag_between_cells_swaps_in_python(editor: LabNotebook) -> None:
    page = editor.page
    page.drag_and_drop(cell(2, 0), cell(2, 4))
    page.locator(cell(2, 0), has_text="LHip").wait_for()
    assert editor.kernel_exec("print(editor.cells[2][0], editor.cells[2][4], editor.layout.cells[2][0])") == "4 1 (4,)"
    assert page.locator("[data-testid=layout-undo]").is_enabled()


def test_palette_drop_adds_a_replica(editor: LabNotebook) -> None:
    page = editor.page
    page.drag_and_drop("[data-testid=palette-joint-13]", cell(0, 0))
    page.locator(cell(0, 0), has_text="LWrist").wait_for()
    assert editor.kernel_exec("print(editor.cells[0][0], int(editor.layout.occurrences[13]), editor.valid)") == "13 2 True"
    assert "\u00d72" in page.locator("[data-testid=palette-joint-13]").text_content()


def test_clearing_the_only_head_is_shown_as_invalid_then_undone(editor: LabNotebook) -> None:
    page = editor.page
    page.locator(cell(4, 2)).hover()
    page.locator("[data-testid=cell-clear-4-2]").click()
    status = page.locator("[data-testid=layout-status]")
    status.filter(has_text="Invalid layout").wait_for()
    problems = page.locator("[data-testid=layout-problems]").text_content()
    assert "empty cells: (4,2)" in problems and "10 Head" in problems
    assert "gle-invalid" in page.locator(cell(4, 2)).get_attribute("class")
    assert "missing" in page.locator("[data-testid=palette-joint-10]").text_content()
    assert editor.kernel_exec("print(editor.valid)") == "False"
    page.mouse.move(5, 5)
    editor.screenshot("layout_editor_invalid")
    page.locator("[data-testid=layout-undo]").click()
    status.filter(has_text="Valid layout").wait_for()
    assert editor.kernel_exec("print(editor.valid, editor.cells[4][2])") == "True 10"


def test_malformed_upload_shows_a_message_and_keeps_the_layout(editor: LabNotebook) -> None:
    page = editor.page
    page.set_input_files("[data-testid=layout-upload-input]",
                         files=[{"name": "broken.json", "mimeType": "application/json", "buffer": b'{"cells": [[0, 99'}])
    message = page.locator("[data-testid=layout-message]")
    message.filter(has_text="Could not load broken.json").wait_for()
    assert "malformed layout JSON" in message.text_content()
    assert editor.kernel_exec("print(editor.cells == START.to_dict()['cells'])") == "True"
    editor.screenshot("layout_editor_bad_file")
    assert editor.console_errors == []


def test_shape_and_skeleton_dropdowns_reach_python(editor: LabNotebook) -> None:
    page = editor.page
    page.select_option("[data-testid=layout-rows]", "6")
    page.locator(cell(5, 4)).wait_for()
    assert editor.kernel_exec("print(editor.shape, editor.cells[5], editor.valid)") == "[6, 5] [-1, -1, -1, -1, -1] False"
    assert page.locator("[data-testid=grid-cell-5-0].gle-invalid").count() == 1  # empty cells derived in the page
    assert "empty cells: (5,0)" in page.locator("[data-testid=layout-problems]").text_content()
    page.select_option("[data-testid=layout-skeleton]", "coco17")
    page.locator("[data-testid=palette-joint-16]", has_text="RAnkle").wait_for()
    assert editor.kernel_exec("print(editor.skeleton_name, editor.valid)") == "coco17 True"
    page.locator("[data-testid=layout-undo]").click()
    page.locator("[data-testid=palette-joint-16]", has_text="RWrist").wait_for()
    assert editor.kernel_exec("print(editor.skeleton_name, editor.shape)") == "h36m17 [6, 5]"


def test_save_button_downloads_the_layout_json_from_python(editor: LabNotebook) -> None:
    import json
    from pathlib import Path

    page = editor.page
    with page.expect_download() as download:
        page.locator("[data-testid=layout-download]").click()
    assert download.value.suggested_filename == "layout_h36m17.json"
    saved = json.loads(Path(download.value.path()).read_text())
    assert saved["cells"] == json.loads(editor.kernel_exec("print(editor.layout_json)"))["cells"]
    assert editor.console_errors == []

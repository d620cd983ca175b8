"""GridGraphView, AttentionViewer and PoseViewer in JupyterLab: they render, react to the page and to Python."""
from __future__ import annotations

import pytest

from .conftest import LabNotebook

GRAPH = ".gridviz-graph-view"
ATTENTION = ".gridviz-attention-viewer"
POSES = ".gridviz-pose-viewer"

CELLS = [
    "import numpy as np, torch\n"
    "from gridconv_core import GLNConfig, build_model\nfrom gridconv_core.data import generate_poses\n"
    "from gridconv_core.layout_families import handcrafted\n"
    "from gridviz import AttentionViewer, GridGraphView, LayoutEditor, PoseViewer",
    "editor = LayoutEditor(handcrafted())\nview = GridGraphView()\nview.link(editor)\nview",
    "torch.manual_seed(0)\nmodel = build_model(GLNConfig(channels=16))\nposes = generate_poses(12, seed=0)\n"
    "att = AttentionViewer(model, poses.pose2d[:6], labels=list(poses.sequence[:6]))\natt",
    "vanilla = AttentionViewer(build_model(GLNConfig(model='gridconv', channels=16)), poses.pose2d[:2])\nvanilla",
    "noise = np.random.default_rng(0).normal(0, 0.03, tuple(poses.pose3d.shape))  # stands in for predictions\n"
    "pv = PoseViewer(poses.pose2d, poses.pose3d, poses.pose3d.numpy() + noise, actions=poses.sequence)\npv",
]


@pytest.fixture(scope="module")
def views(lab_notebook: LabNotebook) -> LabNotebook:
    lab_notebook.run_notebook_cells(CELLS)
    for selector in (GRAPH, ATTENTION, POSES):
        lab_notebook.page.locator(f"{selector} .js-plotly-plot").first.wait_for()
    return lab_notebook


def test_graph_view_renders_and_follows_the_editor(views: LabNotebook) -> None:
    page = views.page
    page.locator(f"{GRAPH} .legendtext", has_text="skeleton edge kept (16)").wait_for()
    assert "long-distance" in page.locator(f"{GRAPH} [data-testid=graph-summary]").text_content()
    assert not any("lost" in t for t in page.locator(f"{GRAPH} .legendtext").all_text_contents())
    page.locator(GRAPH).scroll_into_view_if_needed()
    views.screenshot("graph_view_handcrafted", GRAPH)
    views.kernel_exec("editor.swap((4, 2), (4, 0))")  # Head <-> RAnkle: two skeleton edges lost
    page.locator(f"{GRAPH} .legendtext", has_text="skeleton edge lost (2)").wait_for()
    page.locator(GRAPH).get_by_role("button", name="8-neighbourhood").click()
    page.locator(f"{GRAPH} .gtitle", has_text="8-neighbourhood").wait_for()
    assert views.kernel_exec("print(view.diagonal)") == "True"
    views.screenshot("graph_view_swapped_8n", GRAPH)
    assert views.console_errors == []


def test_attention_viewer_renders_and_its_controls_reach_python(views: LabNotebook) -> None:
    page = views.page
    root = page.locator(ATTENTION).first
    root.scroll_into_view_if_needed()
    root.locator(".hm image").wait_for()
    views.screenshot("attention_viewer_sample", ATTENTION)
    root.locator("select").first.select_option("w2")
    root.locator(".gtitle", has_text="w2:").wait_for()
    root.get_by_role("button", name="variance").click()
    root.locator("[data-testid=attention-ranking]").wait_for()
    assert views.kernel_exec("print(att.layer, att.mode)") == "w2 variance"
    views.screenshot("attention_viewer_variance", ATTENTION)
    assert views.console_errors == []


def test_attention_viewer_without_attention_shows_a_banner(views: LabNotebook) -> None:
    vanilla = views.page.locator(ATTENTION).nth(1)
    banner = vanilla.locator("[data-testid=gridviz-banner]", has_text="no kernel attention")
    banner.wait_for()
    assert "static GridConv" in banner.text_content()
    assert not vanilla.locator(".js-plotly-plot").is_visible()  # no empty figure under the banner
    assert vanilla.locator("select").first.is_disabled()
    assert views.kernel_exec("print(vanilla.maps, vanilla.layer, 'no kernel attention' in vanilla.message)") == "{} None True"
    banner.scroll_into_view_if_needed()
    views.screenshot("attention_viewer_vanilla", f"{ATTENTION} >> nth=1")


def test_pose_viewer_renders_and_the_slider_moves_frames(views: LabNotebook) -> None:
    page = views.page
    root = page.locator(POSES)
    root.scroll_into_view_if_needed()
    root.locator("canvas").first.wait_for()
    assert views.kernel_exec("print(pv.index)") == "0"
    root.locator(".noUi-handle").focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('.gridviz-pose-viewer .widget-readout').textContent === '3'")
    root.locator(".gtitle", has_text="#3").wait_for()
    assert views.kernel_exec("print(pv.index)") == "3"
    page.wait_for_timeout(500)
    views.screenshot("pose_viewer", POSES)
    assert views.console_errors == []


CAMERA = "() => JSON.stringify(document.querySelector('.gridviz-pose-viewer .js-plotly-plot')._fullLayout.scene.camera.eye)"
GT_X = "() => JSON.stringify(Array.from(document.querySelector('.gridviz-pose-viewer .js-plotly-plot').data[3].x))"


def test_pose_viewer_keeps_a_rotated_camera_when_the_frame_changes(views: LabNotebook) -> None:
    import json

    page = views.page
    root = page.locator(POSES)
    root.scroll_into_view_if_needed()
    root.locator("canvas").first.wait_for()
    before = json.loads(page.evaluate(CAMERA))
    box = root.locator(".js-plotly-plot").bounding_box()
    x, y = box["x"] + box["width"] * 0.72, box["y"] + box["height"] * 0.5  # inside the 3D scene (right column)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 160, y + 40, steps=12)  # orbit the 3D view
    page.mouse.up()
    page.wait_for_function(f"() => ({CAMERA})() !== {json.dumps(json.dumps(before))}")
    rotated = json.loads(page.evaluate(CAMERA))
    assert abs(rotated["x"] - before["x"]) + abs(rotated["y"] - before["y"]) > 0.1
    frame, gt_x = int(views.kernel_exec("print(pv.frame)")), page.evaluate(GT_X)
    root.locator(".noUi-handle").focus()
    page.keyboard.press("ArrowRight")
    page.locator(".gridviz-pose-viewer .gtitle", has_text=f"#{frame + 1}").wait_for()
    page.wait_for_timeout(500)
    assert page.evaluate(GT_X) != gt_x  # the traces did move to the new frame
    kept = json.loads(page.evaluate(CAMERA))
    for axis in "xyz":
        assert kept[axis] == pytest.approx(rotated[axis], abs=1e-6), f"camera reset on a frame change: {kept}"
    python_eye = views.kernel_exec("e = pv.figure.layout.scene.camera.eye; print(e.x, e.y, e.z)")
    assert [float(v) for v in python_eye.split()] == pytest.approx([rotated[a] for a in "xyz"], abs=1e-6)
    views.screenshot("pose_viewer_rotated", POSES)
    assert views.console_errors == []

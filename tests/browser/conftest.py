"""Real-browser test harness: JupyterLab driven by Playwright on Debian's Chromium.

Every test here carries the ``browser`` marker and skips with a clear reason when the Python
package ``playwright`` or ``/usr/bin/chromium`` is missing (``playwright install`` is never run).

Fixtures (use them from any ``tests/browser/test_*.py``):

``lab`` (session)
    A :class:`LabServer`: ``python -m jupyterlab`` on a free loopback port, with a random token,
    a temporary root dir and private runtime/settings dirs (no news toast, no stale workspace).
    Stopped (kernels shut down, process group killed) at the end of the session.
``browser`` (session)
    A headless Playwright Chromium launched from ``/usr/bin/chromium``.
``lab_notebook`` (module)
    A :class:`LabNotebook`: one browser page for the whole test module. Typical use::

        def test_x(lab_notebook):
            lab_notebook.run_notebook_cells(["import gridviz", "w = gridviz.LayoutEditor()\\nw"])
            lab_notebook.page.locator("[data-testid=grid-cell-0-0]").click()
            assert lab_notebook.kernel_exec("print(w.cells[0][0])") == "0"
            lab_notebook.screenshot("layout_editor")        # artifacts/screenshots/layout_editor.png
            assert lab_notebook.console_errors == []

    ``run_notebook_cells(cells)`` writes a notebook, opens it, runs all cells from the Run menu and
    waits until every cell has executed (it fails, showing the traceback, when a cell raises);
    ``kernel_exec(code)`` runs code in that notebook's kernel over a separate ``jupyter_client``
    connection and returns its stdout (so Python-side state is read without touching the page);
    ``console_errors`` collects browser console errors and uncaught page errors.
"""
from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
LAB_START_TIMEOUT_S = 60
CELL_TIMEOUT_MS = 90_000


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/browser as ``browser`` and skip them all when the stack is absent."""
    reason = None
    if importlib.util.find_spec("playwright") is None:
        reason = "the playwright Python package is not installed (pip install playwright; never `playwright install`)"
    elif not CHROMIUM.is_file():
        reason = f"Debian's Chromium is not at {CHROMIUM} (apt-get install chromium)"
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LabServer:
    """A running JupyterLab: ``url`` (no trailing slash), ``token``, notebook ``root``, ``runtime`` dir."""

    url: str
    token: str
    root: Path
    runtime: Path
    process: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str, method: str = "GET") -> Any:
        """JSON from the server's REST API (``path`` like ``/api/sessions``)."""
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def kernel_id(self, notebook: str) -> str:
        """Id of the kernel attached to ``notebook`` (a path relative to ``root``)."""
        for session in self.api("/api/sessions"):
            if session["path"] == notebook:
                return str(session["kernel"]["id"])
        raise LookupError(f"no kernel session for {notebook}; open sessions: {self.api('/api/sessions')}")


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """Start JupyterLab on a free loopback port with a temp root dir and a token; stop it afterwards."""
    base = tmp_path_factory.mktemp("lab")
    root, runtime, settings = base / "root", base / "runtime", base / "settings"
    for d in (root, runtime, settings / "@jupyterlab" / "apputils-extension"):
        d.mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime), "JUPYTER_CONFIG_DIR": str(base / "config")}
    log = base / "lab.log"
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
        f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={base / 'workspaces'}",
        "--allow-root",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
                                   start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}", token, root, runtime, process, log)
    deadline = time.monotonic() + LAB_START_TIMEOUT_S
    while True:
        try:
            server.api("/api/status")
            break
        except (urllib.error.URLError, ConnectionError, OSError):
            if process.poll() is not None or time.monotonic() > deadline:
                os.killpg(process.pid, signal.SIGTERM)
                pytest.fail(f"JupyterLab did not start in {LAB_START_TIMEOUT_S}s:\n{log.read_text()[-2000:]}")
            time.sleep(0.3)
    yield server
    for kernel in server.api("/api/kernels"):
        server.api(f"/api/kernels/{kernel['id']}", method="DELETE")
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's, via ``executable_path``) under Playwright's sync API."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class LabNotebook:
    """One JupyterLab page plus the notebook it runs; see the module docstring for an example."""

    lab: LabServer
    page: Any
    console_errors: list[str] = field(default_factory=list)
    notebook: str = ""

    def run_notebook_cells(self, cells: list[str], name: str | None = None) -> None:
        """Write ``cells`` as a notebook, open it, Run All Cells, and wait until all have executed.

        A previous notebook of this page has its kernel shut down first.
        """
        self.shutdown_kernel()
        self.notebook = name or f"nb_{secrets.token_hex(4)}.ipynb"
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
        nbformat.write(nb, self.lab.root / self.notebook)
        page = self.page
        page.goto(f"{self.lab.url}/lab/tree/{self.notebook}?token={self.lab.token}&reset")
        # The toolbar indicator alone raced the first kernel start; the status bar text did not.
        page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=CELL_TIMEOUT_MS)
        page.locator(".lm-MenuBar").get_by_text("Run", exact=True).click()
        page.locator(".lm-Menu").get_by_text("Run All Cells", exact=True).click()
        page.wait_for_function(
            """n => {
                const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')];
                return prompts.length === n && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
            }""",
            arg=len(cells),
            timeout=CELL_TIMEOUT_MS,
        )
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        tracebacks = [t for t in errors.all_text_contents() if "Traceback" in t or "Error" in t.split("\n")[0]]
        if tracebacks:
            raise AssertionError(f"a notebook cell raised:\n{tracebacks[0][-2000:]}")

    def kernel_exec(self, code: str, timeout: float = 30) -> str:
        """Run ``code`` in the notebook's kernel via a separate jupyter_client connection; return stdout."""
        from jupyter_client import BlockingKernelClient

        client = BlockingKernelClient(connection_file=str(self.lab.runtime / f"kernel-{self.lab.kernel_id(self.notebook)}.json"))
        client.load_connection_file()
        client.start_channels()
        out: list[str] = []
        errors: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            content = msg["content"]
            if msg["msg_type"] == "stream" and content["name"] == "stdout":
                out.append(content["text"])
            elif msg["msg_type"] == "error":
                errors.append(f"{content['ename']}: {content['evalue']}")

        try:
            client.wait_for_ready(timeout=timeout)
            client.execute_interactive(code, output_hook=hook, timeout=timeout, store_history=False)
        finally:
            client.stop_channels()
        if errors:
            raise AssertionError(f"kernel_exec({code!r}) raised {errors[0]}")
        return "".join(out).strip()

    def shutdown_kernel(self) -> None:
        """Stop the kernel of the current notebook, if one runs."""
        if not self.notebook:
            return
        try:
            self.lab.api(f"/api/kernels/{self.lab.kernel_id(self.notebook)}", method="DELETE")
        except LookupError:
            pass

    def screenshot(self, name: str, selector: str | None = None) -> Path:
        """Save ``artifacts/screenshots/<name>.png`` of the page, or of one element when ``selector`` is given."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        if selector:
            self.page.locator(selector).first.screenshot(path=str(path))
        else:
            self.page.screenshot(path=str(path))
        return path


@pytest.fixture(scope="module")
def lab_notebook(lab: LabServer, browser: Any) -> Iterator[LabNotebook]:
    """A fresh browser context and JupyterLab page for one test module, collecting console errors."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    session = LabNotebook(lab, page)
    page.on("console", lambda msg: session.console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: session.console_errors.append(f"page error: {err}"))
    yield session
    session.shutdown_kernel()
    context.close()

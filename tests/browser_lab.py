"""What the real-browser tests share (tests/test_browser.py, tests/test_study_browser.py):
Debian's Chromium and Playwright (``browser_tools``: skipped without them, failed on CI),
JupyterLab on 127.0.0.1 with private settings (``jupyterlab``), and the page helpers that wait for
the kernel and for a new image.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CNN_HELPER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
ON_CI = os.environ.get("CI", "").lower() == "true"
UPDATE_TIMEOUT_S = 30   # one control change until the new image is shown
NOTEBOOK_JS = "window.jupyterapp && window.jupyterapp.shell.currentWidget"


def missing_tools() -> list[str]:
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (apt-get install chromium; `make debian-deps` does it as "
                       "root)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package (pip install playwright; it is in the "
                       "`test` extra)")
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        missing.append("jupyterlab (pip install jupyterlab; it is in the `test` extra)")
    return missing


@pytest.fixture(scope="module")
def browser_tools():
    missing = missing_tools()
    if missing:
        why = "the browser test needs " + " and ".join(missing)
        if ON_CI:
            pytest.fail(why + " (CI=true: the test must run on CI)")
        pytest.skip(why)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_json(path: Path, content: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))


def _lab_command(work: Path, port: int, token: str, settings: Path) -> list:
    return [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.open_browser=False",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
            "--ServerApp.allow_root=True", "--LabApp.expose_app_in_browser=True",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={work / 'lab-workspaces'}", "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly"]


def _wait_for_lab(proc, url: str, token: str, log_path: Path):
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"JupyterLab did not answer on {url} within 60 s")
        time.sleep(0.5)


@contextlib.contextmanager
def jupyterlab(work: Path, artifacts: Path):
    """JupyterLab serving ``work`` on a free port with a random token, its config, data, settings
    and the package's caches private to ``work`` (every cell stays in the page: no virtual
    scrolling; no news or update checks); its log in ``artifacts``. Yields (url, token)."""
    settings = work / "lab-settings"
    write_json(settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
               {"windowingMode": "none"})
    write_json(settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
               {"fetchNews": "false", "checkForUpdates": False})
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(work / "jupyter-config"),
               JUPYTER_DATA_DIR=str(work / "jupyter-data"),
               JUPYTER_RUNTIME_DIR=str(work / "jupyter-runtime"),
               CNN_HELPER_CACHE=str(work / "cnn-helper-cache"),
               KERAS_HOME=str(work / "keras-home"), MPLBACKEND="Agg")
    artifacts.mkdir(parents=True, exist_ok=True)
    log = open(artifacts / "jupyterlab.log", "w")
    proc = subprocess.Popen(_lab_command(work, port, token, settings), cwd=work, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for_lab(proc, url, token, artifacts / "jupyterlab.log")
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# --------------------------------------------------------------------------- page helpers


def wait_image(page, selector: str, old_src: str | None = None) -> str:
    """Wait until ``selector`` shows a loaded image (another one than ``old_src``); return its
    src."""
    page.wait_for_function("""([sel, old]) => {
        const img = document.querySelector(sel);
        return img && img.src && img.src !== old && img.complete && img.naturalWidth > 0; }""",
                           arg=[selector, old_src], timeout=UPDATE_TIMEOUT_S * 1000)
    return page.eval_on_selector(selector, "img => img.src")


def wait_idle(page):
    """Wait until the kernel has handled every message (the explorer's update ran to its end)."""
    page.wait_for_function(f"() => {NOTEBOOK_JS}.sessionContext.session.kernel.status === 'idle'",
                           timeout=UPDATE_TIMEOUT_S * 1000)


def run_all(page, what: str, timeout_s: float, artifacts: Path):
    """Clear the notebook's outputs and run every cell; wait (at most ``timeout_s``) for the last
    cell to print Done, else save a screenshot to ``artifacts`` and fail with the errors shown."""
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    try:
        page.wait_for_function(f"""() => {{
            const cells = {NOTEBOOK_JS}.content.widgets;
            const last = cells[cells.length - 1];
            return last.outputArea && last.outputArea.node.textContent.includes("Done"); }}""",
                               timeout=timeout_s * 1000)
    except Exception as e:
        page.screenshot(path=str(artifacts / f"{what}_failed.png"), full_page=True)
        raise AssertionError(f"{what}: the notebook did not run to its last cell; errors "
                             "shown:\n" + errors(page)) from e


def errors(page) -> str:
    """The text of every stderr output and error the notebook shows (the last 3,000 characters)."""
    shown = page.locator(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'],"
        " .jp-RenderedText[data-mime-type='application/vnd.jupyter.error']")
    return "\n".join(shown.all_inner_texts())[-3000:]

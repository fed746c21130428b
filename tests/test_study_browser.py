"""The class experiment's explorer in a real browser: JupyterLab, Debian's Chromium, Playwright.

As tests/test_browser.py does for the explorers (with the helpers of tests/browser_lab.py):
JupyterLab serves a small notebook that makes 8 trials and shows ``cnnh.study_explorer``; the
test enters a name, answers by clicking and by pressing keys, and finds every answer in the
SQLite file. Halfway it restarts the kernel (a forced restart: the kernel process is killed and
started again) and runs the notebook again: the answers given before are all in the file and the
explorer goes on at trial 5. A screenshot of every screen goes to test-artifacts/study/.
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from browser_lab import (
    CHROMIUM,
    CHROMIUM_ARGS,
    NOTEBOOK_JS,
    ROOT,
    browser_tools,  # noqa: F401 (a fixture)
    jupyterlab,
    run_all,
    wait_idle,
    wait_image,
)

ARTIFACTS = ROOT / "test-artifacts" / "study"
SCREENS = Path(os.environ.get("CNN_HELPER_STUDY_SCREENS", ARTIFACTS))
SOURCE = [
    "import cnn_helper\n",
    "from cnn_helper import study\n",
    "cnnh = cnn_helper.CNN_Helper(data_source='bundled', weights='shipped', verbose=False)\n",
    "ts = study.trials(cnnh.model(), cnnh.x_test, ['conv1', 'conv3'], units_per_layer=1,\n",
    "                  conditions=tuple(study.CONDITIONS), visualization_steps=8, seed=0)\n",
    "explorer = cnnh.study_explorer(ts, 'class.sqlite')\n",
    "explorer",
]


def _notebook(path: Path):
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
              "source": source} for source in (SOURCE, ["print('Done')"])]
    path.write_text(json.dumps({"cells": cells, "metadata": {"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}))


@pytest.fixture(scope="module")
def lab(browser_tools, tmp_path_factory):  # noqa: F811 (the fixture imported above)
    """JupyterLab serving the study notebook (private config, data, settings); yields (url,
    token, the folder that will hold class.sqlite)."""
    work = tmp_path_factory.mktemp("study-lab")
    _notebook(work / "Study.ipynb")
    with jupyterlab(work, ARTIFACTS) as (url, token):
        yield url, token, work


# --------------------------------------------------------------------------- page helpers

EX = ".cnnh-study-explorer"
TRIAL = f"{EX} img.cnnh-trial"
RUN_TIMEOUT_S = 240     # import TensorFlow, scan, 9 feature visualizations, draw the first screen


def _shot(page, name: str):
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)                                   # painted
    page.locator(EX).screenshot(path=str(SCREENS / f"{name}.png"), animations="disabled")


def _start(page, name: str):
    page.locator(f"{EX} .cnnh-name input").wait_for()
    _shot(page, "study_0_start")
    page.locator(f"{EX} .cnnh-name input").fill(name)
    page.locator(f"{EX} .cnnh-start").click()


def _answer(page, number: int, act):
    """Wait for trial ``number``'s screen, screenshot it, answer with ``act()``; wait for the
    next screen (or the end)."""
    src = wait_image(page, TRIAL)
    page.wait_for_function("([sel, text]) => document.querySelector(sel).textContent === text",
                           arg=[f"{EX} .cnnh-progress", f"trial {number} of 8"], timeout=30_000)
    _shot(page, f"study_{number}_trial")
    page.wait_for_timeout(200)                 # the explorer ignores answers within 0.3 s
    act()
    page.wait_for_function("""([sel, old]) => {
        const img = document.querySelector(sel), done = document.querySelector(".cnnh-done");
        return (done && done.textContent.includes("answered")) || (img && img.src !== old); }""",
                           arg=[TRIAL, src], timeout=30_000)
    wait_idle(page)


def _rows(work: Path) -> list:
    db = sqlite3.connect(work / "class.sqlite")
    return db.execute("SELECT participant, trial, choice, confidence, seconds FROM answers "
                      "ORDER BY id").fetchall()


def _click(page, choice: int, confidence: int):
    return lambda: page.locator(f"{EX} .cnnh-answer-{choice}-{confidence}").click()


def _key(page, key: str):
    return lambda: page.keyboard.press(key)


def test_students_answer_by_click_and_key_and_a_restart_loses_nothing(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    url, token, work = lab
    outside = []

    def check_request(request):
        if not (request.url.startswith(url + "/") or request.url.startswith(("blob:", "data:"))):
            outside.append(request.url)

    with sync_playwright() as p, \
            p.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True,
                args=CHROMIUM_ARGS, viewport={"width": 1200, "height": 1200}) as ctx:
        ctx.on("request", check_request)
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{url}/lab/tree/Study.ipynb?token={token}")
        page.wait_for_function(f"() => {NOTEBOOK_JS} && {NOTEBOOK_JS}.sessionContext"
                               f" && {NOTEBOOK_JS}.sessionContext.session"
                               f" && {NOTEBOOK_JS}.sessionContext.session.kernel", timeout=90_000)
        page.evaluate(f"async () => {{ await {NOTEBOOK_JS}.sessionContext.ready;"
                      f" await {NOTEBOOK_JS}.revealed; }}")
        run_all(page, "first_run", RUN_TIMEOUT_S, ARTIFACTS)
        _start(page, "ada")
        answers = [_click(page, 0, 3), _key(page, "6"), _click(page, 1, 1), _key(page, "2")]
        for number, act in enumerate(answers, 1):
            _answer(page, number, act)
        before = _rows(work)
        assert [(r[2], r[3]) for r in before] == [(0, 3), (1, 3), (1, 1), (0, 2)]

        # the forced restart: the kernel process is killed and a new one started
        page.evaluate(f"async () => {{ await {NOTEBOOK_JS}.sessionContext.session.kernel"
                      ".restart(); }")
        assert _rows(work) == before, "every answer given before the restart is in the file"
        run_all(page, "after_restart", RUN_TIMEOUT_S, ARTIFACTS)
        _start(page, "ada")
        rest = [_key(page, "1"), _click(page, 1, 2), _key(page, "4"), _click(page, 0, 1)]
        for number, act in enumerate(rest, 5):
            _answer(page, number, act)
        page.locator(f"{EX} .cnnh-done").wait_for()
        _shot(page, "study_9_done")
        assert "All 8 trials answered" in page.locator(EX).inner_text()
        kinds = page.evaluate(f"() => {NOTEBOOK_JS}.content.widgets.map(c => c.model.type)")
        assert kinds == ["code", "code"], "the keys must not act on the notebook as well"

    rows = _rows(work)
    assert rows[:4] == before and len(rows) == 8
    assert {r[0] for r in rows} == {"ada"} and len({r[1] for r in rows}) == 8
    assert [(r[2], r[3]) for r in rows[4:]] == [(0, 3), (1, 2), (1, 1), (0, 1)]
    assert all(r[4] >= 0.3 for r in rows)
    assert not outside, f"the page made requests outside 127.0.0.1: {outside[:10]}"

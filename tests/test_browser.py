"""The explorers in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium headless, Playwright.

The test copies notebooks/Explorers.ipynb (and Latex_macros.ipynb) into a temporary folder, starts
JupyterLab there on a free port with a random token, opens the notebook in headless Chromium,
clears the stored outputs and runs every cell, then drives the explorers like an instructor:
choose another layer, type another patch size (and a bad one), choose another filter, draw a stroke
on the drawing pad with the mouse (then erase part of it and ask for the occlusion map). Each time
it asserts that the PNG the browser shows changed (the bytes of the <img>, fetched in the page, and
a screenshot of the explorer); on the drawing pad, that both the probabilities and the maps did.
Every request the page makes must stay on 127.0.0.1 (the widget manager comes from
jupyterlab_widgets and the pad's JavaScript from the package, through anywidget: no CDN).

Screenshots go to test-artifacts/browser/ (git-ignored; CI keeps the folder as artifacts).

Needs /usr/bin/chromium (Debian's ``chromium`` package) and the ``playwright`` Python package; it
never downloads a browser. Without them the test is skipped, except on CI (CI=true), where it fails.
"""
from __future__ import annotations

import base64
import shutil
import time

import pytest
from browser_lab import (
    CHROMIUM,
    CHROMIUM_ARGS,
    NOTEBOOK_JS,
    ROOT,
    UPDATE_TIMEOUT_S,
    browser_tools,  # noqa: F401 (a fixture)
    jupyterlab,
    run_all,
    wait_idle,
    wait_image,
)

ARTIFACTS = ROOT / "test-artifacts" / "browser"
RUN_TIMEOUT_S = 180     # clear outputs and run every cell (imports TensorFlow, builds 4 explorers)


@pytest.fixture(scope="module")
def lab(browser_tools, tmp_path_factory):  # noqa: F811 (the fixture imported above)
    """JupyterLab serving a copy of the notebooks, private config/data/settings; yields (url,
    token)."""
    work = tmp_path_factory.mktemp("lab")
    (work / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / "Explorers.ipynb", work / "notebooks")
    shutil.copy(ROOT / "Latex_macros.ipynb", work)
    with jupyterlab(work, ARTIFACTS) as (url, token):
        yield url, token


# --------------------------------------------------------------------------- page helpers

def _image_bytes(page, selector: str) -> bytes:
    """The bytes of the image an <img> shows (its blob: URL fetched inside the page)."""
    b64 = page.evaluate("""async (sel) => {
        const img = document.querySelector(sel);
        const buf = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
        let s = "";
        for (let i = 0; i < buf.length; i += 8192)
            s += String.fromCharCode(...buf.subarray(i, i + 8192));
        return btoa(s); }""", selector)
    return base64.b64decode(b64)


def _change(page, name: str, explorer: str, image: str, act):
    """Screenshot ``explorer``, do ``act()``, wait for ``image`` to change; assert it changed."""
    box = page.locator(explorer)
    box.scroll_into_view_if_needed()
    src = wait_image(page, image)
    before = _image_bytes(page, image)
    shot_before = box.screenshot(path=str(ARTIFACTS / f"{name}_before.png"), animations="disabled")
    act()
    wait_image(page, image, src)
    wait_idle(page)             # every image of the explorer redrawn
    page.wait_for_timeout(300)   # and painted
    after = _image_bytes(page, image)
    shot_after = box.screenshot(path=str(ARTIFACTS / f"{name}_after.png"), animations="disabled")
    assert before[:8] == after[:8] == b"\x89PNG\r\n\x1a\n", "the widget should show PNG images"
    assert after != before, f"{name}: the image bytes did not change"
    assert shot_after != shot_before, f"{name}: the rendered explorer did not change"


def test_explorers_render_and_react(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    url, token = lab
    outside = []

    def check_request(request):
        u = request.url
        if not (u.startswith(url + "/") or u.startswith(("blob:", "data:"))):
            outside.append(u)

    with sync_playwright() as p, \
            p.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True,
                args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1600}) as ctx:
        ctx.on("request", check_request)
        t0 = time.monotonic()
        stamp = lambda what: print(f"[browser test] {what}: {time.monotonic() - t0:.1f} s")  # noqa: E731
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{url}/lab/tree/notebooks/Explorers.ipynb?token={token}")
        page.wait_for_function(f"() => {NOTEBOOK_JS} && {NOTEBOOK_JS}.sessionContext"
                               f" && {NOTEBOOK_JS}.sessionContext.session"
                               f" && {NOTEBOOK_JS}.sessionContext.session.kernel", timeout=90_000)
        page.evaluate(f"async () => {{ await {NOTEBOOK_JS}.sessionContext.ready;"
                      f" await {NOTEBOOK_JS}.revealed; }}")
        stamp("JupyterLab loaded, kernel ready")
        run_all(page, "run_all", RUN_TIMEOUT_S, ARTIFACTS)
        stamp("every cell ran")
        page.screenshot(path=str(ARTIFACTS / "notebook_after_run.png"), full_page=True)

        # the feature explorer: another layer redraws the maps, the top-9 and the patches
        fe = ".cnnh-feature-explorer"
        for image in ("img.cnnh-maps", "img.cnnh-top", "img.cnnh-patches"):
            wait_image(page, f"{fe} {image}")
        _change(page, "feature_explorer_layer", fe, f"{fe} img.cnnh-patches",
                lambda: page.select_option(f"{fe} .cnnh-layer select", label="conv3"))
        _change(page, "feature_explorer_channel", fe, f"{fe} img.cnnh-patches",
                lambda: _keys(page, f"{fe} .cnnh-channel .noUi-handle", ["ArrowRight"]))

        # the occlusion explorer: another patch size redraws the map; a bad one shows a message
        oe = ".cnnh-occlusion-explorer"
        _change(page, "occlusion_explorer_patch", oe, f"{oe} img.cnnh-occlusion",
                lambda: _type(page, f"{oe} .cnnh-patch input", "9"))
        _type(page, f"{oe} .cnnh-patch input", "40")
        page.wait_for_function("""(sel) => document.querySelector(sel).textContent
                                                   .includes("larger than the image")""",
                               arg=f"{oe} .cnnh-message", timeout=UPDATE_TIMEOUT_S * 1000)
        page.locator(oe).screenshot(path=str(ARTIFACTS / "occlusion_explorer_bad_patch.png"))

        # the convolution explorer: another teaching filter redraws input / filter / output
        ce = ".cnnh-convolution-explorer"
        _change(page, "convolution_explorer_filter", ce, f"{ce} img.cnnh-convolution",
                lambda: page.select_option(f"{ce} .cnnh-filter select", label="L"))
        _draw_on_the_pad(page)
        page.screenshot(path=str(ARTIFACTS / "notebook_end.png"), full_page=True)
        stamp("explorers driven")

    assert not outside, f"the page made requests outside 127.0.0.1: {outside[:10]}"


def _panel_columns(png: bytes) -> dict:
    """The pixel columns of the drawing pad's panels in its PNG: {"bars": array, "maps": array},
    located from the axes of ``plot.panels.DrawingPanels`` (the figure the PNG shows)."""
    import io

    import numpy as np
    from PIL import Image

    from cnn_helper.plot.panels import DrawingPanels

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)
    view = DrawingPanels(10, (14, 14, 32), "conv2")
    width = pixels.shape[1]
    columns = {}
    for name, ax in (("bars", view.bars_ax), ("maps", view.maps_ax)):
        box = ax.get_position()                     # in figure fractions
        columns[name] = pixels[:, int(box.x0 * width) + 2:int(box.x1 * width) - 2]
    return columns


def _draw_on_the_pad(page):
    """Draw a stroke across the pad with the mouse: the probabilities and the maps change; then
    erase part of it, and ask for the occlusion map."""
    de = ".cnnh-drawing-explorer"
    panels = f"{de} img.cnnh-panels"
    box = page.locator(de)
    box.scroll_into_view_if_needed()
    src = wait_image(page, panels)
    before = _image_bytes(page, panels)
    box.screenshot(path=str(ARTIFACTS / "drawing_pad_before.png"), animations="disabled")
    pad = page.locator(f"{de} canvas.cnnh-pad-canvas").bounding_box()

    def stroke(points):
        page.mouse.move(pad["x"] + points[0][0] * pad["width"],
                        pad["y"] + points[0][1] * pad["height"])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(pad["x"] + x * pad["width"], pad["y"] + y * pad["height"], steps=12)
        page.mouse.up()

    stroke([(0.15, 0.55), (0.5, 0.5), (0.85, 0.55)])        # a bar across the middle
    src = wait_image(page, panels, src)
    wait_idle(page)
    page.wait_for_timeout(300)
    after = _image_bytes(page, panels)
    box.screenshot(path=str(ARTIFACTS / "drawing_pad_after_stroke.png"), animations="disabled")
    old, new = _panel_columns(before), _panel_columns(after)
    for name in ("bars", "maps"):
        assert (old[name] != new[name]).any(), f"the drawing pad's {name} did not change"

    page.locator(f"{de} .cnnh-tool button", has_text="eraser").click()
    stroke([(0.45, 0.3), (0.55, 0.8)])                       # erase a vertical band
    wait_image(page, panels, src)
    wait_idle(page)
    page.locator(f"{de} .cnnh-occlude").click()
    wait_image(page, f"{de} img.cnnh-occlusion")
    wait_idle(page)
    page.wait_for_timeout(300)
    box.screenshot(path=str(ARTIFACTS / "drawing_pad_erased_and_occlusion.png"),
                   animations="disabled")
    assert "predicted" in page.locator(de).inner_text()


def _keys(page, selector: str, keys):
    """Focus a control (e.g. a slider's handle) and press keys on it, as a user does."""
    handle = page.locator(selector)
    handle.focus()
    for key in keys:
        handle.press(key)


def _type(page, selector: str, text: str):
    """Type into a number box and commit it (Enter), as a user does."""
    box = page.locator(selector)
    box.fill(text)
    box.press("Enter")

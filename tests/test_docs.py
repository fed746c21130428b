"""The docs site (``make docs``: docs/build_docs.py) builds without a single warning, and its
formulas render offline in a real browser.

The build: every public module gets an API page (pdoc, from the docstrings; a docstring pdoc
cannot render or a module it cannot import fails), the guide's Markdown pages get theirs, and links
between guide pages point at pages that exist. The browser (Debian's Chromium, headless, driven by
Playwright; see tests/test_browser.py) opens every page from disk with every request off the
machine refused: each page that has a formula shows it typeset by KaTeX (the vendored copy, with
the lectures' macros from Latex_macros.ipynb), with no KaTeX error (an undefined macro, a double
superscript) and no formula left as raw LaTeX (``\\(``, ``$$``, ``:math:``).
"""
import html
import importlib.util
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CNN_HELPER_CHROMIUM", "/usr/bin/chromium")
ON_CI = os.environ.get("CI", "").lower() == "true"
RAW_MATH = re.compile(r"\\\(|\\\[|\$\$|:math:")
# the page's text with code, source listings and typeset formulas taken out
PAGE_STATE = """() => {
    const main = document.querySelector("main.pdoc").cloneNode(true);
    main.querySelectorAll(".pdoc-code, pre, code, .katex").forEach(e => e.remove());
    return {typeset: document.querySelectorAll("main.pdoc .katex").length,
            errors: Array.from(document.querySelectorAll(".katex-error"),
                               e => e.title + " in " + e.textContent),
            text: main.textContent};
}"""


def _builder():
    spec = importlib.util.spec_from_file_location("build_docs", ROOT / "docs" / "build_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    builder = _builder()
    out = tmp_path_factory.mktemp("site")
    return builder, out, builder.build(out)


def test_the_site_builds_without_warnings(site):
    builder, out, problems = site
    modules = builder.public_modules()
    assert {"cnn_helper.saliency", "cnn_helper.drawing", "cnn_helper.widgets.drawing",
            "cnn_helper.plot.panels", "cnn_helper.cli_explain"} <= set(modules)
    assert not any("._" in m for m in modules)                 # private modules stay out
    assert problems == []
    pages = {p.relative_to(out).as_posix() for p in out.rglob("*.html")}
    assert {"index.html", "api/cnn_helper.html", "api/cnn_helper/saliency.html",
            "api/cnn_helper/widgets/drawing.html", "guide/lectures.html", "guide/own_model.html",
            "guide/trusting_a_map.html", "guide/faster_occlusion.html", "guide/scale_out.html",
            "guide/cli.html", "guide/vocabulary.html"} <= pages
    saliency_page = (out / "api" / "cnn_helper" / "saliency.html").read_text()
    assert "grad_cam" in saliency_page and "Selvaraju" in saliency_page   # its docstrings
    assert "cdn" not in saliency_page.lower() and "katex/katex.min.js" in saliency_page
    assert f'version:"{builder.KATEX_VERSION}"' in (out / "katex" / "katex.min.js").read_text()
    assert len(list((out / "katex" / "fonts").glob("*.woff2"))) == 20


def test_the_macros_are_the_lectures():
    macros = _builder().latex_macros()
    assert macros[r"\x"] == r"\mathbf{x}" and macros[r"\ip"] == "^{(i)}"
    assert {r"\y", r"\X", r"\w", r"\loss", r"\llp", r"\idx"} <= set(macros)


def test_formulas_are_kept_from_markdown():
    builder = _builder()
    rst = ("A set :math:`\\{\\x^{(i)} | y = 8\\}` and a role over two lines, :math:`a *\n"
           "    b_1`.\n\n.. math::  S = \\frac{\\partial s}\n             {\\partial x} \\\\ t\n")
    protected = builder.protect_rst_math(rst)
    assert ":math:" not in protected and ".. math::" not in protected and "\\" not in protected
    assert html.unescape(protected) == ("A set \\( \\{\\x^{(i)} | y = 8\\} \\) and a role over two "
                                        "lines, \\( a * b_1 \\).\n\n"
                                        "\\[ S = \\frac{\\partial s} {\\partial x} \\\\ t \\]\n")
    markdown = "A $y_{(l),k}$ here, `$HOME` and\n```bash\necho $x $y\n```\n$$\\y$$"
    assert html.unescape(builder.protect_markdown_math(markdown)) == (
        "A \\( y_{(l),k} \\) here, `$HOME` and\n```bash\necho $x $y\n```\n\\[ \\y \\]")


def _browser():
    missing = [] if os.access(CHROMIUM, os.X_OK) else [f"{CHROMIUM} (apt-get install chromium)"]
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("the playwright Python package (in the `test` extra)")
    if missing:
        why = "the docs' browser test needs " + " and ".join(missing)
        if ON_CI:
            pytest.fail(why + " (CI=true: the test must run on CI)")
        pytest.skip(why)
    return sync_playwright


def _formula_pages(out: Path) -> list:
    """The site's pages that hold a formula (as the build writes it: ``\\(`` or ``\\[``)."""
    return sorted(p for p in out.rglob("*.html")
                  if re.search(r"&#92;&#40;|&#92;&#91;", p.read_text()))


def test_every_formula_renders_offline_in_a_real_browser(site):
    _, out, _ = site
    pages = _formula_pages(out)
    names = {p.relative_to(out).as_posix() for p in pages}
    assert {"index.html", "guide/vocabulary.html", "api/cnn_helper/saliency.html",
            "api/cnn_helper/max_activation.html"} <= names
    with _browser()() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        off_machine = []
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
            "file:") else (off_machine.append(route.request.url), route.abort()))
        faults = {}
        for path in pages:
            page.goto(path.as_uri(), wait_until="load")
            state = page.evaluate(PAGE_STATE)
            raw = [m.group() for m in re.finditer(r".{0,30}(" + RAW_MATH.pattern + r").{0,30}",
                                                  state["text"])]
            if not state["typeset"] or state["errors"] or raw:
                faults[path.relative_to(out).as_posix()] = (state["typeset"], state["errors"][:3],
                                                            raw[:3])
        browser.close()
    assert faults == {}, "pages whose formulas do not render (KaTeX formulas, errors, raw LaTeX)"
    assert off_machine == []

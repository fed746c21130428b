"""Build cnn_helper's docs site: ``python docs/build_docs.py [OUT]`` (``make docs``, OUT docs/site).

OUT (not kept in git) gets::

    index.html      the home page (docs/index.md): links to every guide page and the API reference
    guide/*.html    the user guide, one page per docs/guide/*.md
    api/            the API reference, built from the docstrings by pdoc (one page per module)
    katex/          the maths renderer, KaTeX, vendored in docs/vendor/katex (no CDN: works offline)

Guide pages are Markdown rendered the way pdoc renders a docstring (its markdown2 extras and
templates), so the two halves look alike. Formulas are typeset in the browser by KaTeX with the
lectures' macros (``\\x``, ``\\y``, ``\\ip``, ``\\loss``, ...), read from the one place that defines
them, Latex_macros.ipynb. Docstrings write maths in reStructuredText (``:math:`...```, also over
several lines, and ``.. math::``), guide pages as ``$...$`` and ``$$...$$``. The formulas are
taken out before Markdown sees them (Markdown would eat ``\\{``, ``\\\\`` and ``*``), so KaTeX gets
exactly the LaTeX that was written.

Every warning (a docstring pdoc cannot render, a reference it cannot resolve, a module it cannot
import, a guide link to a page that does not exist) is an error: they are listed and the exit
status is 1. tests/test_docs.py builds the site the same way and opens it in a real browser.
"""
from __future__ import annotations

import contextlib
import json
import os
import pkgutil
import re
import shutil
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DEFAULT_OUT = DOCS / "site"
TEMPLATES = DOCS / "templates"
KATEX = DOCS / "vendor" / "katex"
KATEX_VERSION = "0.19.1"
MACROS_NOTEBOOK = ROOT / "Latex_macros.ipynb"
GUIDE_ORDER = ["lectures", "own_model", "trusting_a_map", "black_box", "concepts",
               "class_experiment", "faster_occlusion", "scale_out", "cli", "vocabulary",
               "development"]

_RST_DISPLAY_MATH = re.compile(r"""
    ^(?P<indent>[ ]*)\.\.[ ]+math::(?P<first>.*)
    (?P<rest>(\n|(?P=indent)[ ]+.+)*)$""", re.MULTILINE | re.VERBOSE)
_RST_INLINE_MATH = re.compile(r":math:`([^`]+)`")
_MD_CODE = re.compile(r"(^```.*?^```[ ]*$|`+[^`]*?`+)", re.MULTILINE | re.DOTALL)
_MD_MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$\n]+?)\$", re.DOTALL)


# ---- formulas: out of Markdown's reach, for KaTeX --------------------------------------------

def latex_macros(notebook=MACROS_NOTEBOOK) -> dict:
    """The lectures' macros, ``{"\\\\x": "\\\\mathbf{x}", ...}``, from Latex_macros.ipynb's
    ``\\newcommand`` lines (KaTeX's ``macros`` option)."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    source = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    lines = re.findall(r"^\\newcommand.*$", source, re.MULTILINE)
    pattern = re.compile(r"\\newcommand\{(\\[A-Za-z]+)\}\{(.*)\}[ ]*")
    unread = [line for line in lines if not pattern.fullmatch(line)]
    if unread or not lines:
        raise ValueError(f"{notebook}: cannot read the macros {unread or '(none found)'}; write "
                         "each as \\newcommand{\\name}{definition} on one line, no arguments")
    return dict(pattern.fullmatch(line).groups() for line in lines)


def formula(latex: str, display: bool) -> str:
    """``\\(latex\\)`` (``\\[latex\\]`` when ``display``) on one line, every character but letters,
    digits and spaces written as an HTML character reference: Markdown passes it through as it
    is, the browser reads it back as the LaTeX, and KaTeX finds it by its delimiters."""
    left, right = (r"\[", r"\]") if display else (r"\(", r"\)")
    text = f"{left} {' '.join(latex.split())} {right}"
    return "".join(c if c.isalnum() or c == " " else f"&#{ord(c)};" for c in text)


def protect_rst_math(docstring: str) -> str:
    """A reStructuredText docstring with its ``.. math::`` blocks and ``:math:`` roles (which may
    span lines) replaced by :func:`formula`."""
    def display(m):
        return m["indent"] + formula(m["first"] + " " + m["rest"], display=True) + "\n"

    docstring = _RST_DISPLAY_MATH.sub(display, docstring)
    return _RST_INLINE_MATH.sub(lambda m: formula(m[1], display=False), docstring)


def protect_markdown_math(text: str) -> str:
    """Markdown with its ``$$...$$`` and ``$...$`` formulas (outside code) replaced by
    :func:`formula`."""
    def outside_code(part):
        return _MD_MATH.sub(lambda m: formula(m[1] or m[2], display=m[1] is not None), part)

    parts = _MD_CODE.split(text)
    return "".join(part if i % 2 else outside_code(part) for i, part in enumerate(parts))


@contextlib.contextmanager
def math_kept_from_markdown():
    """While building the API reference, pdoc reads docstrings through :func:`protect_rst_math`
    (pdoc itself turns only one-line ``:math:`` roles into ``\\(...\\)``, and then lets Markdown
    process their backslashes)."""
    import pdoc.docstrings

    original = pdoc.docstrings.rst
    pdoc.docstrings.rst = lambda text, source_file: original(protect_rst_math(text), source_file)
    pdoc.docstrings.convert.cache_clear()
    try:
        yield
    finally:
        pdoc.docstrings.rst = original
        pdoc.docstrings.convert.cache_clear()


def configure_pdoc():
    """pdoc's renderer with our templates (KaTeX instead of MathJax from a CDN; the guide's
    pages) and the macros."""
    import pdoc.render

    pdoc.render.configure(docformat="restructuredtext", math=True, show_source=True,
                          footer_text="cnn_helper API reference", template_directory=TEMPLATES)
    pdoc.render.env.globals["katex_macros"] = json.dumps(latex_macros(), sort_keys=True)
    pdoc.render.env.globals["site_root"] = "../"     # from api/ to the site's root
    pdoc.render.env.globals["guide_pages"] = guide_pages()


# ---- the API reference -------------------------------------------------------------------------

def public_modules() -> list:
    """cnn_helper and every sub-module whose dotted name has no part starting with "_"."""
    import cnn_helper

    found = pkgutil.walk_packages(cnn_helper.__path__, "cnn_helper.")
    return ["cnn_helper"] + sorted(m.name for m in found
                                   if not any(part.startswith("_") for part in m.name.split(".")))


def specs() -> list:
    """The public modules to hand pdoc, less those it finds itself (pdoc documents the
    sub-modules of a package that has no ``__all__``; naming them again is a warning)."""
    import pdoc.extract

    named, covered = [], set()
    for name in public_modules():
        if name not in covered:
            named.append(name)
            covered.update(pdoc.extract.walk_specs([name]))
    return named


def build_api(out) -> list:
    """Write the API reference into ``out``; returns pdoc's warnings as text ([] when clean)."""
    import pdoc

    configure_pdoc()
    saved = os.environ.get("PDOC_ALLOW_EXEC")
    # our modules are safe to import: TensorFlow's import asks `uname -p` (platform.processor),
    # which pdoc otherwise blocks with a warning
    os.environ["PDOC_ALLOW_EXEC"] = "1"
    try:
        with warnings.catch_warnings(record=True) as caught, math_kept_from_markdown():
            warnings.simplefilter("always")
            pdoc.pdoc(*specs(), output_directory=Path(out))
    finally:
        if saved is None:
            del os.environ["PDOC_ALLOW_EXEC"]
        else:
            os.environ["PDOC_ALLOW_EXEC"] = saved
    return [f"{w.category.__name__}: {w.message}" for w in caught
            if not issubclass(w.category, DeprecationWarning)
            or "pdoc" in (w.filename or "")]


# ---- the guide -----------------------------------------------------------------------------------

def guide_pages() -> list:
    """``[{"name", "title", "href"}]`` of docs/guide/*.md, in reading order (GUIDE_ORDER first)."""
    paths = sorted((DOCS / "guide").glob("*.md"),
                   key=lambda p: (GUIDE_ORDER + [p.stem]).index(p.stem))
    return [{"name": p.stem, "title": page_title(p.read_text()), "href": f"guide/{p.stem}.html"}
            for p in paths]


def page_title(markdown: str) -> str:
    """The text of the first ``# `` heading."""
    found = re.search(r"^# (.+)$", markdown, re.MULTILINE)
    return found[1].strip() if found else "cnn_helper"


def local_links(markdown: str, page: Path) -> tuple:
    """(Markdown with its links to sibling ``.md`` pages pointing at their ``.html``, problems:
    links to a ``.md`` page that does not exist)."""
    problems = []

    def to_html(m):
        if not (page.parent / m["page"]).is_file():
            problems.append(f"{page.relative_to(ROOT)}: link to missing page {m['page']}")
        return f"]({m['page'][:-3]}.html{m['anchor'] or ''})"

    linked = re.sub(r"\]\((?!https?:)(?P<page>[^)#]+\.md)(?P<anchor>#[^)]*)?\)", to_html, markdown)
    return linked, problems


def render_page(source: Path, out: Path, site_root: str) -> list:
    """One Markdown page as HTML in pdoc's frame; returns its problems (broken links)."""
    import pdoc.render
    import pdoc.render_helpers

    markdown, problems = local_links(source.read_text(), source)
    html = pdoc.render_helpers.to_html(protect_markdown_math(markdown))
    page = pdoc.render.env.get_template("guide.html.jinja2").render(
        title=page_title(markdown), body=html, toc=html.toc_html or "", site_root=site_root,
        current=source.stem)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return problems


def build_guide(site: Path) -> list:
    """The home page and the guide's pages into ``site``; returns their problems."""
    problems = render_page(DOCS / "index.md", site / "index.html", site_root="")
    for page in guide_pages():
        problems += render_page(DOCS / "guide" / f"{page['name']}.md",
                                site / page["href"], site_root="../")
    return problems


def copy_katex(site: Path):
    """The vendored KaTeX files into ``site/katex``."""
    shutil.rmtree(site / "katex", ignore_errors=True)
    shutil.copytree(KATEX, site / "katex", ignore=shutil.ignore_patterns("README.md"))


def build(out=DEFAULT_OUT) -> list:
    """The whole site into ``out``; returns every warning and problem as text ([] when clean)."""
    out = Path(out)
    problems = build_api(out / "api")
    copy_katex(out)
    return problems + build_guide(out)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else DEFAULT_OUT
    problems = build(out)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} warning(s): the docs must build without any", file=sys.stderr)
        return 1
    print(f"docs: {out / 'index.html'} (API reference: {out / 'api' / 'cnn_helper.html'})")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())

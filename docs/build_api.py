"""Build cnn_helper's API reference from its docstrings (pdoc): ``python docs/build_api.py [OUT]``.

Writes HTML pages (one per public module, and ``index.html``) into OUT (default: docs/api, not
kept in git; ``make docs`` runs this). Every warning pdoc gives (a docstring it cannot render, a
reference it cannot resolve, a module it cannot import) is an error: they are listed and the
exit status is 1. tests/test_docs.py builds it the same way into a temporary folder.

Docstrings are reStructuredText (``:math:``, ``.. math::``, ``:func:``); formulas are rendered by
MathJax when the page is opened with internet access, and stay readable as LaTeX without.
"""
from __future__ import annotations

import os
import pkgutil
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "api"


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


def build(out=DEFAULT_OUT) -> list:
    """Write the reference into ``out``; returns pdoc's warnings as text ([] when clean)."""
    import pdoc
    import pdoc.render

    pdoc.render.configure(docformat="restructuredtext", math=True, show_source=True,
                          footer_text="cnn_helper API reference")
    saved = os.environ.get("PDOC_ALLOW_EXEC")
    # our modules are safe to import: TensorFlow's import asks `uname -p` (platform.processor),
    # which pdoc otherwise blocks with a warning
    os.environ["PDOC_ALLOW_EXEC"] = "1"
    try:
        with warnings.catch_warnings(record=True) as caught:
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


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else DEFAULT_OUT
    problems = build(out)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} warning(s): the API reference must build without any",
              file=sys.stderr)
        return 1
    print(f"API reference: {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())

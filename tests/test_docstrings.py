"""Docstrings read as written: no control characters. A backslash in a non-raw docstring is an
escape, so ``\\alpha`` in ``:math:`` becomes a bell character and ``help()`` shows ``\\x07lpha``;
a docstring with backslashes is a raw string (r\"\"\"...\"\"\")."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cnn_helper"


def docstrings(source: str) -> list:
    """(line, text) of every string statement: the docstrings of modules, classes and functions,
    and those written under a constant or a field."""
    return [(node.lineno, node.value.value) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)]


def control_characters(text: str) -> list:
    """The characters below 0x20 in ``text``, other than the newline, as their escapes."""
    return [repr(c) for c in text if ord(c) < 0x20 and c != "\n"]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_docstrings_have_no_control_characters(path):
    found = [(line, control_characters(text)) for line, text in docstrings(path.read_text())]
    bad = [(line, chars) for line, chars in found if chars]
    assert not bad, f"{path.name}: docstrings with control characters (line, characters): {bad}"


def test_the_finder_sees_an_escape_in_a_plain_docstring_and_not_in_a_raw_one():
    plain = 'def f():\n    """the :math:`\\alpha`-norm"""\n'
    raw = 'def f():\n    r"""the :math:`\\alpha`-norm"""\n'
    assert control_characters(docstrings(plain)[0][1]) == ["'\\x07'"]
    assert control_characters(docstrings(raw)[0][1]) == []

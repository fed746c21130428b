"""The code is read by students: ruff is clean, functions and modules stay short, and tests go
through the public API (a private name only where the line says it documents an internal
contract)."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest
from module_imports import is_private, uses

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cnn_helper"
MAX_FUNCTION_LINES = 50
MAX_MODULE_LINES = 500
LONG_MARK = "# longer than 50 lines:"      # a function may be longer if this comment says why
INTERNAL_MARK = "# internal contract"


def package_files():
    return sorted(PACKAGE.rglob("*.py"))


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", package_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_functions_and_modules_are_short(path):
    lines = path.read_text().splitlines()
    assert len(lines) <= MAX_MODULE_LINES, f"{path.name} has {len(lines)} lines"
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = node.end_lineno - first + 1
            explained = LONG_MARK in lines[first - 2] if first >= 2 else False
            assert length <= MAX_FUNCTION_LINES or explained, \
                f"{path.name}:{node.lineno} {node.name} has {length} lines"


def private_uses(source: str) -> list:
    """(first line, last line) of each statement part that uses a private cnn_helper name: an
    import of a private module or name, or an attribute ``x._name`` of a name imported from
    cnn_helper (the finder of tests/module_imports.py)."""
    return sorted({(use.first, use.last) for use in uses(source)
                   if is_private(use.name) or (use.imported and any(
                       is_private(part) for part in use.module.split(".")))})


@pytest.mark.parametrize("path", sorted((ROOT / "tests").glob("*.py")), ids=lambda p: p.name)
def test_tests_use_the_public_api(path):
    """The mark may stand on the statement's lines or on the line above it."""
    source = path.read_text()
    lines = source.splitlines()
    undocumented = [lines[first - 1].strip() for first, last in private_uses(source)
                    if not any(INTERNAL_MARK in line for line in lines[max(first - 2, 0):last])]
    assert not undocumented, f"private names without '{INTERNAL_MARK}': {undocumented}"


def test_the_private_use_finder_finds_private_uses():
    source = ("from cnn_helper import saliency as S, _graph\n"
              "S._STEPS\n"
              "S.gradient\n"
              "x.__class__\n"
              "import cnn_helper.plot\n"
              "cnn_helper.plot.core._squeeze\n"
              "from cnn_helper._checks import is_int\n"
              "_graph.memo\n")
    assert [first for first, _ in private_uses(source)] == [1, 2, 6, 7]

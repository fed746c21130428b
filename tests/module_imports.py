"""What Python sources take from the ``cnn_helper`` package, read with ``ast`` (nothing is
imported): the finder behind tests/test_code_style.py (tests use the public API) and
tests/test_module_graph.py (no import cycle, no private name taken from another module).

A *use* is one name taken from a cnn_helper module: by an import statement (``from .x import y``,
``import cnn_helper.x``) or as an attribute (``x.y``, where ``x`` is bound to a cnn_helper name by
an import). Relative imports are resolved against the module that makes them.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

PACKAGE = "cnn_helper"


class Use(NamedTuple):
    """``module.name`` taken at lines ``first``..``last``: by an import statement (``imported``),
    inside a function (``lazy``) or not; ``module`` is an absolute dotted name ("" for ``import
    cnn_helper`` itself)."""

    module: str
    name: str
    first: int
    last: int
    imported: bool
    lazy: bool

    @property
    def full(self) -> str:
        """The dotted name of what was taken, e.g. "cnn_helper.plot.core"."""
        return f"{self.module}.{self.name}" if self.module else self.name


def is_private(name: str) -> bool:
    """One leading underscore, not a dunder: ``_graph``, ``_check`` (not ``__init__``)."""
    return name.startswith("_") and not name.startswith("__")


def in_package(name: str, package: str = PACKAGE) -> bool:
    """Whether the dotted ``name`` is ``package`` or inside it."""
    return name == package or name.startswith(package + ".")


def package_sources(root: Path, package: str = PACKAGE) -> dict:
    """{dotted module name: (source, is_package)} for every .py file of the package under
    ``root``; a package's ``__init__.py`` is the module named like the package."""
    sources = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        sources[name] = (path.read_text(), is_package)
    return sources


def resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import ...`` written in ``module``."""
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _lazy_imports(tree) -> set:
    """The ids of the import statements inside a function (run when it is called)."""
    functions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
    return {id(inner) for node in ast.walk(tree) if isinstance(node, functions)
            for inner in ast.walk(node) if isinstance(inner, (ast.Import, ast.ImportFrom))}


def _import_uses(tree, module: str, is_package: bool, package: str):
    """(uses by import statements, {local name: dotted name it is bound to})."""
    lazy, found, bound = _lazy_imports(tree), [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = resolve(module, is_package, node.level, node.module)
            if not in_package(source, package):
                continue
            for alias in node.names:
                found.append(Use(source, alias.name, node.lineno, node.end_lineno, True,
                                 id(node) in lazy))
                bound[alias.asname or alias.name] = f"{source}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if not in_package(alias.name, package):
                    continue
                parent, _, name = alias.name.rpartition(".")
                found.append(Use(parent, name, node.lineno, node.end_lineno, True,
                                 id(node) in lazy))
                top = alias.name.split(".")[0]
                bound[alias.asname or top] = alias.name if alias.asname else top
    return found, bound


def _dotted(node, bound: dict) -> str | None:
    """The dotted name ``node`` (a name or a chain of attributes) stands for, when its first
    name is bound by an import; None otherwise."""
    if isinstance(node, ast.Name):
        return bound.get(node.id)
    if isinstance(node, ast.Attribute):
        value = _dotted(node.value, bound)
        return None if value is None else f"{value}.{node.attr}"
    return None


def uses(source: str, module: str = "", is_package: bool = False,
         package: str = PACKAGE) -> list:
    """Every use of a name of ``package`` in ``source`` (the code of ``module``), imports first.

    Bindings are per file, not per scope: a name imported anywhere in the file counts wherever
    it is read (an approximation that errs on the side of finding a use).
    """
    tree = ast.parse(source)
    found, bound = _import_uses(tree, module, is_package, package)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            value = _dotted(node.value, bound)
            if value is not None:
                found.append(Use(value, node.attr, node.lineno, node.end_lineno, False, False))
    return found

"""The import graph of ``cnn_helper``, read from its sources with ``ast`` (nothing is imported).

Two rules keep the modules layered, so that a student can read them bottom up:

1. No import cycle. Every import counts: at module level and inside a function (a lazy import
   only hides a cycle until the function runs). An edge goes from the importing module to what
   it imports: ``from .x import y`` to ``x`` (or to ``x.y`` when that is a module: ``from .
   import x`` imports the module ``x``); a package's ``__init__`` is the module named like the
   package. Importing a module also runs the ``__init__`` of every package above it that the
   importer is not itself inside, so that is an edge too (``saliency`` importing ``plot.core``
   runs ``plot/__init__``). A module's own packages are not: Python initialises a package
   before any of its modules, so an ``__init__`` that re-exports its own submodules is no
   cycle with them. A submodule that takes a *name* from its own package's ``__init__``
   (``from . import helper_function``, ``from .. import CNN_Helper``) does make that edge: the
   ``__init__`` imports it, it imports the ``__init__``: a cycle.
2. No module takes a private name (one leading underscore) from another cnn_helper module:
   neither ``from .x import _y`` nor ``x._y`` with ``x`` bound to a cnn_helper module by an
   import. Private *modules* (``_graph``, ``_checks``, ``plot._common``) may be imported: their
   names without an underscore are what they offer the rest of the package.
"""
from collections import deque
from pathlib import Path

import pytest
from module_imports import is_private, package_sources, uses

ROOT = Path(__file__).resolve().parent.parent
SOURCES = package_sources(ROOT)


def _enclosing(module: str, is_package: bool) -> set:
    """The packages ``module`` is inside (a package is inside itself): already initialised
    whenever the module runs."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + (1 if is_package else 0))}


def _targets(use, importer: str, is_package: bool, modules) -> list:
    """The modules an import ``use`` made in ``importer`` runs: what it names, and the packages
    above that which ``importer`` is not inside."""
    target = use.full if use.full in modules else use.module
    if target not in modules:
        return []
    parts = target.split(".")
    above = {".".join(parts[:i]) for i in range(1, len(parts))} & set(modules)
    return [target] + sorted(above - _enclosing(importer, is_package))


def import_graph(sources: dict) -> dict:
    """{module: {imported module: (line, lazy) of its first import}} over ``sources``
    ({dotted name: (source, is_package)})."""
    graph = {name: {} for name in sources}
    for name, (source, is_package) in sources.items():
        for use in uses(source, name, is_package):
            if not use.imported:
                continue
            for target in _targets(use, name, is_package, sources):
                if target != name:
                    graph[name].setdefault(target, (use.first, use.lazy))
    return graph


def _reachable(graph: dict, start: str) -> set:
    """Every module an import chain from ``start`` reaches."""
    seen, todo = set(), list(graph[start])
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module])
    return seen


def _shortest_cycle(graph: dict, start: str) -> list:
    """The modules of a shortest import chain from ``start`` back to ``start`` (breadth first)."""
    came_from, todo = {}, deque([start])
    while todo:
        module = todo.popleft()
        for target in graph[module]:
            if target == start:
                path = [module]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [start] + path[::-1][1:] + [start]
            if target not in came_from:
                came_from[target] = module
                todo.append(target)
    return []


def _show_cycle(graph: dict, path: list) -> str:
    """``a --line 3--> b --line 9, in a function--> a``."""
    text = path[0]
    for a, b in zip(path, path[1:]):
        line, lazy = graph[a][b]
        text += f" --line {line}{', in a function' if lazy else ''}--> {b}"
    return text


def cycles(sources: dict) -> list:
    """One shortest cycle (as text) per group of modules that import each other, with the other
    modules of the group."""
    graph = import_graph(sources)
    reach = {module: _reachable(graph, module) for module in graph}
    found, done = [], set()
    for module in sorted(graph):
        if module in done or module not in reach[module]:
            continue
        group = {m for m in reach[module] if module in reach[m]}
        done |= group
        path = _shortest_cycle(graph, module)
        others = sorted(group - set(path))
        found.append(_show_cycle(graph, path) + (f" (and {others})" if others else ""))
    return found


def private_names_taken(sources: dict, module: str) -> list:
    """"line: module._name" for each private name ``module`` takes from another module of
    ``sources``; importing a (private) module itself is fine."""
    source, is_package = sources[module]
    return [f"line {use.first}: {use.full}" for use in uses(source, module, is_package)
            if use.module in sources and use.module != module and is_private(use.name)
            and use.full not in sources]


def test_no_import_cycle():
    found = cycles(SOURCES)
    assert not found, "import cycles:\n" + "\n".join(found)


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_no_module_takes_a_private_name_from_another(module):
    taken = private_names_taken(SOURCES, module)
    assert not taken, f"{module} takes private names: {taken}"


# --------------------------------------------------------------------------- the finder itself


def _package(**modules) -> dict:
    """Synthetic sources: ``pkg__sub="..."`` is cnn_helper.pkg.sub; a name ending in ``__init``
    is that package's ``__init__``."""
    sources = {}
    for key, source in modules.items():
        is_package = key.endswith("__init")
        parts = ["cnn_helper"] + [p for p in key.split("__") if p not in ("", "init")]
        sources[".".join(parts)] = (source, is_package)
    return sources


def test_the_cycle_finder_finds_cycles():
    lazy = _package(__init="", a="from . import b\n",
                    b="def f():\n    from .a import g\n")
    assert cycles(lazy) == ["cnn_helper.a --line 1--> cnn_helper.b "
                            "--line 2, in a function--> cnn_helper.a"]
    own_init = _package(__init="", plot__init="from .core import show\nHELP = 1\n",
                        plot__core="from . import HELP\n")
    assert cycles(own_init) == ["cnn_helper.plot --line 1--> cnn_helper.plot.core "
                                "--line 1--> cnn_helper.plot"]
    through_init = _package(__init="", saliency="from .plot import core\n", plot__core="",
                            plot__init="from . import core, layers\n",
                            plot__layers="from .. import saliency\n")
    assert len(cycles(through_init)) == 1
    assert "cnn_helper.saliency --line 1--> cnn_helper.plot" in cycles(through_init)[0]


def test_the_cycle_finder_accepts_layered_code():
    layered = _package(__init="from .plot import show\nfrom . import saliency\n",
                       saliency="import numpy\nfrom . import _checks\nfrom .plot import core\n",
                       _checks="from __future__ import annotations\n",
                       plot__init="from .core import show\nfrom . import layers\n",
                       plot__core="from .. import _checks\n",
                       plot__layers="from . import core\nfrom .core import show\n")
    assert cycles(layered) == []


def test_the_private_name_finder_finds_private_names():
    sources = _package(__init="_SECRET = 1\n", _checks="", plot__core="_x = 1\n",
                       plot__init="", a="from .plot.core import _x, show\n",
                       b="from .plot import core\nimport cnn_helper.plot.core as c\n"
                         "core._x, core.show, c._x\n",
                       c="def f():\n    from . import _SECRET\n",
                       plot__layers="from .. import _checks\n_checks._y, _checks.z\n")
    found = {m: private_names_taken(sources, m) for m in sources}
    assert found["cnn_helper.a"] == ["line 1: cnn_helper.plot.core._x"]
    assert found["cnn_helper.b"] == ["line 3: cnn_helper.plot.core._x"] * 2
    assert found["cnn_helper.c"] == ["line 2: cnn_helper._SECRET"]
    assert found["cnn_helper.plot.layers"] == ["line 2: cnn_helper._checks._y"]


def test_the_private_name_finder_accepts_private_modules_and_own_names():
    sources = _package(__init="from . import _checks\nfrom ._checks import BATCH_SIZE\n",
                       _checks="BATCH_SIZE = 1\ndef _shapes():\n    pass\n_shapes()\n",
                       a="import cnn_helper._checks\nfrom . import _checks as c\n"
                         "c.BATCH_SIZE, cnn_helper._checks.BATCH_SIZE, x._private\n"
                         "result._replace()\n")
    assert all(private_names_taken(sources, m) == [] for m in sources)

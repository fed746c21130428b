"""The one cache: whatever the package builds for a model (a compiled step, a clone, a functional
twin, the model's program) is kept per model and dies with it."""
from __future__ import annotations

import weakref

MEMO: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
"""{model: {key: what was built}}; an entry goes when its model is garbage collected."""


def memo(owner, key, build):
    """``build()`` once per (owner, key), kept while ``owner`` (a model) lives.

    What ``build`` returns must not hold ``owner`` itself (only its layers, sub-models or weights),
    or the entry would keep the model alive.

    >>> memo(model, ("auto batch size",), lambda: choose(model))     # built once per model
    """
    cache = MEMO.setdefault(owner, {})
    if key not in cache:
        cache[key] = build()
    return cache[key]

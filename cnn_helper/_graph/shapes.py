"""The output shape of each layer call, as the graph recorded it or, where a nested model of free
input size recorded None, as tracing the model on its input's shape finds it."""
from __future__ import annotations

from .. import _checks
from . import compiled
from .cache import memo
from .inputs import input_shape
from .lookup import find_layer
from .traversal import has_graph, program, run


def checked_names(model, layers) -> list:
    """The "outer/inner" names of ``layers`` (names, paths or layer objects), each checked to be
    called in ``model``'s graph."""
    names = ["/".join(layer.name for layer in find_layer(model, one))
             for one in _checks.layer_list(layers)]
    called = program(model).shapes
    for name in names:
        if name not in called:
            parent = find_layer(model, name)[-2] if "/" in name else None
            why = (f"; {parent.name!r} is a subclassed model, whose inner calls are not known"
                   if parent is not None and not has_graph(parent) else "")
            raise ValueError(
                f"layer {name!r} is not called in the graph of model {model.name!r}{why}")
    return names


def _traced_shapes(model) -> dict:
    """{path name: output shape} found by tracing the model on its input's shape: exact where a
    nested model of free input size recorded None."""
    shapes = {}

    def record(x):
        for name, y in run(program(model), [x]).items():
            first = y[0] if isinstance(y, (list, tuple)) else y
            shapes[name] = tuple(first.shape[1:])
        return x

    compiled.trace(record, model)
    return shapes


def output_shape(model, layer) -> tuple:
    """Shape (without batch axis) of the output of ``layer`` on the model's input.

    >>> output_shape(model, "conv2")
    (14, 14, 32)
    """
    name, = checked_names(model, [layer])
    shape = program(model).shapes[name]
    if None in shape and None not in input_shape(model):
        shape = memo(model, ("traced shapes",), lambda: _traced_shapes(model))[name]
    return shape

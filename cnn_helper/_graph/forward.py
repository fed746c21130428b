"""The forward pass to any layers: ``tap`` runs the model's program up to the last layer asked
for; ``forward`` is it compiled."""
from __future__ import annotations

from . import compiled
from .cache import memo
from .inputs import model_input
from .shapes import checked_names
from .traversal import program, run


def tap(model, layers):
    """The function x -> [y_(l) for each of ``layers``] (a list, always), in inference mode.

    It runs the model's own layers (sharing its weights) call by call, nested models entered, up
    to the last layer asked for; ``x`` is cast to the model's input dtype first, as the model
    does.

    >>> conv2, logits = tap(model, ["conv2", "logits"])(x)
    """
    from keras import ops

    names = checked_names(model, layers)
    found, dtype = program(model), model_input(model).dtype

    def outputs(x):
        named = run(found, [ops.cast(x, dtype)], frozenset(names))
        return [named[name] for name in names]

    return outputs


def forward(model, layers):
    """``tap`` compiled: one ``tf.function`` per (model, layers) for float32 batches of any size.

    >>> conv2, logits = forward(model, ["conv2", "logits"])(x)
    """
    key = ("forward",) + tuple(checked_names(model, layers))
    return memo(model, key, lambda: compiled.for_batches(tap(model, layers), model))

"""The one model override (private): a clone of the user's model with some layers replaced.

Guided backpropagation and the deconvnet replace the backward pass of every ReLU; the receptive
field's linear twin makes every activation linear and every max an average. All three are
``clone_with(model, policy)``: ``keras.models.clone_model`` (nested functional and Sequential
models are entered), each layer offered to ``policy.replace``, the weights copied layer by layer.
The clone is built once per (model, policy) and its weights are refreshed from the model on every
call (one compiled copy), so a model trained since is seen as it is now. The user's model is never
touched.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import _graph
from ._layers import relu_of  # noqa: F401  (kept here for the callers of _override.relu_of)


@dataclass(frozen=True)
class Policy:
    """What to change in a clone.

    name    : names the clone (one clone per model and policy name)
    replace : (layer, config) -> the layer (or, for an operation node such as ``s + h``, any
              callable taking the node's arguments, e.g. a function of keras.ops) to put in its
              place, or None to rebuild it as it is;
              ``config`` is ``layer.get_config()``, a fresh dict the function may edit
    """

    name: str
    replace: Callable


class NotClonable(TypeError):
    """A model the override cannot rebuild (a subclassed model inside it, an odd layer)."""


def _clone_function(policy: Policy, changed: list):
    import keras

    def clone(layer):
        if isinstance(layer, keras.Model):   # functional/Sequential ones are cloned recursively
            raise NotClonable(
                f"{policy.name} cannot look inside layer {layer.name!r}, a subclassed "
                f"{type(layer).__name__}: only functional and Sequential models (and models "
                "nested from them) can have their layers replaced")
        config = layer.get_config()
        new = policy.replace(layer, config)
        if new is None:
            return layer.__class__.from_config(config)
        changed.append(layer.name)
        return new

    return clone


def _weight_pairs(model, clone) -> list:
    """(clone variable, model variable) for every layer that kept its weights' shapes."""
    import keras

    originals = {name: path[-1] for name, path in _graph.walk(model)}
    pairs = []
    for name, path in _graph.walk(clone):
        layer, source = path[-1], originals.get(name)
        if source is None or isinstance(layer, keras.Model):
            continue
        if [w.shape for w in layer.weights] == [w.shape for w in source.weights]:
            pairs += [(mine.value, theirs.value)
                      for mine, theirs in zip(layer.weights, source.weights)]
    return pairs


def _build(model, policy: Policy):
    """(clone, names of the replaced layers, compiled weight copy)."""
    import keras
    import tensorflow as tf

    changed = []
    try:
        clone = keras.models.clone_model(_graph.graph_model(model),
                                         clone_function=_clone_function(policy, changed),
                                         recursive=True)
    except NotClonable:
        raise
    except Exception as e:   # a layer that cannot be rebuilt from its config
        raise NotClonable(f"cannot clone model {model.name!r} for {policy.name} "
                          f"({type(e).__name__}: {e}); only functional and Sequential Keras "
                          "models are supported") from e
    pairs = _weight_pairs(model, clone)

    @tf.function(autograph=False)
    def copy_weights():
        for mine, theirs in pairs:
            mine.assign(theirs)

    return clone, tuple(changed), copy_weights


def clone_with(model, policy: Policy):
    """The clone of ``model`` changed by ``policy``, with the model's current weights."""
    clone, _, copy_weights = _graph.memo(model, ("clone", policy.name),
                                         lambda: _build(model, policy))
    copy_weights()
    return clone


def replaced_layers(model, policy: Policy) -> tuple:
    """Names of the layers ``policy`` replaced in the clone of ``model``."""
    return _graph.memo(model, ("clone", policy.name), lambda: _build(model, policy))[1]

"""The one model override (private): a clone of the user's model with some layers replaced.

Guided backpropagation and the deconvnet replace the backward pass of every ReLU; the receptive
field's linear twin makes every activation linear and every max an average; the sanity checks
randomize the weights of a copy. All are ``clone_with(model, policy)``:
``keras.models.clone_model`` (nested functional and Sequential models are entered, and a nested
subclassed model through its functional twin, as the model's program enters it), each layer
offered to ``policy.replace``, the others rebuilt from their config, the weights copied layer by
layer. A layer without weights that cannot be rebuilt (a ``Lambda`` of a Python lambda) is the
model's own layer, called again in the clone. The clone is built once per (model, policy) and its
weights are refreshed from the model on every call (one compiled copy), so a model trained since
is seen as it is now. The user's model and its weights are never changed.
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
    """A model the override cannot rebuild: a nested subclassed model whose call() cannot be
    traced, or a layer with weights that cannot be rebuilt from its config."""


def _config(layer):
    """``layer.get_config()``, or None for a layer that has none (a custom layer whose
    ``__init__`` takes values Keras cannot serialize)."""
    try:
        return layer.get_config()
    except Exception:
        return None


def _rebuilt(layer, config, model_name: str, policy: Policy):
    """``layer`` rebuilt from ``config`` (new weights, copied from the model later).

    A layer that cannot be rebuilt (a ``Lambda`` of a Python lambda, which Keras refuses to
    deserialize; a custom layer without a config) is the model's own layer object, called again
    in the clone's graph, when it holds no weights: there is nothing to copy and nothing the
    policy can change in it. One with weights is refused: the clone must not share them (the
    randomization copy changes its weights)."""
    why = "it has no config"
    if config is not None:
        try:
            return layer.__class__.from_config(config)
        except Exception as e:
            why = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
    if not getattr(layer, "weights", ()):
        return layer
    raise NotClonable(
        f"cannot copy model {model_name!r} for {policy.name}: layer {layer.name!r} "
        f"({type(layer).__name__}) cannot be rebuilt from its config ({why}) and holds weights, "
        "which the copy must not share with your model. Give the layer's class a get_config() "
        "that returns its __init__ arguments (and a from_config() where they are not plain "
        "values)")


def _entered(nested, clone):
    """The clone of a subclassed model ``nested`` inside the model: its functional twin (the
    layers its call() calls, ``_graph.graph_model``) cloned by ``clone``, named as ``nested`` so
    that its layers keep their "outer/inner" names."""
    import keras

    try:
        twin = _graph.graph_model(nested)
    except TypeError as e:
        raise NotClonable(f"cannot look inside layer {nested.name!r}, a subclassed "
                          f"{type(nested).__name__}: {e}") from e
    copy = keras.models.clone_model(twin, clone_function=clone, recursive=True)
    return keras.Model(copy.inputs, copy.outputs, name=nested.name)


def _clone_function(model_name: str, policy: Policy, changed: list):
    """The function Keras' ``clone_model`` calls on each layer and operation (functional and
    Sequential nested models are entered by Keras itself, subclassed ones through their twin):
    the policy's replacement, or the layer rebuilt as it is."""
    import keras

    def clone(layer):
        if isinstance(layer, keras.Model):
            return _entered(layer, clone)
        config = _config(layer)
        new = None if config is None else policy.replace(layer, config)
        if new is None:
            return _rebuilt(layer, config, model_name, policy)
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
        clone = keras.models.clone_model(
            _graph.graph_model(model), clone_function=_clone_function(model.name, policy, changed),
            recursive=True)
    except NotClonable:
        raise
    except Exception as e:   # a replacement or a rebuilt layer that does not fit the graph
        raise NotClonable(f"cannot copy model {model.name!r} for {policy.name} "
                          f"({type(e).__name__}: {' '.join(str(e).split())[:300]})") from e
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

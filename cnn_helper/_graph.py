"""Keras-graph plumbing and caches (private): the only module that touches Keras internals.

- ``memo(owner, key, build)``: the one cache. Whatever the package builds for a model (a sub-model,
  a compiled step, a clone) is kept per model and dies with it.
- Layers by name: ``walk``, ``layer_names``, ``find_layer``, ``path_name``, ``output_layer``.
- ``tap(model, layers)``: the function x -> [y_(l) for each l], from ONE multi-output sub-model
  sharing the model's weights; ``forward(model, layers)`` is it compiled, for batches of any size.
- ``calls(model)``: the model's graph as a list of layer calls, for walks such as the receptive
  field's.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from . import _checks

_MEMO: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

MEMORY_PER_CALL = 2**30      # bytes of layer outputs one compiled call may hold (batch_size "auto")
MAX_BATCH = 1024
FREE_SIZE_BATCH = 32         # "auto" for a model whose layer sizes are unknown before it runs


def memo(owner, key, build):
    """``build()`` once per (owner, key), kept while ``owner`` (a model) lives.

    What ``build`` returns must not hold ``owner`` itself (only its layers, sub-models or weights),
    or the entry would keep the model alive.
    """
    cache = _MEMO.setdefault(owner, {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


def as_list(outputs) -> list:
    """A model's outputs as a list (Keras returns a bare tensor for a single output)."""
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


# --------------------------------------------------------------------------- the model's input


def model_input(model):
    """The model's one input tensor, or a TypeError/ValueError saying how to give it one."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError) as e:
        raise TypeError(
            f"model {getattr(model, 'name', model)!r} has no defined input ({e}). Start a "
            "Sequential model with keras.Input, e.g. keras.Sequential([keras.Input(shape=(28, 28, "
            "1)), ...]), or build it by calling it on data once") from e
    if not inputs:
        raise TypeError(f"model {model.name!r} has no defined input; start it with "
                        "keras.Input(shape=...)")
    if len(inputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(inputs)} inputs; cnn_helper explains "
                         "models with a single image input")
    return inputs[0]


def input_shape(model) -> tuple:
    """The shape of one input image (no batch axis); None for a free size."""
    return tuple(model_input(model).shape[1:])


def input_spec(model, dtype=None):
    """A ``tf.TensorSpec`` for a batch of the model's inputs, in ``dtype`` (default: its own)."""
    import tensorflow as tf

    tensor = model_input(model)
    return tf.TensorSpec((None,) + tuple(tensor.shape[1:]), tf.as_dtype(dtype or tensor.dtype))


def check_images(model, x, name: str = "x"):
    """Images checked against the model's input: (float32 batch, was_single_image)."""
    return _checks.images_for(x, input_shape(model), model.name, name)


# --------------------------------------------------------------------------- layers by name


def walk(model, prefix=""):
    """Yield (path name, [layers from the model down to it]) for every layer, nested models too."""
    import keras

    for layer in model.layers:
        name = prefix + layer.name
        yield name, [layer]
        if isinstance(layer, keras.Model):
            for inner_name, inner_path in walk(layer, name + "/"):
                yield inner_name, [layer] + inner_path


def layer_names(model) -> list:
    """Names of every layer; layers of nested models as "outer/inner"."""
    return [name for name, _ in walk(model)]


def find_layer(model, layer) -> list:
    """A layer (name, "outer/inner" path, or the layer object) as its path of layers.

    A bare name of a layer inside a nested model is accepted when it is unique.
    """
    import keras

    walked = list(walk(model))
    names = [name for name, _ in walked]
    if isinstance(layer, keras.layers.Layer):
        hits = [path for _, path in walked if path[-1] is layer]
        if not hits:
            raise ValueError(f"layer {layer.name!r} is not part of model {model.name!r}; "
                             f"its layers are {names}")
        return hits[0]
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a layer name or a keras layer, got {layer!r}")
    exact = [path for name, path in walked if name == layer]
    if exact:
        return exact[0]
    by_leaf = [path for name, path in walked if path[-1].name == layer]
    if len(by_leaf) == 1:
        return by_leaf[0]
    if by_leaf:
        raise ValueError(f"layer name {layer!r} is ambiguous in model {model.name!r}; use one of "
                         f"{[n for n in names if n.split('/')[-1] == layer]}")
    raise ValueError(f"model {model.name!r} has no layer {layer!r}; its layers are {names}")


def path_name(model, layer) -> str:
    """The "outer/inner" name of a layer: it names the same layer in a clone of the model."""
    return "/".join(part.name for part in find_layer(model, layer))


def output_layer(model):
    """The layer that produces the model's (single) output: the head y_(L)."""
    model_input(model)
    if len(model.outputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(model.outputs)} outputs; give a Feature "
                         "naming the layer to explain instead of a class index")
    return model.outputs[0]._keras_history[0]


def output_shape(model, layer) -> tuple:
    """Shape (without batch axis) of the output of ``layer``."""
    return tuple(_symbolic_output(model, find_layer(model, layer)).shape[1:])


def _graph_of(model):
    """The functional graph of a model (a Sequential model keeps one inside)."""
    return getattr(model, "_functional", None) or model


def _node_in(model, layer):
    """The node where ``layer`` is called in ``model``'s own graph.

    A layer (or a nested model) used in several models has one node per call; the first is not
    necessarily this model's (a base model reused after a notebook cell ran twice, say).
    """
    ours = {id(n) for nodes in _graph_of(model)._nodes_by_depth.values() for n in nodes}
    for node in layer._inbound_nodes:
        if id(node) in ours:
            return node
    raise ValueError(f"layer {layer.name!r} is not called in the graph of model {model.name!r}")


def _symbolic_output(model, path):
    """The symbolic output of path[-1] in the graph of ``model`` (nested models are re-entered)."""
    import keras

    model_input(model)   # a clear TypeError for a Sequential model with no defined input
    node = _node_in(model, path[0])
    if len(path) == 1:
        # not ``layer.output``: a nested functional model's ``.output`` is its own inner output,
        # which is not connected to this graph's input
        outputs = node.output_tensors
        return outputs[0] if len(outputs) == 1 else outputs
    first = path[0]
    inner = keras.Model(model_input(first), _symbolic_output(first, path[1:]))
    return inner(*node.input_tensors)


# --------------------------------------------------------------------------- batch size


def _values_per_image(model):
    """How many numbers all the layer outputs of ``model`` hold for one image (None: unknown)."""
    import keras

    total = 0
    for call in calls(model)[0]:
        inner = _values_per_image(call.layer) if isinstance(call.layer, keras.Model) else 0
        if inner is None or None in call.shape:
            return None
        total += inner + int(np.prod(call.shape))
    return total


def batch_size(model, value) -> int:
    """``value`` (checked), or for "auto" the images per call whose layer outputs fit in
    ``MEMORY_PER_CALL`` bytes (float32), between 1 and ``MAX_BATCH``: back propagation keeps about
    that much per image, so this bounds the memory of every method. ``FREE_SIZE_BATCH`` when the
    sizes are unknown (a free input size, a subclassed model)."""
    value = _checks.batch_size(value)
    if value != "auto":
        return value

    def choose():
        try:
            per_image = _values_per_image(model)
        except TypeError:                       # a subclassed model: no graph to read
            per_image = None
        if per_image is None:
            return FREE_SIZE_BATCH
        return int(min(MAX_BATCH, max(1, MEMORY_PER_CALL // (4 * per_image))))

    return memo(model, ("auto batch size",), choose)


# --------------------------------------------------------------------------- sub-models


def sub_model(model, layers):
    """A Keras model from ``model``'s input to the outputs of ``layers``, sharing its weights."""
    import keras

    paths = [find_layer(model, layer) for layer in _checks.layer_list(layers)]
    key = ("sub_model",) + tuple(id(p[-1]) for p in paths)
    return memo(model, key, lambda: keras.Model(
        model_input(model), [_symbolic_output(model, p) for p in paths], name=f"{model.name}_tap"))


def tap(model, layers):
    """The function x -> [y_(l) for each of ``layers``] (a list, always), in inference mode."""
    sub = sub_model(model, layers)

    def outputs(x):
        return as_list(sub(x, training=False))

    return outputs


def forward(model, layers):
    """``tap`` compiled: one ``tf.function`` per (model, layers) for float32 batches of any size
    (Keras casts them to the model's own dtype)."""
    import tensorflow as tf

    paths = [find_layer(model, layer) for layer in _checks.layer_list(layers)]
    key = ("forward",) + tuple(id(p[-1]) for p in paths)
    return memo(model, key, lambda: tf.function(tap(model, layers),
                                                input_signature=[input_spec(model, "float32")]))


def run_batched(fn, batch_size: int, *arrays) -> list:
    """``fn`` over chunks of ``batch_size`` examples of ``arrays`` (sliced alike); its outputs (a
    list of arrays per chunk) concatenated. An empty data set still gives outputs of length 0."""
    slices = list(_checks.batches(len(arrays[0]), batch_size)) or [slice(0, 0)]
    chunks = [[np.asarray(out) for out in fn(*(a[s] for a in arrays))] for s in slices]
    return [np.concatenate(parts) for parts in zip(*chunks)]


# --------------------------------------------------------------------------- the graph as calls


@dataclass(frozen=True)
class Call:
    """One call of a layer in a model's graph.

    layer   : the layer (or nested model) called; an InputLayer for the model's input
    inputs  : ids of the tensors it reads (empty for an input)
    outputs : ids of the tensors it writes
    shape   : the shape of its first output, without the batch axis
    """

    layer: object
    inputs: tuple
    outputs: tuple
    shape: tuple


def calls(model):
    """The layer calls of a functional or Sequential model in an order where every tensor is
    written before it is read, and the ids of the model's input and output tensors."""
    graph = _graph_of(model)
    if not hasattr(graph, "_nodes_by_depth"):
        raise TypeError(f"model {model.name!r} is a subclassed model; its graph is unknown "
                        "(build it as a functional or Sequential model)")
    found = []
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            inputs = () if node.is_input else tuple(id(t) for t in node.input_tensors)
            found.append(Call(node.operation, inputs, tuple(id(t) for t in node.outputs),
                              tuple(node.outputs[0].shape[1:])))
    return found, tuple(id(t) for t in graph.inputs), tuple(id(t) for t in graph.outputs)

r"""Features of a model in the lecture's vocabulary, and their activations.

The lecture writes :math:`\y_{(l),k}` for feature map k of layer l, :math:`\y_{(l),idx,k}` for its
value at one spatial location idx, and reduces a whole map to a scalar by global pooling:

.. math::  \max_{(l),k} = \max_{idx} \y_{(l),idx,k}  \qquad  \mathrm{mean}_{(l),k} = \frac{1}{|idx|}\sum_{idx} \y_{(l),idx,k}

``Feature(layer, channel, location=None, reduce="max")`` names such a scalar:

- ``location=None``     : pool the whole map with ``reduce`` ("max" or "mean")
- ``location=(r, c)``   : the value :math:`\y_{(l),idx,k}` at idx = (r, c)
- ``location="argmax"`` : the value at the strongest location (the same number as reduce="max",
  but methods that need one location, such as saliency, use that location)

A Dense layer has no spatial axes: its feature ``k`` is the scalar :math:`\y_{(l),k}` itself.

Example
-------
>>> f = Feature("conv2", 5)                       # max over the map of channel 5 of conv2
>>> acts = activations(model, x, ["conv1", "conv2"])   # one forward pass, both layers
>>> fv = feature_values(model, x, f)              # fv.values (N,), fv.locations (N, 2)
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

REDUCTIONS = ("max", "mean")


def index_tuple(idx, what: str = "location") -> tuple:
    """A spatial index idx (tuple, list or 1-D integer array, e.g. a row of ``locations``) as a
    tuple of Python ints; a TypeError naming ``what`` otherwise."""
    values = np.asarray(idx) if not isinstance(idx, (tuple, list)) else idx
    if isinstance(values, np.ndarray):
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
            raise TypeError(f"{what} must be a tuple of ints, got {idx!r}")
        values = values.tolist()
    if not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in values):
        raise TypeError(f"{what} must be a tuple of ints, got {idx!r}")
    return tuple(int(i) for i in values)


def layer_list(layers) -> list:
    """One layer (name or object) or several, as a non-empty list."""
    if isinstance(layers, str) or not hasattr(layers, "__iter__"):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise ValueError("layers is empty; give one layer name or a list of them")
    return layers


@dataclass(frozen=True)
class Feature:
    r"""The scalar :math:`\y_{(l),k}` (pooled), or :math:`\y_{(l),idx,k}` at one location."""

    layer: object
    channel: int
    location: object = None
    reduce: str = "max"

    def __post_init__(self):
        if not isinstance(self.layer, str) and not hasattr(self.layer, "name"):
            raise TypeError(f"Feature layer must be a layer name or a keras layer, got {self.layer!r}")
        if not isinstance(self.channel, (int, np.integer)) or isinstance(self.channel, bool):
            raise TypeError(f"Feature channel must be an int, got {self.channel!r}")
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"Feature reduce {self.reduce!r} is not one of {REDUCTIONS}")
        loc = self.location
        if isinstance(loc, str) and loc != "argmax":
            raise TypeError(f"Feature location must be None, 'argmax' or a tuple of ints, got {loc!r}")
        if loc is not None and not isinstance(loc, str):
            object.__setattr__(self, "location", index_tuple(loc, "Feature location"))
        object.__setattr__(self, "channel", int(self.channel))

    @property
    def layer_name(self) -> str:
        return self.layer if isinstance(self.layer, str) else self.layer.name

    def __str__(self):
        """The lecture's notation: y_(conv2),k=5; y_(conv2),idx=(3, 4),k=5; suffixes for the rest."""
        if isinstance(self.location, tuple):
            return f"y_({self.layer_name}),idx={self.location},k={self.channel}"
        suffix = {"argmax": " at argmax"}.get(self.location, " (mean)" if self.reduce == "mean" else "")
        return f"y_({self.layer_name}),k={self.channel}{suffix}"


@dataclass(frozen=True)
class FeatureValues:
    """Per-example values of a Feature and, for spatial maps, the location each came from.

    values    : (N,) float32
    locations : (N, n_spatial) int — the argmax location (or the fixed location); (N, 0) for Dense
    """

    values: np.ndarray
    locations: np.ndarray


# --------------------------------------------------------------------------- layers


def _keras():
    import keras
    return keras


def model_inputs(model):
    """``model.inputs``, or a TypeError that says how to give a Sequential model an input."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError) as e:
        raise TypeError(
            f"model {getattr(model, 'name', model)!r} has no defined input ({e}). "
            "Start a Sequential model with keras.Input, e.g. keras.Sequential([keras.Input(shape=(28, 28, 1)), ...]), "
            "or build it by calling it on data once") from e
    if not inputs:
        raise TypeError(f"model {model.name!r} has no defined input; start it with keras.Input(shape=...)")
    if len(inputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(inputs)} inputs; cnn_helper explains models "
                         "with a single image input")
    return inputs


def walk(model, prefix=""):
    """Yield (path name, [layers from the model down to it]) for every layer, nested models included."""
    keras = _keras()
    for layer in model.layers:
        name = prefix + layer.name
        yield name, [layer]
        if isinstance(layer, keras.Model):
            for inner_name, inner_path in walk(layer, name + "/"):
                yield inner_name, [layer] + inner_path


def layer_names(model) -> list[str]:
    """Names of every layer; layers of nested models as "outer/inner"."""
    return [name for name, _ in walk(model)]


def find_layer(model, layer):
    """Resolve a layer (name, "outer/inner" path, or the layer object) to its path of layers.

    A bare name of a layer inside a nested model is accepted when it is unique.
    """
    keras = _keras()
    walked = list(walk(model))
    if isinstance(layer, keras.layers.Layer):
        hits = [path for _, path in walked if path[-1] is layer]
        if not hits:
            raise ValueError(f"layer {layer.name!r} is not part of model {model.name!r}; "
                             f"its layers are {layer_names(model)}")
        return hits[0]
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a layer name or a keras layer, got {layer!r}")
    exact = [path for name, path in walked if name == layer]
    if exact:
        return exact[0]
    by_leaf = [path for name, path in walked if path[-1].name == layer]
    if len(by_leaf) == 1:
        return by_leaf[0]
    names = [name for name, _ in walked]
    if by_leaf:
        raise ValueError(f"layer name {layer!r} is ambiguous in model {model.name!r}; use one of "
                         f"{[n for n in names if n.split('/')[-1] == layer]}")
    raise ValueError(f"model {model.name!r} has no layer {layer!r}; its layers are {names}")


def output_layer(model):
    """The layer that produces the model's (single) output: the head y_(L)."""
    model_inputs(model)
    if len(model.outputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(model.outputs)} outputs; give a Feature "
                         "naming the layer to explain instead of a class index")
    return model.outputs[0]._keras_history[0]


def _node_in(model, layer):
    """The node where ``layer`` is called in ``model``'s own graph.

    A layer (or a nested model) used in several models has one node per call; the first is not
    necessarily this model's (a base model reused after a notebook cell ran twice, say).
    """
    graph = getattr(model, "_functional", None) or model   # a Sequential keeps its graph inside
    ours = {id(n) for nodes in graph._nodes_by_depth.values() for n in nodes}
    for node in layer._inbound_nodes:
        if id(node) in ours:
            return node
    raise ValueError(f"layer {layer.name!r} is not called in the graph of model {model.name!r}")


def _symbolic_output(model, path):
    """The symbolic output of path[-1] in the graph of ``model`` (nested models are re-entered)."""
    keras = _keras()
    model_inputs(model)   # a clear TypeError for a Sequential model with no defined input
    first = path[0]
    node = _node_in(model, first)
    if len(path) == 1:
        # not ``first.output``: a nested functional model's ``.output`` is its own inner output,
        # which is not connected to this graph's input
        outputs = node.output_tensors
        return outputs[0] if len(outputs) == 1 else outputs
    inner = keras.Model(model_inputs(first)[0], _symbolic_output(first, path[1:]))
    return inner(*node.input_tensors)


def as_feature(model, target) -> Feature:
    """A target is a class index of the head (int) or a Feature; return it as a Feature."""
    if isinstance(target, Feature):
        return target
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        return Feature(output_layer(model).name, int(target))
    raise TypeError(f"target must be a class index (int) or a cnn_helper.Feature, got {target!r}")


def output_shape(model, layer) -> tuple:
    """Shape (without batch axis) of the output of ``layer``."""
    tensor = _symbolic_output(model, find_layer(model, layer))
    return tuple(tensor.shape[1:])


def check_feature(model, feature: Feature) -> Feature:
    """Validate a Feature against ``model``: layer, channel range, location inside the map."""
    shape = output_shape(model, feature.layer)
    if len(shape) == 0:
        raise ValueError(f"layer {feature.layer_name!r} has a scalar output; it has no channels")
    spatial, n_channels = shape[:-1], shape[-1]
    if not 0 <= feature.channel < n_channels:
        raise ValueError(f"channel {feature.channel} is out of range for layer {feature.layer_name!r}: "
                         f"it has channels 0..{n_channels - 1}")
    if isinstance(feature.location, tuple):
        if len(feature.location) != len(spatial):
            raise ValueError(f"location {feature.location} has {len(feature.location)} indices but "
                             f"layer {feature.layer_name!r} has spatial shape {spatial}")
        if any(not 0 <= i < n for i, n in zip(feature.location, spatial)):
            raise ValueError(f"location {feature.location} is outside the map of layer "
                             f"{feature.layer_name!r}, whose spatial shape is {spatial}")
    return feature


# --------------------------------------------------------------------------- sub-models

_TAPS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_COMPILED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def tap_model(model, layers):
    """A Keras model from ``model``'s input to the outputs of ``layers`` (a list), sharing weights.

    Built once per (model, layers) and cached; nested models are entered as needed.
    """
    keras = _keras()
    paths = [find_layer(model, layer) for layer in layers]
    key = tuple(id(p[-1]) for p in paths)
    cache = _TAPS.setdefault(model, {})
    if key not in cache:
        outputs = [_symbolic_output(model, p) for p in paths]
        cache[key] = keras.Model(model_inputs(model)[0], outputs, name=f"{model.name}_tap")
    return cache[key]


def compiled(fn_model):
    """A ``tf.function`` calling a Keras model in inference mode on batches of any size.

    It always returns a list of outputs (one entry for a single-output model). The function holds
    the model only weakly, so the cache does not keep models (and their weights) alive.
    """
    import tensorflow as tf

    model_ref = weakref.ref(fn_model)

    def call(x):
        outs = model_ref()(x, training=False)
        return list(outs) if isinstance(outs, (list, tuple)) else [outs]

    if fn_model not in _COMPILED:
        spec = tf.TensorSpec((None,) + tuple(fn_model.inputs[0].shape[1:]), tf.float32)
        _COMPILED[fn_model] = tf.function(call, input_signature=[spec])
    return _COMPILED[fn_model]


def check_float_images(x, name: str = "x") -> np.ndarray:
    """``x`` as a float32 array: a TypeError for non-float data, a ValueError for NaN or inf."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} has dtype {x.dtype}; images must be float (float32 in [0, 1]); "
                        f"convert with {name}.astype('float32') / 255")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x.astype(np.float32, copy=False)


def fits_shape(shape, expected) -> bool:
    """Whether ``shape`` matches ``expected`` axis by axis (None, on either side, matches any size)."""
    return len(shape) == len(expected) and all(
        e is None or s is None or e == s for e, s in zip(expected, shape))


def check_input(model, x, name: str = "x"):
    """Validate images for ``model``; return (float32 batch, was_single_image).

    Accepts a batch (N, *input_shape) or one image (*input_shape). Non-float data is a TypeError,
    NaN/inf or a wrong shape a ValueError naming the expected shape.
    """
    x = np.asarray(x)
    expected = tuple(model_inputs(model)[0].shape[1:])
    if not np.issubdtype(x.dtype, np.floating):
        check_float_images(x, name)                  # the dtype error first, before the shape's
    single = fits_shape(x.shape, expected)
    if not single and not fits_shape(x.shape[1:], expected):
        raise ValueError(f"{name} has shape {x.shape}; model {model.name!r} expects images of shape "
                         f"(N, {', '.join(str(e) for e in expected)}) or one image of shape {expected}")
    x = check_float_images(x, name)
    return (x[None] if single else x), single


def check_positive_int(value, name: str) -> int:
    """``value`` as an int >= 1; a ValueError naming ``name`` and the value otherwise."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def check_batch_size(batch_size) -> int:
    return check_positive_int(batch_size, "batch_size")


def batches(n: int, batch_size: int):
    """Slices [start, stop) covering range(n) in chunks of ``batch_size``."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def activations(model, x, layers, batch_size: int = 256) -> dict:
    r"""Activations :math:`\y_{(l)}` of several layers for images ``x`` in ONE forward pass.

    One multi-output sub-model is run over ``x`` in batches of ``batch_size`` (memory-bounded).

    Returns ``{layer name: array of shape (N, *layer output shape)}``; one image in, no batch axis out.

    >>> acts = activations(model, x_test[:16], ["conv1", "dense"])
    >>> acts["conv1"].shape
    (16, 28, 28, 16)
    """
    layers = layer_list(layers)
    x, single = check_input(model, x)
    batch_size = check_batch_size(batch_size)
    fn = compiled(tap_model(model, layers))
    chunks = [[] for _ in layers]
    for s in batches(len(x), batch_size):
        for chunk, out in zip(chunks, fn(x[s])):
            chunk.append(np.asarray(out))
    names = [layer if isinstance(layer, str) else layer.name for layer in layers]
    result = {name: np.concatenate(c) for name, c in zip(names, chunks)}
    return {k: v[0] for k, v in result.items()} if single else result


# --------------------------------------------------------------------------- the scalar


def select(activation, feature: Feature):
    r"""Reduce a batch of layer outputs (N, *spatial, C) to the Feature's scalar per example.

    Works on TensorFlow tensors inside a ``tf.GradientTape`` (the selection of the argmax location
    is not differentiated, so d/dx of the result is :math:`\partial \y_{(l),idx,k} / \partial x` at
    that idx). Returns ``(values (N,), locations (N, n_spatial) int)``.
    """
    import tensorflow as tf

    a = tf.convert_to_tensor(activation)
    spatial = a.shape[1:-1]
    n = tf.shape(a)[0]
    maps = a[..., feature.channel]
    if len(spatial) == 0:
        return maps, tf.zeros((n, 0), tf.int64)
    if isinstance(feature.location, tuple):
        index = (slice(None),) + feature.location
        loc = tf.tile(tf.constant([feature.location], tf.int64), [n, 1])
        return maps[index], loc
    flat = tf.reshape(maps, (n, -1))
    arg = tf.argmax(flat, axis=1)
    loc = tf.transpose(tf.stack(tf.unravel_index(arg, tf.shape(a, out_type=tf.int64)[1:-1])))
    if feature.location is None and feature.reduce == "mean":
        return tf.reduce_mean(flat, axis=1), loc
    return tf.gather(flat, arg, axis=1, batch_dims=1), loc


def feature_values(model, x, target, batch_size: int = 256) -> FeatureValues:
    r"""The scalar of ``target`` (a Feature or a head class index) for every image in ``x``.

    :math:`v^{(i)} = \y_{(l),k} |_{\y_{(0)} = \x^{(i)}}`, pooled or at a location as the Feature says.

    >>> fv = feature_values(model, x_test, Feature("conv2", 3))
    >>> fv.values.shape, fv.locations.shape
    ((1000,), (1000, 2))
    """
    feature = check_feature(model, as_feature(model, target))
    x, _ = check_input(model, x)
    batch_size = check_batch_size(batch_size)
    fn = compiled(tap_model(model, [feature.layer]))
    values, locations = [], []
    for s in batches(len(x), batch_size):
        v, loc = select(fn(x[s])[0], feature)
        values.append(np.asarray(v))
        locations.append(np.asarray(loc))
    return FeatureValues(np.concatenate(values).astype(np.float32), np.concatenate(locations))

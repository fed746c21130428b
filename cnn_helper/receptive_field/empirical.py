r"""The receptive field measured: where the gradient of a location's value w.r.t. the input is
non-zero. The test suite checks it against :func:`region` on many architectures, every
keras.applications family among them.

With ``gates="local"`` the gates :func:`region` leaves out are held in the network that is
differentiated (``keras.ops.stop_gradient`` on the gate's input of each such merge), so that what
is measured is what is claimed: the field of the local path.

One ``tf.function`` per (model, layer, mode, held gates) computes only the gradient: the
locations and the channel weights are tensor arguments, so a new location or channel does not
retrace (a new number of images or chunk size does: the shapes are kept static, see
``_support_step``).
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import _checks, _gradient, _graph, _layers, _override
from .walk import check_location, field, held_gates, layer_field

MODES = ("linear", "model")


def _average(a, b):
    """(a + b) / 2: the linear twin's ``ops.maximum(a, b)`` / ``ops.minimum(a, b)`` (a function
    of keras.ops, so that ``b`` may be a number: ``ops.maximum(x, 0.0)``)."""
    return (a + b) / 2


def _held(merge, positions):
    """``merge`` with the gates among its input tensors held: their gradient is stopped, so the
    gradient of a later location flows along the local path only. A function (of keras.ops),
    called in the clone's graph in place of the merge, with the merge's own arguments."""
    import keras

    def call(*args, **kwargs):
        leaves = keras.tree.flatten((args, kwargs))
        tensors = [k for k, t in enumerate(leaves) if isinstance(t, keras.KerasTensor)
                   or keras.ops.is_tensor(t)]
        held = {tensors[p] for p in positions if p < len(tensors)}
        leaves = [keras.ops.stop_gradient(t) if k in held else t for k, t in enumerate(leaves)]
        args, kwargs = keras.tree.pack_sequence_as((args, kwargs), leaves)
        return merge(*args, **kwargs)

    return call


def _linear_layer(layer, config):
    """The layer of the linear twin in place of ``layer`` (None: ``layer`` rebuilt as it is):
    activation layers and operations (``ops.relu``, ...) become linear, max pooling average
    pooling, Maximum/Minimum an average, and a layer's ``activation`` is made linear."""
    import keras

    L, window = keras.layers, _layers.window(layer)
    if _layers.is_operation(layer):
        if _layers.is_activation(layer):            # unnamed: no clash with a layer's name
            return L.Identity()
        return _average if _layers.is_max_or_min(layer) else None
    if _layers.is_activation(layer):
        return L.Activation("linear", name=layer.name)
    if window is not None and window.op == "max_pool":
        return getattr(L, f"AveragePooling{window.rank}D").from_config(config)
    if _layers.is_max_or_min(layer):
        return L.Average(name=layer.name)
    if "activation" in config:
        config["activation"] = "linear"
        return layer.__class__.from_config(config)
    return None


LINEAR = _override.Policy("linear", _linear_layer)
"""The linear twin: a clone with the same weights, every activation linear, max pooling replaced
by average pooling and Maximum/Minimum merges by Average: every dependency of the original shows
up as a non-zero gradient, for every input."""


def _twin(model, mode, held):
    """The network to differentiate: the model or its linear twin, with the ``held`` gates
    (``{id(merge): positions}``, from ``walk.held_gates``) held."""
    _warn_if_opaque(model, mode)
    if not held:
        return _override.clone_with(model, LINEAR) if mode == "linear" else model
    base = _linear_layer if mode == "linear" else (lambda layer, config: None)

    def replace(layer, config):
        inner = base(layer, config)
        if id(layer) not in held:
            return inner
        merge = inner if inner is not None else layer.__class__.from_config(config)
        return _held(merge, held[id(layer)])

    name = f"{mode}, gates held at {sorted(held.items())}"
    return _override.clone_with(model, _override.Policy(name, replace))


def _support_step(net, layer):
    """The compiled step (x (N, *input), weights (C,), locations (M, n_spatial)) -> masks
    (M, *input spatial): True where the sum over the N examples and the input channels of
    |d (sum_k w_k y_(l),idx,k) / dx| is > 0, for each location idx.

    Traced once per shape of its arguments (no ``input_signature``): with every shape static,
    TensorFlow drops the forward ops the gradient does not need (a dilated transposed
    convolution, which has no forward kernel on CPU, runs only backwards).
    """
    import tensorflow as tf

    outputs = _graph.tap(net, [layer])

    @tf.function(autograph=False)
    def support(x, weights, locations):
        n_x, n_locations = tf.shape(x)[0], tf.shape(locations)[0]
        # location-major: row i * n_x + j is example j for location i
        xs = tf.reshape(tf.repeat(x[None], n_locations, axis=0),
                        tf.concat([[-1], tf.shape(x)[1:]], axis=0))
        rows = tf.range(tf.shape(xs)[0])[:, None]                 # int32, as the locations
        at = tf.concat([rows, tf.repeat(locations, n_x, axis=0)], axis=1)
        with tf.GradientTape() as tape:
            tape.watch(xs)
            value = tf.reduce_sum(tf.gather_nd(outputs(xs)[0], at) * weights)
        g = tf.reduce_sum(tf.abs(tape.gradient(value, xs)), axis=-1)
        g = tf.reshape(g, tf.concat([[n_locations, n_x], tf.shape(g)[1:]], axis=0))
        return tf.reduce_sum(g, axis=1) > 0

    return support


def _chunks(locations, per_step: int):
    """(chunk, n_real): ``locations`` in chunks of one size, a power of two up to ``per_step``
    (the last padded with copies of its last location), so that the step is traced once per
    size, not once per number of locations."""
    n = len(locations)
    size = min(per_step, 1 << max(n - 1, 0).bit_length())
    for s in _checks.batches(n, size):
        chunk = locations[s]
        yield np.concatenate([chunk, np.repeat(chunk[-1:], size - len(chunk), axis=0)]), len(chunk)


def _inputs(model, rf, x, mode, n_samples, rng) -> np.ndarray:
    """The images to differentiate at: ``x`` (checked already), or random ones uniform in [0, 1]
    (one for the linear twin, whose gradient does not depend on the input; ``n_samples``
    otherwise)."""
    if x is not None:
        return x
    if None in rf.input_shape:
        raise ValueError("the model's input size is unknown; pass x (an image or a batch) or "
                         "input_shape=(H, W, C)")
    n_x = 1 if mode == "linear" else _checks.positive_int(n_samples, "n_samples")
    shape = tuple(rf.input_shape) + _graph.input_shape(model)[-1:]
    return rng.uniform(0, 1, (n_x,) + shape).astype("float32")


def _measured(model, layer, x, kwargs) -> tuple:
    """(the layer's ReceptiveField, x checked or None, the kwargs of compute): the input shape
    taken from ``x`` when the model's is free. Whole-input fields are measured too (to check
    them); unknown ones and layers without a spatial map are refused."""
    if x is not None:
        x = _graph.check_images(model, x)[0]
        if None in _graph.input_shape(model) and kwargs.get("input_shape") is None:
            kwargs = dict(kwargs, input_shape=x.shape[1:])
    rf = layer_field(model, layer, **kwargs)
    if rf.unknown is not None:
        field(model, layer, **kwargs)            # raises: the field is unknown, and why
    if not rf.shape:
        raise ValueError(f"layer {rf.layer!r} ({rf.kind}) has no spatial map (its field is the "
                         "whole input); empirical_support measures locations of a map")
    return rf, x, kwargs


def _channel_weights(model, layer, channel, rng) -> np.ndarray:
    """w_k: random in [0.5, 1.5] for every channel (channel=None), else 1 for ``channel`` only."""
    n_channels = _graph.output_shape(model, layer)[-1]
    if channel is not None and not 0 <= channel < n_channels:
        raise ValueError(f"channel {channel} is out of range for layer {layer!r}: it has "
                         f"channels 0..{n_channels - 1}")
    weights = np.zeros(n_channels, np.float32)
    if channel is None:
        weights[:] = rng.uniform(0.5, 1.5, n_channels)
    else:
        weights[channel] = 1.0
    return weights


def _step_for(model, layer, mode, kwargs):
    """The compiled step of ``layer`` on the twin of ``mode`` with the gates compute leaves out
    (with these ``kwargs``) held; once per (model, layer, mode, held gates)."""
    held = held_gates(model, **kwargs)
    net = _twin(model, mode, held)
    return _graph.memo(model, ("empirical_support", layer, mode, tuple(sorted(held.items()))),
                       lambda: _support_step(net, layer))


def _warn_if_opaque(model, mode: str):
    """The linear twin cannot make a Lambda or custom layer linear: say so, since a ReLU inside
    one can hide a dependency, and the measured field can then be smaller than the structural."""
    opaque = _gradient.opaque_layers(model) if mode == "linear" else ()
    if opaque:
        warnings.warn(f"layers {list(opaque)} of model {model.name!r} are Lambda or custom layers "
                      "that the linear twin keeps as they are: a ReLU or a max inside them can "
                      "hide dependencies, so the measured support may be smaller than the "
                      "receptive field", stacklevel=5)


def empirical_support(model, layer, location, x=None, channel=None, mode: str = "linear",
                      n_samples: int = 4, seed: int = 0, batch_size=_checks.BATCH_SIZE,
                      **kwargs):
    r"""Where the gradient of :math:`y_{(l),idx}` w.r.t. the input is non-zero: the measured
    field.

    The scalar is :math:`\sum_k w_k\, y_{(l),idx,k}` with fixed random weights :math:`w_k \in
    [0.5, 1.5]` (channel=None; random weights so that no sum over channels cancels, e.g. after a
    softmax) or :math:`y_{(l),idx,k}` for ``channel=k``. The mask is True where
    :math:`\sum \lvert \partial / \partial x \rvert` over the input's channels and the examples
    is > 0.

    mode "linear" (default): evaluated on a twin of the model with the same weights but linear
        activations and average instead of max pooling, so a ReLU that is off or a max that is
        elsewhere hides no dependency: the support is the structural receptive field (up to
        exact cancellations of weights, which random weights do not have).
    mode "model": the model as it is, on ``x`` (an image or a batch) or ``n_samples`` random
        inputs uniform in [0, 1]: the pixels that matter for those inputs, a subset of the field.

    ``kwargs`` go to :func:`compute` (``input_shape``, taken from ``x`` when the model's input
    size is free; ``pointwise``; ``gates``). With gates="local" the gates that
    :func:`compute` leaves out are held (their gradient is stopped), so the measured support
    is the field of the local path that :func:`region` then gives; with gates="whole" a
    location after a gate is measured as it is (its support is the whole input). A layer whose
    field is the whole input is measured too (its mask is True where the gradient reaches).

    ``location`` is one location idx (returns a bool mask of the input's spatial shape) or a list
    of them (returns a stacked mask, one per location, computed ``batch_size`` images at a time).

    >>> mask = empirical_support(model, "conv3", (3, 3))
    >>> np.argwhere(mask).min(0), np.argwhere(mask).max(0) + 1   # the box region() gives
    (array([5, 5]), array([23, 23]))
    """
    import tensorflow as tf

    _checks.one_of(mode, "mode", MODES)
    rf, x, kwargs = _measured(model, layer, x, kwargs)
    many = isinstance(location, list)
    locations = np.asarray([check_location(rf, i) for i in (location if many else [location])],
                           np.int32)
    batch_size = _graph.batch_size(model, batch_size)
    rng = np.random.default_rng(_checks.seed(seed))
    x = _inputs(model, rf, x, mode, n_samples, rng)
    weights = _channel_weights(model, rf.layer, channel, rng)
    step = _step_for(model, rf.layer, mode, kwargs)
    x, weights = tf.constant(x), tf.constant(weights)
    masks = [step(x, weights, tf.constant(chunk)).numpy()[:n]
             for chunk, n in _chunks(locations, max(1, batch_size // len(x)))]
    masks = np.concatenate(masks)
    return masks if many else masks[0]

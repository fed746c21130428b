r"""Maximally activating examples: the inputs that drive a feature highest (High) and lowest (Low).

For a feature :math:`\y_{(l),k}` (a map pooled to a scalar by global max or mean pooling, a value
at one location idx, or a head output :math:`\y_{(L),k}`), pass every example
:math:`\x^{(i)}` of a data set through the network and measure

.. math::  v^{(i)} = \y_{(l),k} |_{\y_{(0)} = \x^{(i)}}

Rank the m values :math:`v^{(i_1)} \ge v^{(i_2)} \ge \dots \ge v^{(i_m)}`. The K first examples are
the *High* set :math:`\text{MaxAct}_{(l),k,K} = \{\x^{(i_1)}, \dots, \x^{(i_K)}\}`, the K last ones
(listed lowest first) the *Low* set. Equal values are ranked by the lower example index first, so
the result is deterministic.

Two entry points:

- ``top_k(model, x, target, k)``: one target (a head class index or a ``Feature``), optionally on
  the subset of examples with given labels (the lecture's best and worst 8s on
  :math:`\y_{(L),8}`).
- ``scan(model, data, layers, k)``: every channel of one or several layers in ONE streaming pass
  over a data set (a NumPy array or a ``tf.data.Dataset``). Only the running top-K of each channel
  is kept (memory O(K x channels)); the activation tensors never leave the compiled graph, only
  each batch's pooled values (N, C) and their argmax locations are reduced there.

Example
-------
>>> best = top_k(model, x_test, 8, k=9, labels=8, y=y_test)     # the best and worst 8s
>>> best.high.indices, best.high.values                          # most confident 8s first
>>> scans = scan(model, x_train, ["conv1", "conv2", "conv3"], k=9)
>>> scans["conv2"].channel(5)            # the same form top_k returns, for Feature("conv2", 5)
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from . import data as data_mod
from . import features
from .features import Feature

REDUCTIONS = features.REDUCTIONS


@dataclass(frozen=True)
class Examples:
    """One side (High or Low) of a top-K: examples sorted by value, ties by lower index.

    indices   : (..., K) int64, indices into the data set that was ranked (the full ``x``)
    values    : (..., K) float32, the target's value for each example
    locations : (..., K, n_spatial) int64, the argmax location of each example's map (or the fixed
                location of the Feature); n_spatial = 0 for a Dense layer or the head
    The leading ``...`` is empty for ``top_k`` and (C,) (one row per channel) for ``scan``.
    """

    indices: np.ndarray
    values: np.ndarray
    locations: np.ndarray

    def __len__(self):
        return self.indices.shape[-1]


@dataclass(frozen=True)
class TopK:
    """The K maximally (High, descending) and minimally (Low, ascending) activating examples."""

    target: Feature
    high: Examples
    low: Examples

    @property
    def k(self) -> int:
        return len(self.high)


@dataclass(frozen=True)
class LayerScan:
    """The top-K High and Low examples of every channel of one layer (from ``scan``).

    high, low : Examples whose arrays have a leading channel axis: indices (C, K), values (C, K),
                locations (C, K, n_spatial)
    reduce    : the global pooling of each map ("max" or "mean"); locations are argmax locations
    """

    layer: str
    reduce: str
    n_examples: int
    high: Examples
    low: Examples

    @property
    def n_channels(self) -> int:
        return self.high.indices.shape[0]

    @property
    def k(self) -> int:
        return len(self.high)

    def channel(self, k: int) -> TopK:
        """Channel ``k`` as a ``TopK`` (the form ``top_k`` returns for ``Feature(layer, k, reduce)``)."""
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 0 <= k < self.n_channels:
            raise ValueError(f"channel {k!r} is out of range for layer {self.layer!r}: it has "
                             f"channels 0..{self.n_channels - 1}")
        part = lambda e: Examples(e.indices[k], e.values[k], e.locations[k])  # noqa: E731
        return TopK(Feature(self.layer, int(k), reduce=self.reduce), part(self.high), part(self.low))


# --------------------------------------------------------------------------- checks


def _check_k(k, n=None, what: str = "the data") -> int:
    """k as an int: at least 1 and, when the number of examples n is given, at most n."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise TypeError(f"k must be an int, got {k!r}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if n is not None and k > n:
        raise ValueError(f"k={k} is larger than {what}, which has {n} examples")
    return int(k)


# --------------------------------------------------------------------------- one target


def _rank(values: np.ndarray, locations: np.ndarray, index: np.ndarray, k: int, target) -> TopK:
    """High: values descending; Low: ascending; equal values by lower index (stable sort)."""
    def part(order):
        return Examples(index[order].astype(np.int64), values[order], locations[order].astype(np.int64))

    return TopK(target, part(np.argsort(-values, kind="stable")[:k]),
                part(np.argsort(values, kind="stable")[:k]))


def top_k(model, x, target, k: int = 9, labels=None, y=None, batch_size: int = 256) -> TopK:
    r"""The K examples of ``x`` with the highest and the lowest value of ``target``.

    target : a head class index :math:`k` (:math:`\y_{(L),k}`: the model output, e.g. the softmax
             probability of class k) or a ``Feature`` (pooled by max/mean, or at a location)
    labels, y : restrict the ranking to the examples whose label ``y[i]`` is in ``labels`` (an int or
             a list), the lecture's :math:`\X' = \{\x^{(i)} | y^{(i)} = 8\}`. Indices still refer to
             the full ``x``.
    Returns ``TopK(target, high, low)``: high sorted descending, low ascending, ties by lower index.

    >>> r = top_k(model, x_test, 8, k=9, labels=8, y=y_test)   # best and worst 8s
    >>> x_test[r.low.indices]                                   # the 8s the CNN is least sure of
    """
    feature = features.check_feature(model, features.as_feature(model, target))
    x, _ = features.check_input(model, x)
    index = np.arange(len(x))
    what = "the data"
    if labels is not None or y is not None:
        if labels is None or y is None:
            raise ValueError("give both labels (the wanted labels) and y (the label of every example) "
                             "to restrict to a subset, or neither")
        x, _, index = data_mod.select_labels(x, y, labels)
        what = f"the subset with labels {labels!r}"
    k = _check_k(k, len(x), what)
    fv = features.feature_values(model, x, feature, batch_size)
    return _rank(fv.values, fv.locations, index, k, feature)


# --------------------------------------------------------------------------- streaming scan

_SCANS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _top_k(values, k):
    """Per row of ``values`` (C, n): the min(k, n) largest, in order; equal values by lower column."""
    import tensorflow as tf

    return tf.math.top_k(values, k=tf.minimum(k, tf.shape(values)[1]), sorted=True)


def _argmax_of(activation, rows):
    """Argmax location (C, k, n_spatial) of the maps of batch positions ``rows`` (C, k), per channel.

    activation: (B, *spatial, C). Only the C x k candidate maps are gathered (a small tensor), so
    the argmax over the spatial axes is not computed for the whole batch. Equal maxima: the first
    location in row-major order.
    """
    import tensorflow as tf

    shape = tf.shape(activation, out_type=tf.int64)
    spatial, n_channels = shape[1:-1], shape[-1]
    n_loc = tf.reduce_prod(spatial)
    linear = (tf.cast(rows, tf.int64)[:, :, None] * n_loc + tf.range(n_loc)[None, None, :]) \
        * n_channels + tf.range(n_channels)[:, None, None]                    # (C, k, P)
    flat = tf.argmax(tf.gather(tf.reshape(activation, [-1]), linear), axis=-1)  # (C, k)
    coords = tf.transpose(tf.unravel_index(tf.reshape(flat, [-1]), spatial))   # (C k, n_spatial)
    return tf.reshape(coords, tf.concat([tf.shape(flat, out_type=tf.int64), [len(activation.shape) - 2]], 0))


def _update(activation, reduce: str, k: int, index, kept_high, kept_low):
    """One layer, one batch: pool every map, pick each channel's candidates, merge with the kept.

    activation (B, *spatial, C) -> pooled values (C, B) by global max/mean pooling; the batch's
    top-k (High) and top-k of the negated values (Low) per channel are located (argmax of their
    maps) and merged with the kept top-k. tf.math.top_k lists equal values in column order, the kept
    columns come first and hold lower example indices, so ties stay broken by the lower index.
    """
    import tensorflow as tf

    dense = activation.shape.rank == 2                  # Dense: the unit itself, no location
    if dense:
        pooled = activation
    else:
        maps = tf.reshape(activation, (tf.shape(activation)[0], -1, activation.shape[-1]))
        pooled = tf.reduce_max(maps, axis=1) if reduce == "max" else tf.reduce_mean(maps, axis=1)
    pooled = tf.transpose(pooled)                                              # (C, B)
    merged = []
    for kept, values in ((kept_high, pooled), (kept_low, -pooled)):           # Low = top-k of -value
        cand = _top_k(values, k)
        loc = tf.zeros(tf.concat([tf.shape(cand.indices), [0]], 0), tf.int64) if dense else \
            _argmax_of(activation, cand.indices)
        new = (cand.values, tf.gather(index, cand.indices), loc)
        both = [tf.concat([a, b], axis=1) for a, b in zip(kept, new)]
        top = _top_k(both[0], k)
        merged.append([top.values] + [tf.gather(a, top.indices, axis=1, batch_dims=1) for a in both[1:]])
    return merged


def _scan_step(tap, reduce: str, k: int):
    """The compiled step: one batch in, the updated running High/Low top-K of every layer out."""
    import tensorflow as tf

    cache = _SCANS.setdefault(tap, {})
    if (reduce, k) in cache:
        return cache[(reduce, k)]
    state_spec = []
    for out in tap.outputs:      # per side: values (C, n), indices (C, n), locations (C, n, n_spatial)
        c, n_spatial = out.shape[-1], len(out.shape) - 2
        side = [tf.TensorSpec((c, None), tf.float32), tf.TensorSpec((c, None), tf.int64),
                tf.TensorSpec((c, None, n_spatial), tf.int64)]
        state_spec.append([side, list(side)])
    x_spec = tf.TensorSpec((None,) + tuple(tap.inputs[0].shape[1:]), tf.float32)
    tap_ref = weakref.ref(tap)          # the cache must not keep the sub-model alive

    @tf.function(input_signature=[x_spec, tf.TensorSpec((), tf.int64), state_spec])
    def step(x, offset, state):
        outs = tap_ref()(x, training=False)
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        index = offset + tf.range(tf.shape(x, out_type=tf.int64)[0])
        new_state = [_update(out, reduce, k, index, high, low) for out, (high, low) in zip(outs, state)]
        return tf.reduce_all(tf.math.is_finite(x)), new_state

    cache[(reduce, k)] = step
    return step


def _dataset_batches(model, ds, batch_size):
    """Batches of images from a tf.data.Dataset of x or (x, y, ...); unbatched images are batched."""
    import tensorflow as tf

    spec = ds.element_spec
    if isinstance(spec, (tuple, list)):
        spec = spec[0]
    if isinstance(spec, dict) or not isinstance(spec, tf.TensorSpec):
        raise TypeError(f"the dataset must yield images x or tuples (x, y, ...); its elements are {spec}")
    if not spec.dtype.is_floating:
        raise TypeError(f"the dataset yields images of dtype {spec.dtype.name}; images must be float "
                        "(float32 in [0, 1]); map them with tf.cast(x, tf.float32) / 255")
    expected = tuple(features.model_inputs(model)[0].shape[1:])

    shape = tuple(spec.shape) if spec.shape.rank is not None else ()
    if features.fits_shape(shape, expected):      # single images: batch them here
        ds = ds.batch(batch_size)
    elif not features.fits_shape(shape[1:], expected):
        raise ValueError(f"the dataset yields images of shape {shape}; model {model.name!r} "
                         f"expects batches (N, {', '.join(map(str, expected))})")
    for element in ds:
        x = element[0] if isinstance(element, (tuple, list)) else element
        if not features.fits_shape(tuple(x.shape[1:]), expected):
            raise ValueError(f"the dataset yields a batch of shape {tuple(x.shape)}; model "
                             f"{model.name!r} expects (N, {', '.join(map(str, expected))})")
        yield tf.cast(x, tf.float32)


def scan(model, data, layers, k: int = 9, reduce: str = "max", batch_size: int = 256,
         progress: bool = True) -> dict:
    r"""Top-K High and Low examples of EVERY channel of each layer in ``layers``, in one pass.

    For each layer l and channel k the value of example i is the global pooling of its map,
    :math:`\max_{idx} \y_{(l),idx,k}` (``reduce="max"``) or the mean (``reduce="mean"``), or the
    unit itself for a Dense layer; the location is the argmax of the map (first in row-major order).
    One multi-output sub-model runs over the data once; per batch, the pooled (N, C) values are
    merged with the kept top-K inside the compiled function, so memory is O(K x channels).

    data   : a float array (N, H, W, C) (batched by ``batch_size``), or a ``tf.data.Dataset``
             yielding batches of x or (x, y, ...) (single images are batched by ``batch_size``)
    layers : one layer name (or layer) or a list of them; conv or dense layers
    Returns ``{layer name: LayerScan}``; ``LayerScan.channel(k)`` gives channel k in the form
    ``top_k`` returns. Equal values are ranked by lower example index.

    >>> scans = scan(model, x_train, ["conv1", "conv2", "conv3"], k=9)
    >>> scans["conv3"].high.indices.shape
    (64, 9)
    """
    import tensorflow as tf

    layers = features.layer_list(layers)
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce {reduce!r} is not one of {REDUCTIONS}")
    k = _check_k(k)
    batch_size = features.check_batch_size(batch_size)
    names = [layer if isinstance(layer, str) else layer.name for layer in layers]
    if len(set(names)) != len(names):
        raise ValueError(f"layers {names} name a layer twice")
    tap = features.tap_model(model, layers)
    for name, out in zip(names, tap.outputs):
        if len(out.shape) < 2:
            raise ValueError(f"layer {name!r} has output shape {tuple(out.shape)}: no channel axis")

    if isinstance(data, tf.data.Dataset):
        total = None
        source = _dataset_batches(model, data, batch_size)
    else:
        if isinstance(data, tf.Tensor):
            data = data.numpy()
        data, _ = features.check_input(model, data, "data")
        _check_k(k, len(data), "the data")
        total = len(data)
        source = (data[s] for s in features.batches(len(data), batch_size))

    step = _scan_step(tap, reduce, int(k))
    state = [[[tf.zeros(spec.shape[:1] + (0,) + spec.shape[2:], spec.dtype) for spec in side]
              for side in layer_spec] for layer_spec in step.input_signature[2]]

    from tqdm.auto import tqdm

    seen = 0
    with tqdm(total=total, unit="img", desc="scan " + ", ".join(names), disable=not progress) as bar:
        for x in source:
            finite, state = step(x, tf.constant(seen, tf.int64), state)
            if not bool(finite):
                raise ValueError(f"data contains NaN or infinite values (in examples "
                                 f"{seen}..{seen + len(x) - 1})")
            seen += int(x.shape[0])
            bar.update(int(x.shape[0]))
    _check_k(k, seen, "the data")

    def examples(side, sign):
        values, index, locations = (np.asarray(t) for t in side)
        return Examples(index, sign * values, locations)

    return {name: LayerScan(name, reduce, seen, examples(high, 1.0), examples(low, -1.0))
            for name, (high, low) in zip(names, state)}


r"""Maximally activating examples: the inputs that drive a feature highest (High) and lowest (Low).

For a feature :math:`\y_{(l),k}` (a map pooled to a scalar by global max or mean pooling, a value
at one location idx, or a head output :math:`\y_{(L),k}`), pass every example
:math:`\x^{(i)}` of a data set through the network and measure

.. math::  v^{(i)} = \y_{(l),k} |_{\y_{(0)} = \x^{(i)}}

Rank the m values :math:`v^{(i_1)} \ge v^{(i_2)} \ge \dots \ge v^{(i_m)}`. The first ``count``
examples (the lecture's K) are the *High* set :math:`\text{MaxAct}_{(l),k}[:K] = \{\x^{(i_1)},
\dots, \x^{(i_K)}\}`, the K last ones (listed lowest first) the *Low* set. Equal values are ranked
by the lower example index first, so the result is deterministic.

Two entry points:

- ``top_examples(model, x, target, count)``: one target (a head class index or a ``Feature``),
  optionally on the subset of examples with given labels (the lecture's best and worst 8s on
  :math:`\y_{(L),8}`).
- ``scan(model, data, layers, count)``: every channel of one or several layers in ONE streaming
  pass over a data set (a NumPy array or a ``tf.data.Dataset``). Only the running top ``count`` of
  each channel is kept (memory O(count x channels)); the activation tensors never leave the
  compiled graph, only each batch's pooled values (N, C) and their argmax locations.
- ``scan_part(model, x, ids, layers, count)`` and ``merge(a, b)``: the scan of a part of a data
  set whose examples carry their own ids, and the pure merge of two such partial results into the
  scan of their union, so that any engine (``cnn_helper.distributed`` on Ray) can split the work.

Example
-------
>>> best = top_examples(model, x_test, 8, count=9, labels=8, y=y_test)   # best and worst 8s
>>> best.high.indices, best.high.values                          # most confident 8s first
>>> scans = scan(model, x_train, ["conv1", "conv2", "conv3"], count=9)
>>> scans["conv2"].channel(5)         # the form top_examples returns, for Feature("conv2", 5)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _checks, _graph, _quiet, _tf_data, features
from . import data as data_mod
from ._checks import BATCH_SIZE
from .features import Feature


@dataclass(frozen=True)
class Examples:
    """One side (High or Low) of a ranking: examples sorted by value, ties by lower index.

    indices   : (..., count) int64, indices into the data set that was ranked (the full ``x``)
    values    : (..., count) float32, the target's value for each example
    locations : (..., count, n_spatial) int64, the argmax location of each example's map (or the
                fixed location of the Feature); n_spatial = 0 for a Dense layer or the head
    The leading ``...`` is empty for ``top_examples`` and (C,) (one row per channel) for ``scan``.
    """

    indices: np.ndarray
    values: np.ndarray
    locations: np.ndarray

    def __len__(self):
        return self.indices.shape[-1]


@dataclass(frozen=True)
class TopExamples:
    """The ``count`` maximally (High, descending) and minimally (Low, ascending) activating
    examples of ``target``."""

    target: Feature
    high: Examples
    low: Examples

    @property
    def count(self) -> int:
        return len(self.high)


@dataclass(frozen=True)
class LayerScan:
    """The top High and Low examples of every channel of one layer (from ``scan``).

    high, low : Examples whose arrays have a leading channel axis: indices (C, count), values
                (C, count), locations (C, count, n_spatial)
    pool      : the global pooling of each map ("max" or "mean"); locations are argmax locations
    n_scanned : how many examples the scan ranked
    """

    layer: str
    pool: str
    n_scanned: int
    high: Examples
    low: Examples

    @property
    def n_channels(self) -> int:
        return self.high.indices.shape[0]

    def __repr__(self) -> str:
        """One line, not the arrays: LayerScan(layer='conv2', 32 channels, top 9 of 1000
        examples, pool='max')."""
        return (f"LayerScan(layer={self.layer!r}, {self.n_channels} channels, top {self.count} "
                f"of {self.n_scanned} examples, pool={self.pool!r})")

    @property
    def count(self) -> int:
        return len(self.high)

    def channel(self, k: int) -> TopExamples:
        """Channel k as ``TopExamples``: what ``top_examples`` gives for Feature(layer, k, pool)."""
        if not _checks.is_int(k) or not 0 <= k < self.n_channels:
            raise ValueError(f"channel {k!r} is out of range for layer {self.layer!r}: it has "
                             f"channels 0..{self.n_channels - 1}")
        high, low = (Examples(e.indices[k], e.values[k], e.locations[k])
                     for e in (self.high, self.low))
        return TopExamples(Feature(self.layer, int(k), pool=self.pool), high, low)


# --------------------------------------------------------------------------- one target


def _rank(values, locations, index, count: int, target) -> TopExamples:
    """High: values descending; Low: ascending; equal values by lower index (stable sort)."""
    def part(order):
        return Examples(index[order].astype(np.int64), values[order],
                        locations[order].astype(np.int64))

    return TopExamples(target, part(np.argsort(-values, kind="stable")[:count]),
                       part(np.argsort(values, kind="stable")[:count]))


def top_examples(model, x, target, count: int = 9, labels=None, y=None,
                 batch_size=BATCH_SIZE) -> TopExamples:
    r"""The ``count`` examples of ``x`` with the highest and the lowest value of ``target``.

    target : a head class index :math:`k` (:math:`\y_{(L),k}`: the model output, e.g. the softmax
             probability of class k) or a ``Feature`` (pooled by max/mean, or at a location)
    labels, y : restrict the ranking to the examples whose label ``y[i]`` is in ``labels`` (an int
             or a list), the lecture's :math:`\X' = \{\x^{(i)} | y^{(i)} = 8\}`. Indices still
             refer to the full ``x``. y holds one label per example, or one-hot rows (N, C);
             labels are of y's kind ('8' where y holds strings: 8 would be a TypeError saying so)
    Returns ``TopExamples(target, high, low)``: high descending, low ascending, ties by lower index.

    >>> r = top_examples(model, x_test, 8, count=9, labels=8, y=y_test)   # best and worst 8s
    >>> x_test[r.low.indices]                                    # the 8s the CNN is least sure of
    """
    feature = features.check_feature(model, target)
    x, _ = _graph.check_images(model, x)
    index, what = np.arange(len(x)), "the data"
    if labels is not None or y is not None:
        if labels is None or y is None:
            raise ValueError("give both labels (the wanted labels) and y (the label of every "
                             "example) to restrict to a subset, or neither")
        x, _, index = data_mod.select_labels(x, _checks.labels_of(y), labels)
        what = f"the subset with labels {labels!r}"
    count = _checks.top_count(count, len(x), what)
    fv = features.feature_values(model, x, feature, batch_size)
    return _rank(fv.values, fv.locations, index, count, feature)


# --------------------------------------------------------------------------- streaming scan


def _top(values, count):
    """Per row of ``values`` (C, n): the min(count, n) largest, in order; equal values by lower
    column."""
    import tensorflow as tf

    return tf.math.top_k(values, k=tf.minimum(count, tf.shape(values)[1]), sorted=True)


def _candidate_locations(y, rows):
    """The argmax location (C, n, n_spatial) of the maps y[rows[c, j], ..., c]: only the C x n
    candidate maps are gathered from y (B, *spatial, C), a small tensor, so the argmax is not
    computed for the whole batch. Each value is read at (example, position * C + channel) of y
    as (B, P C): int32 indices however large the batch (see ``features.location_of``)."""
    import tensorflow as tf
    from keras import ops

    if len(y.shape) == 2:                                 # Dense: the unit itself, no location
        return tf.zeros(tf.concat([tf.shape(rows), [0]], 0), tf.int32)
    n_channels = tf.shape(y)[-1]
    per_example = tf.reshape(y, [tf.shape(y)[0], -1])                            # (B, P C)
    n_positions = tf.shape(per_example)[1] // n_channels
    columns = tf.range(n_positions)[None, :] * n_channels + tf.range(n_channels)[:, None]
    shape = tf.concat([tf.shape(rows), [n_positions]], 0)                        # (C, n, P)
    at = tf.stack([tf.broadcast_to(rows[:, :, None], shape),
                   tf.broadcast_to(columns[:, None, :], shape)], axis=-1)
    maps = tf.gather_nd(per_example, at)                                         # (C, n, P)
    return features.location_of(tf.argmax(maps, axis=-1, output_type=tf.int32),
                                ops.shape(y)[1:-1])


def _merge_batch(kept, values, index, y, count):
    """The batch's top ``count`` of ``values`` (C, B) per channel, located in y, merged with the
    kept (values, indices, locations). tf.math.top_k lists equal values in column order, and the
    kept columns come first holding lower example indices, so ties stay broken by lower index."""
    import tensorflow as tf

    best = _top(values, count)
    where = _candidate_locations(y, best.indices)
    both = [tf.concat([a, b], axis=1)
            for a, b in zip(kept, (best.values, tf.gather(index, best.indices), where))]
    top = _top(both[0], count)
    return [top.values] + [tf.gather(a, top.indices, axis=1, batch_dims=1) for a in both[1:]]


def _scan_step(model, layers, pool: str, count: int):
    """Compiled: one batch x and its example indices in, the running High/Low top ``count`` of
    every layer updated. The indices must be ascending and above every kept one (ties are ranked
    by column order): positions for ``scan``, a block's sorted ids for ``scan_part``."""
    import tensorflow as tf

    def build():
        tap = _graph.tap(model, layers)
        state_spec = []
        for name in layers:      # per side: values (C, n), indices (C, n), locations (C, n, n_sp)
            shape = _graph.output_shape(model, name)
            side = [tf.TensorSpec((shape[-1], None), tf.float32),
                    tf.TensorSpec((shape[-1], None), tf.int32),
                    tf.TensorSpec((shape[-1], None, len(shape) - 1), tf.int32)]
            state_spec.append([side, list(side)])

        @tf.function(input_signature=[_graph.input_spec(model, "float32"),
                                      tf.TensorSpec((None,), tf.int32), state_spec])
        def step(x, index, state):
            new_state = []
            for y, (high, low) in zip(tap(x), state):
                y = tf.cast(y, tf.float32)         # a mixed-precision layer computes in float16
                pooled = tf.transpose(features.pool_maps(y, pool))                    # (C, B)
                new_state.append([_merge_batch(high, pooled, index, y, count),
                                  _merge_batch(low, -pooled, index, y, count)])      # Low = -value
            return new_state

        return step

    key = ("scan step", pool, count) + tuple(_graph.path_name(model, layer) for layer in layers)
    return _graph.memo(model, key, build)


def _source(model, data, batch_size, count):
    """(batches of images, how many there are or None for a dataset)."""
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        return _tf_data.dataset_batches(model, data, batch_size), None
    x, _ = _graph.check_images(model, data, "data")
    _checks.top_count(count, len(x), "the data")
    return (x[s] for s in _checks.batches(len(x), batch_size)), len(x)


def layer_names(model, layers) -> list:
    """The names of ``layers`` (names or layer objects, in their order), the keys of what
    ``scan`` and ``scan_part`` return: a ValueError unless each is a layer of ``model`` with a
    channel axis, named once (the check every scan makes first, ``distributed.scan`` too)."""
    names = [layer if isinstance(layer, str) else layer.name for layer in layers]
    if len(set(names)) != len(names):
        raise ValueError(f"layers {names} name a layer twice")
    for name, layer in zip(names, layers):
        shape = _graph.output_shape(model, layer)
        if len(shape) < 1:
            raise ValueError(f"layer {name!r} has output shape {shape}: no channel axis")
    return names


def scan(model, data, layers, count: int = 9, pool: str = "max", batch_size=BATCH_SIZE,
         progress: bool = True) -> dict:
    r"""Top ``count`` High and Low examples of EVERY channel of each layer of ``layers``, one pass.

    For each layer l and channel k the value of example i is the global pooling of its map,
    :math:`\max_{idx} \y_{(l),idx,k}` (``pool="max"``) or the mean (``pool="mean"``), or the unit
    itself for a Dense layer; the location is the argmax of the map (first in row-major order).
    One multi-output sub-model runs over the data once; per batch, the pooled (N, C) values are
    merged with the kept top inside the compiled function, so memory is O(count x channels).

    data   : an array of images (N, H, W, C) (batched by ``batch_size``), or a ``tf.data.Dataset``
             yielding batches of x or (x, y, ...) (single images are batched by ``batch_size``).
             Its images are checked like an array's (float, or integers for a model that
             scales its input itself); a dataset of unknown shape (``from_generator`` with
             ``tf.TensorSpec(None)``) is read as it comes, each element checked by its shape.
    layers : one layer name (or layer) or a list of them; conv or dense layers
    Returns ``{layer name: LayerScan}``; ``LayerScan.channel(k)`` gives channel k in the form
    ``top_examples`` returns. Equal values are ranked by lower example index.

    The indices count the examples in the order ``data`` yields them, so they must point at the
    same examples when the data is read again: a dataset that reshuffles on every pass (the
    default of ``image_dataset_from_directory`` and of ``.shuffle``), that yields in no fixed
    order (``deterministic=False``) or that never ends (``.repeat()``) is a ValueError saying
    how to build it (``shuffle=False``, ``.take(n)``). A generator that never ends cannot be
    seen in advance: the progress bar keeps counting.

    >>> scans = scan(model, x_train, ["conv1", "conv2", "conv3"], count=9)
    >>> scans["conv3"].high.indices.shape
    (64, 9)
    """
    layers = _checks.layer_list(layers)
    pool = _checks.one_of(pool, "pool", features.POOLS)
    count, batch_size = _checks.top_count(count), _graph.batch_size(model, batch_size)
    names = layer_names(model, layers)
    batches, total = _source(model, data, batch_size, count)
    bar = _quiet.progress_bar(progress, total=total, unit="img", desc="scan " + ", ".join(names))
    with bar:
        scans = _scan_batches(model, layers, names, pool, count, _with_positions(batches, bar))
    _checks.top_count(count, scans[names[0]].n_scanned, "the data")
    return scans


def _with_positions(batches, bar):
    """Each batch with the positions of its examples in the data (0, 1, 2, ...), counted on bar."""
    seen = 0
    for x in batches:
        yield x, np.arange(seen, seen + len(x))
        seen += len(x)
        bar.update(len(x))


def _scan_batches(model, layers, names, pool: str, count: int, batches, ids=None) -> dict:
    """The one scan loop (``scan`` and ``scan_part``): batches (x, ascending positions 0, 1, ...)
    through the compiled step; ``{layer name: LayerScan}`` of what it kept, each position
    reported as ``ids[position]`` when ``ids`` are given. (Positions are int32 inside TensorFlow:
    an int64 op prints an error line on CPUs without int64 oneDNN kernels; ids may be any int64.)
    """
    import tensorflow as tf

    step = _scan_step(model, layers, pool, count)
    state, seen = _empty_state(step), 0
    for x, index in batches:
        state = step(x, tf.constant(index, tf.int32), state)
        seen += len(x)
    return {name: LayerScan(name, pool, seen, _examples(high, ids=ids),
                            _examples(low, sign=-1.0, ids=ids))
            for name, (high, low) in zip(names, state)}


def _empty_state(step) -> list:
    """The kept top of every layer and side before the first batch: no example yet."""
    import tensorflow as tf

    return [[[tf.zeros(spec.shape[:1] + (0,) + spec.shape[2:], spec.dtype) for spec in side]
             for side in layer_spec] for layer_spec in step.input_signature[2]]


def _examples(side, sign: float = 1.0, ids=None) -> Examples:
    """A kept (values, positions, locations) as Examples, positions read as ``ids[position]``
    when ids are given; the Low side was ranked by -value."""
    values, positions, locations = (np.asarray(t) for t in side)
    indices = positions.astype(np.int64) if ids is None else ids[positions]
    return Examples(indices, sign * values, locations.astype(np.int64))


# --------------------------------------------------------------------------- parts and merge


def scan_part(model, x, ids, layers, count: int = 9, pool: str = "max",
              batch_size=BATCH_SIZE) -> dict:
    r"""``scan`` of one part of a data set, whose examples carry their own ``ids``: the partial
    result that ``merge`` combines (a worker of ``cnn_helper.distributed`` scans its blocks so).

    x   : images (n, H, W, C) of the part; n may be below ``count`` (each side then keeps n)
    ids : (n,) distinct integers, the indices the result reports (the positions of the examples
          in the whole data set, or any ids). Equal values are ranked by the lower id, as ``scan``
          ranks them by the lower position, so merging the parts of a data set gives exactly
          ``scan`` of the whole (with the same ids).
    Returns ``{layer name: LayerScan}`` with min(count, n) examples per side.

    >>> a = scan_part(model, x[:500], np.arange(500), "conv2")
    >>> b = scan_part(model, x[500:], np.arange(500, len(x)), "conv2")
    >>> merge(a, b, count=9)["conv2"].high.indices   # == scan(model, x, "conv2")["conv2"]'s
    """
    layers = _checks.layer_list(layers)
    pool = _checks.one_of(pool, "pool", features.POOLS)
    count, batch_size = _checks.top_count(count), _graph.batch_size(model, batch_size)
    names = layer_names(model, layers)
    x, single = _graph.check_images(model, x, "x")
    if single:
        raise ValueError(f"x must be a batch of images (n, {', '.join(map(str, x.shape[1:]))}), "
                         "got one image; add the batch axis: x[None]")
    ids = _checks.example_ids(ids, len(x))
    order = np.argsort(ids, kind="stable")          # the step ranks ties by column order
    if np.any(order != np.arange(len(ids))):
        x, ids = x[order], ids[order]
    positions = np.arange(len(x))
    batches = ((x[s], positions[s]) for s in _checks.batches(len(x), batch_size))
    return _scan_batches(model, layers, names, pool, count, batches, ids=ids)


def merge(a, b, count=None):
    r"""The scan of the union of two disjoint parts of a data set, from the scans of the parts.

    a, b  : ``{layer name: LayerScan}`` (from ``scan`` or ``scan_part``) or two ``LayerScan``
            of the same layer and pool, over disjoint sets of examples (ids)
    count : how many examples each side keeps. Default: the count of a part that was cut (it
            scanned more examples than it keeps); when no part was cut, all examples are kept.
            Give it when a part's count equals its number of examples.

    An example among the top K of the union :math:`A \cup B` is among the top K of its own part,
    so :math:`\text{MaxAct}_{A \cup B}[:K] = \text{top}_K(\text{MaxAct}_A[:K] \cup
    \text{MaxAct}_B[:K])` (and likewise Low). Ranked by value, equal values by the lower id, the
    merge is a pure function of the two parts: associative and commutative, so parts may be merged
    in any order and grouping, and merging the scans of a split gives the scan of the whole.
    ``n_scanned`` adds up.

    >>> merge(scan_part(model, x[:300], np.arange(300), "c1"),
    ...       scan_part(model, x[300:], np.arange(300, 1000), "c1"), count=9)
    """
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)) or a.keys() != b.keys():
            raise ValueError(f"a and b must be scans of the same layers, got "
                             f"{_layers_of(a)} and {_layers_of(b)}")
        return {name: merge(a[name], b[name], count) for name in a}
    _check_mergeable(a, b)
    count = _merged_count(a, b, count)
    return LayerScan(a.layer, a.pool, a.n_scanned + b.n_scanned,
                     _merge_side(a.high, b.high, count, descending=True),
                     _merge_side(a.low, b.low, count, descending=False))


def _layers_of(part):
    return sorted(part) if isinstance(part, dict) else type(part).__name__


def _check_mergeable(a, b):
    """Two LayerScans of the same layer, pool and channels, over disjoint examples."""
    for name, part in (("a", a), ("b", b)):
        if not isinstance(part, LayerScan):
            raise TypeError(f"{name} must be a LayerScan or a dict of them (from scan or "
                            f"scan_part), got {type(part).__name__}")
    fields = ("layer", "pool", "n_channels")
    if any(getattr(a, f) != getattr(b, f) for f in fields) \
            or a.high.locations.shape[2:] != b.high.locations.shape[2:]:
        raise ValueError(f"a and b scan different features: {[getattr(a, f) for f in fields]} "
                         f"and {[getattr(b, f) for f in fields]} (layer, pool, channels)")
    shared = np.intersect1d(np.concatenate([a.high.indices, a.low.indices], axis=None),
                            np.concatenate([b.high.indices, b.low.indices], axis=None))
    if len(shared):
        raise ValueError(f"examples {shared[:5].tolist()} are in both parts: merge combines "
                         "scans of disjoint sets of examples")


def _merged_count(a, b, count) -> int:
    """The count the merge keeps (see ``merge``), checked against what the parts can give."""
    cuts = sorted({part.count for part in (a, b) if part.count < part.n_scanned})
    if count is None:
        if len(cuts) > 1:
            raise ValueError(f"the parts keep different counts {cuts}; give count")
        return cuts[0] if cuts else a.count + b.count
    count = _checks.top_count(count)
    if cuts and cuts[0] < count:
        raise ValueError(f"count={count}, but a part keeps only its top {cuts[0]} examples")
    return count


def _merge_side(a: Examples, b: Examples, count: int, descending: bool) -> Examples:
    """The top ``count`` of a and b together, per channel: by value (descending for High), equal
    values by the lower index."""
    values, indices, locations = (np.concatenate(pair, axis=1) for pair in (
        (a.values, b.values), (a.indices, b.indices), (a.locations, b.locations)))
    order = np.lexsort((indices, -values if descending else values), axis=-1)[:, :count]
    return Examples(np.take_along_axis(indices, order, axis=1),
                    np.take_along_axis(values, order, axis=1),
                    np.take_along_axis(locations, order[:, :, None], axis=1))

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

from . import _checks, _graph, features
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


def _check_count(count, n=None, what: str = "the data") -> int:
    """count as an int: at least 1 and, when the number of examples n is given, at most n."""
    if not _checks.is_int(count):
        raise TypeError(f"count must be an int, got {count!r}")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if n is not None and count > n:
        raise ValueError(f"count={count} is larger than {what}, which has {n} examples")
    return int(count)


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
             refer to the full ``x``. y holds one label per example, or one-hot rows (N, C)
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
    count = _check_count(count, len(x), what)
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
    computed for the whole batch."""
    import tensorflow as tf

    shape = tf.shape(y, out_type=tf.int64)
    spatial, n_channels = shape[1:-1], shape[-1]
    n_loc = tf.reduce_prod(spatial)
    flat_index = (tf.cast(rows, tf.int64)[:, :, None] * n_loc + tf.range(n_loc)[None, None, :]) \
        * n_channels + tf.range(n_channels)[:, None, None]                         # (C, n, P)
    maps = tf.gather(tf.reshape(y, [-1]), tf.reshape(flat_index, [-1, n_loc]))   # (C n, P)
    maps = tf.reshape(maps, tf.concat([[-1], spatial], 0))
    where = features.argmax_location(maps)                                       # (C n, n_spatial)
    return tf.reshape(where, tf.concat([tf.shape(rows, out_type=tf.int64), [len(y.shape) - 2]], 0))


def _merge(kept, values, index, y, count):
    """The batch's top ``count`` of ``values`` (C, B) per channel, located in y, merged with the
    kept (values, indices, locations). tf.math.top_k lists equal values in column order, and the
    kept columns come first holding lower example indices, so ties stay broken by lower index."""
    import tensorflow as tf

    best = _top(values, count)
    if len(y.shape) == 2:                                 # Dense: the unit itself, no location
        where = tf.zeros(tf.concat([tf.shape(best.indices), [0]], 0), tf.int64)
    else:
        where = _candidate_locations(y, best.indices)
    both = [tf.concat([a, b], axis=1)
            for a, b in zip(kept, (best.values, tf.gather(index, best.indices), where))]
    top = _top(both[0], count)
    return [top.values] + [tf.gather(a, top.indices, axis=1, batch_dims=1) for a in both[1:]]


def _scan_step(model, layers, pool: str, count: int):
    """Compiled: one batch in, the running High/Low top ``count`` of every layer updated."""
    import tensorflow as tf

    def build():
        tap = _graph.tap(model, layers)
        state_spec = []
        for name in layers:      # per side: values (C, n), indices (C, n), locations (C, n, n_sp)
            shape = _graph.output_shape(model, name)
            side = [tf.TensorSpec((shape[-1], None), tf.float32),
                    tf.TensorSpec((shape[-1], None), tf.int64),
                    tf.TensorSpec((shape[-1], None, len(shape) - 1), tf.int64)]
            state_spec.append([side, list(side)])

        @tf.function(input_signature=[_graph.input_spec(model, "float32"),
                                      tf.TensorSpec((), tf.int64), state_spec])
        def step(x, offset, state):
            index = offset + tf.range(tf.shape(x, out_type=tf.int64)[0])
            new_state = []
            for y, (high, low) in zip(tap(x), state):
                y = tf.cast(y, tf.float32)         # a mixed-precision layer computes in float16
                pooled = tf.transpose(features.pool_maps(y, pool))                    # (C, B)
                new_state.append([_merge(high, pooled, index, y, count),
                                  _merge(low, -pooled, index, y, count)])            # Low = -value
            return new_state

        return step

    key = ("scan step", pool, count) + tuple(_graph.path_name(model, layer) for layer in layers)
    return _graph.memo(model, key, build)


def _datasets(ds) -> list:
    """Every dataset of a tf.data pipeline: ``ds`` and, recursively, the datasets it reads."""
    found, todo = [], [ds]
    while todo:
        found.append(todo.pop())
        todo.extend(found[-1]._inputs())
    return found


def _function_ops(dataset) -> list:
    """The ops of the functions a dataset applies: an interleave's inner datasets are there.
    (Only functions are serialized: the pipeline's own graph would copy in-memory data.)"""
    ops = []
    for value in vars(dataset).values():
        graph = getattr(getattr(value, "function", None), "graph", None)
        if graph is not None:
            graph_def = graph.as_graph_def()
            ops += list(graph_def.node) + [op for f in graph_def.library.function
                                           for op in f.node_def]
    return ops


def _op_stage(op, consts) -> tuple:
    """(kind, reshuffles, deterministic, repeat count) of a dataset op inside a function."""
    import tensorflow as tf

    attrs, count = op.attr, None
    if op.op == "RepeatDataset" and op.input[1].split(":")[0] in consts:
        value = consts[op.input[1].split(":")[0]].attr["value"].tensor
        count = int(tf.make_ndarray(value))
    reshuffles = not ("reshuffle_each_iteration" in attrs
                      and not attrs["reshuffle_each_iteration"].b)
    deterministic = attrs["deterministic"].s.decode() if "deterministic" in attrs else ""
    return op.op, reshuffles, deterministic, count


def _stages(ds):
    """(kind, reshuffles, deterministic, repeat count) of every step of the pipeline: datasets
    from their Python objects, datasets inside functions from their ops."""
    for dataset in _datasets(ds):
        kind = type(dataset).__name__
        count = int(dataset._count) if "Repeat" in kind and hasattr(dataset, "_count") else None
        yield (kind, getattr(dataset, "_reshuffle_each_iteration", True) is not False,
               str(getattr(dataset, "_deterministic", "")), count)
        ops = _function_ops(dataset)
        consts = {op.name: op for op in ops if op.op == "Const"}
        yield from (_op_stage(op, consts) for op in ops if "Dataset" in op.op)


def _order_problem(ds):
    """Why the indices of a scan of ``ds`` would mean nothing (None when they are fine): it
    reshuffles on every pass, yields examples in no fixed order, or never ends."""
    import tensorflow as tf

    length = int(ds.cardinality())
    if length == tf.data.INFINITE_CARDINALITY:
        return "it never ends (.repeat() without a count); scan a finite part: data.take(n)"
    for kind, reshuffles, deterministic, count in _stages(ds):
        if "Shuffle" in kind and reshuffles:
            return (f"it shuffles its examples anew on every pass ({kind}), so an index would "
                    "not point at the same example when you read the data again. Build it "
                    "without shuffling (image_dataset_from_directory(..., shuffle=False), no "
                    ".shuffle(...)), or with .shuffle(..., reshuffle_each_iteration=False)")
        if deterministic == "false" or (deterministic == "default"
                                        and ds.options().deterministic is False):
            return (f"it yields its examples in no fixed order ({kind} with deterministic=False)"
                    "; build it with deterministic=True")
        if count is not None and count < 0 and length == tf.data.UNKNOWN_CARDINALITY:
            return ("it may never end (.repeat() without a count, and its length is unknown); "
                    "scan a finite part: data.take(n), or if it does end, declare its length: "
                    "data.apply(tf.data.experimental.assert_cardinality(n))")
    return None


def _check_dataset(model, ds):
    """The shape of the dataset's images, checked: a clear error for a dataset scan cannot read
    or whose indices would mean nothing (see ``_order_problem``)."""
    import tensorflow as tf

    problem = _order_problem(ds)
    if problem:
        raise ValueError(f"data cannot be scanned: {problem}. scan returns indices that count the "
                         "examples in the order the dataset yields them")
    spec = ds.element_spec[0] if isinstance(ds.element_spec, (tuple, list)) else ds.element_spec
    if isinstance(spec, dict) or not isinstance(spec, tf.TensorSpec):
        raise TypeError(f"the dataset must yield images x or tuples (x, y, ...); its elements are "
                        f"{spec}")
    expected = _graph.input_shape(model)
    shape = tuple(spec.shape) if spec.shape.rank is not None else ()
    if not (_checks.fits_shape(shape, expected) or _checks.fits_shape(shape[1:], expected)):
        raise ValueError(f"the dataset yields images of shape {shape}; model {model.name!r} "
                         f"expects batches (N, {', '.join(map(str, expected))})")
    return shape


def _checked_batch(model, x, seen: int) -> np.ndarray:
    """One batch of a dataset, checked like an array (``_graph.check_images``): float32."""
    x = np.asarray(x)
    expected = _graph.input_shape(model)
    if not _checks.fits_shape(x.shape[1:], expected):
        raise ValueError(f"the dataset yields a batch of shape {x.shape}; model {model.name!r} "
                         f"expects (N, {', '.join(map(str, expected))})")
    if np.issubdtype(x.dtype, np.number) and not np.all(np.isfinite(x)):
        raise ValueError(f"data contains NaN or infinite values (in examples "
                         f"{seen}..{seen + len(x) - 1})")
    try:
        return _graph.check_images(model, x, "images")[0]
    except TypeError as e:
        raise TypeError(f"the dataset's images cannot be used: {e}. Convert them in the dataset "
                        "with data.map, e.g. data.map(lambda x, y: (tf.cast(x, tf.float32) / 255, "
                        "y)) for a model trained on [0, 1] images") from None


def _dataset_batches(model, ds, batch_size):
    """Batches of images from a tf.data.Dataset of x or (x, y, ...); single images are batched."""
    if _checks.fits_shape(_check_dataset(model, ds), _graph.input_shape(model)):
        ds = ds.batch(batch_size)                # single images: batch them here

    def batches():
        seen = 0
        for element in ds:
            x = element[0] if isinstance(element, (tuple, list)) else element
            yield _checked_batch(model, x, seen)
            seen += len(x)
        if seen == 0:
            raise ValueError("data is an empty dataset: it yielded no example")

    return batches()


def _source(model, data, batch_size, count):
    """(batches of images, how many there are or None for a dataset)."""
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        return _dataset_batches(model, data, batch_size), None
    x, _ = _graph.check_images(model, data, "data")
    _check_count(count, len(x), "the data")
    return (x[s] for s in _checks.batches(len(x), batch_size)), len(x)


def _layer_names(model, layers) -> list:
    """The layers' names as given; each must be a layer with a channel axis, named once."""
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
             scales its input itself).
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
    import tensorflow as tf
    from tqdm.auto import tqdm

    layers = _checks.layer_list(layers)
    pool = _checks.one_of(pool, "pool", features.POOLS)
    count, batch_size = _check_count(count), _graph.batch_size(model, batch_size)
    names = _layer_names(model, layers)
    batches, total = _source(model, data, batch_size, count)
    step = _scan_step(model, layers, pool, count)
    state = _empty_state(step)
    seen = 0
    bar = tqdm(total=total, unit="img", desc="scan " + ", ".join(names), disable=not progress)
    with bar:
        for x in batches:
            state = step(x, tf.constant(seen, tf.int64), state)
            seen += len(x)
            bar.update(len(x))
    _check_count(count, seen, "the data")
    return {name: LayerScan(name, pool, seen, _examples(high), _examples(low, sign=-1.0))
            for name, (high, low) in zip(names, state)}


def _empty_state(step) -> list:
    """The kept top of every layer and side before the first batch: no example yet."""
    import tensorflow as tf

    return [[[tf.zeros(spec.shape[:1] + (0,) + spec.shape[2:], spec.dtype) for spec in side]
             for side in layer_spec] for layer_spec in step.input_signature[2]]


def _examples(side, sign: float = 1.0) -> Examples:
    """A kept (values, indices, locations) as Examples; the Low side was ranked by -value."""
    values, indices, locations = (np.asarray(t) for t in side)
    return Examples(indices, sign * values, locations)

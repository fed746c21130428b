"""Reading a ``tf.data.Dataset`` for ``max_activation.scan``: batches of checked images, in a fixed
order.

``scan`` reports examples by their position in the order the dataset yields them, so a dataset whose
order changes from one pass to the next (reshuffling, ``deterministic=False``) or that never ends is
refused, with the way to build it. The checks read the pipeline's stages (its Python objects and the
ops of the functions it applies): tf.data internals, kept here, apart from the ranking. A dataset
that does not declare its shape in full (``from_generator`` with ``tf.TensorSpec(None)``) is read
as it comes: each element is one image or a batch by its actual shape, checked against the model.

>>> for x in dataset_batches(model, ds, batch_size=256):   # float32 batches (B, H, W, C)
...     ...
"""
import numpy as np

from . import _checks, _graph


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
    """The spec of the dataset's images, checked: a clear error for a dataset scan cannot read,
    whose indices would mean nothing (see ``_order_problem``), or whose declared shape is neither
    one image of the model nor a batch of them. An unknown rank or size is checked per element."""
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
    shape = tuple(spec.shape) if spec.shape.rank is not None else None
    if shape is not None and not (_checks.fits_shape(shape, expected)
                                  or _checks.fits_shape(shape[1:], expected)):
        raise ValueError(f"the dataset yields images of shape {shape}; model {model.name!r} "
                         f"expects batches (N, {', '.join(map(str, expected))})")
    return spec


def _shape_advice(expected) -> str:
    """How to give a dataset its shape, for a model whose one image has shape ``expected``."""
    batch = ", ".join(map(str, (None,) + expected))
    return (f"Give the dataset its shape: Dataset.from_generator(..., output_signature="
            f"tf.TensorSpec(({batch}), tf.float32)) for batches, or tf.TensorSpec({expected}, "
            f"tf.float32) for single images (after a map: tf.ensure_shape)")


def _checked_batch(model, x, seen: int, spec) -> np.ndarray:
    """One batch of a dataset, checked like an array (``_graph.check_images``): float32."""
    expected = _graph.input_shape(model)
    if x.ndim == 0 or not _checks.fits_shape(x.shape[1:], expected):
        unknown = (f" (its element_spec has unknown rank, so scan reads each element's shape "
                   f"as it comes). {_shape_advice(expected)}") if spec.shape.rank is None else ""
        raise ValueError(f"the dataset yields an element of shape "
                         f"{x.shape} after {seen} examples; model {model.name!r} expects images "
                         f"{expected} or batches (N, {', '.join(map(str, expected))}){unknown}")
    if np.issubdtype(x.dtype, np.number) and not np.all(np.isfinite(x)):
        raise ValueError(f"data contains NaN or infinite values (in examples "
                         f"{seen}..{seen + len(x) - 1})")
    try:
        return _graph.check_images(model, x, "images")[0]
    except TypeError as e:
        raise TypeError(f"the dataset's images cannot be used: {e}. Convert them in the dataset "
                        "with data.map, e.g. data.map(lambda x, y: (tf.cast(x, tf.float32) / 255, "
                        "y)) for a model trained on [0, 1] images") from None


def _as_batches(arrays, expected, batch_size):
    """The arrays a dataset yields, as batches: an array of the shape of one image (``expected``)
    joins the next batch of up to ``batch_size`` images of its shape; any other is a batch."""
    images = []
    for x in arrays:
        single = _checks.fits_shape(x.shape, expected)
        if images and (not single or x.shape != images[0].shape or len(images) == batch_size):
            yield np.stack(images)
            images = []
        if single:
            images.append(x)
        else:
            yield x
    if images:
        yield np.stack(images)


def dataset_batches(model, ds, batch_size):
    """Batches of images from a tf.data.Dataset of x or (x, y, ...); single images are batched:
    by tf.data when their shape is declared in full, else here, as they come (unknown rank or
    size, e.g. ``from_generator(..., output_signature=tf.TensorSpec(None, tf.float32))``)."""
    spec, expected = _check_dataset(model, ds), _graph.input_shape(model)
    if spec.shape.is_fully_defined() and _checks.fits_shape(tuple(spec.shape), expected):
        ds = ds.batch(batch_size)

    def batches():
        seen = 0
        arrays = (np.asarray(element[0] if isinstance(element, (tuple, list)) else element)
                  for element in ds)
        for x in _as_batches(arrays, expected, batch_size):
            yield _checked_batch(model, x, seen, spec)
            seen += len(x)
        if seen == 0:
            raise ValueError("data is an empty dataset: it yielded no example")

    return batches()

r"""The perturbation engine (private): the target on batches of changed copies of the images.

Occlusion, RISE, Score-CAM, deletion / insertion and MuFidelity all ask one question many
times: what is the target :math:`s` on a changed copy :math:`\tilde\x` of image :math:`\x^{(i)}`?
They differ only in how a copy is made. A method describes that by a :class:`Copies`:

- ``shared``: arrays every copy may read, sent to the device once per call of :func:`scores`
  (the images, their fills, a table of masks...);
- ``per_copy``: arrays with one row per copy (which patch, which mask, which step...);
- ``make(shared, image, rows)``: ``keras.ops`` code that builds a batch of copies from the shared
  tensors, the index ``image`` (B,) of the image each copy changes and the batch's ``rows``.

The engine runs ``make`` inside ONE compiled step per (method key, the arrays' shapes and dtypes,
target layer, pool, located) that also reads the target on the copies, ``batch_size`` copies per
call. Only this module (with ``_gradient`` and ``_graph``) is specific to TensorFlow: a method
supplies arrays and ``keras.ops`` code. The target is resolved
(:func:`cnn_helper.features.resolve`): a located ``Feature`` is read at its idx on every copy,
a pooled one is pooled afresh, by construction. Copies never exist outside the step (memory stays
bounded) and the result does not depend on ``batch_size``.

Example (occlusion's full re-inference, in ``cnn_helper._patches``)::

    copies = Copies(("occlusion",), make_occluded, shared=(images, fills), per_copy=(bounds,))
    values = scores(model, target, copies, image_of_copy, batch_size)      # (n_copies,)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import _graph, features


@dataclass(frozen=True)
class Copies:
    """How a perturbation method makes its changed copies (module docstring).

    key      : names the method and every static setting ``make`` closes over (a grid size):
               one compiled step per key (and per shape and dtype of the arrays)
    make     : (shared tensors (tuple), image indices (B,) int32, rows (tuple)) -> copies
               (B, *input shape), in ``keras.ops``
    shared   : arrays every copy may read (images, fills, mask tables), in the dtypes the step
               takes them in (images in ``image_dtype(model)``)
    per_copy : arrays with one row per copy, sliced into batches
    """

    key: tuple
    make: Callable
    shared: tuple
    per_copy: tuple = ()


def image_dtype(model):
    """The dtype copies are made in (NumPy): the model's float input dtype, or float32 for a
    model that takes integer pixels (a masked or blended pixel is a fraction of one)."""
    dtype = _graph.input_spec(model).dtype
    return dtype.as_numpy_dtype if dtype.is_floating else np.float32


def _spec(array):
    """The ``tf.TensorSpec`` of a batch of arrays like ``array``: its shape, the first axis
    free."""
    import tensorflow as tf

    return tf.TensorSpec((None,) + tuple(np.shape(array)[1:]), tf.as_dtype(array.dtype))


def _signature(copies: Copies) -> tuple:
    """What the compiled step is traced for: the arrays' shapes (first axis free) and dtypes."""
    return tuple((np.shape(a)[1:], str(np.asarray(a).dtype)) for a in copies.shared +
                 copies.per_copy)


def _step(model, target: features.Target, copies: Copies):
    """Compiled: (*shared, image indices, *rows, channel[, locations]) -> the target on each
    copy (B,) float32. One trace per (copies.key, the arrays' signature, target layer, pool,
    located)."""
    import tensorflow as tf

    make, n_shared, n_rows = copies.make, len(copies.shared), len(copies.per_copy)

    def build():               # holds make and the counts, never the arrays (the cache keeps it)
        tap = _graph.tap(model, [target.layer])
        n_spatial = len(_graph.output_shape(model, target.layer)) - 1
        specs = [_spec(a) for a in copies.shared] + [tf.TensorSpec((None,), tf.int32)]
        specs += [_spec(a) for a in copies.per_copy] + [tf.TensorSpec((), tf.int32)]
        specs += [tf.TensorSpec((None, n_spatial), tf.int64)] if target.located else []

        @tf.function(autograph=False, input_signature=specs)
        def step(*args):
            shared, image = args[:n_shared], args[n_shared]
            rows = args[n_shared + 1:n_shared + 1 + n_rows]
            channel, locations = args[n_shared + 1 + n_rows], args[n_shared + 2 + n_rows:]
            y = tap(make(shared, image, rows))[0]
            value = target.read(y, channel, locations[0] if locations else None)
            return tf.cast(value, tf.float32)       # a mixed-precision layer computes in float16

        return step

    key = ("perturbation step", tuple(copies.key), _signature(copies), target.layer,
           target.pool, target.located)
    return _graph.memo(model, key, build)


def scores(model, target: features.Target, copies: Copies, image_of_copy,
           batch_size: int) -> np.ndarray:
    """The target on every copy (n_copies,) float64: copy j changes image ``image_of_copy[j]``
    as ``copies.make`` says, ``batch_size`` copies per compiled call.

    >>> values = scores(model, target, copies, np.repeat(np.arange(n), per_image), 256)
    """
    import tensorflow as tf

    step = _step(model, target, copies)
    shared = [tf.convert_to_tensor(a) for a in copies.shared]
    image_of_copy = np.asarray(image_of_copy, np.int32)
    channel = np.int32(target.channel)
    arrays = (image_of_copy,) + tuple(copies.per_copy)
    if target.located:
        arrays += (np.asarray(target.locations, np.int64)[image_of_copy],)

    def run(image, *rest):
        rows, where = rest[:len(copies.per_copy)], rest[len(copies.per_copy):]
        return [step(*shared, image, *rows, channel, *where)]

    values, = _graph.run_batched(run, batch_size, *arrays)
    return values.astype(np.float64)


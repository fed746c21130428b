"""What TensorFlow compiles for a model: the spec of a batch of its inputs, and functions of
such a batch traced or compiled on it. The one module of the graph package that uses
TensorFlow."""
from __future__ import annotations

from .inputs import model_input


def input_spec(model, dtype=None):
    """A ``tf.TensorSpec`` for a batch of the model's inputs, in ``dtype`` (default: its own).

    >>> input_spec(model, "float32")
    TensorSpec(shape=(None, 28, 28, 1), dtype=tf.float32, name=None)
    """
    import tensorflow as tf

    tensor = model_input(model)
    return tf.TensorSpec((None,) + tuple(tensor.shape[1:]), tf.as_dtype(dtype or tensor.dtype))


def trace(fn, model):
    """Trace ``fn`` once on a symbolic batch of the model's inputs (its own dtype), without
    running it: what ``fn`` records about the shapes it meets is then known."""
    import tensorflow as tf

    tf.function(fn, autograph=False).get_concrete_function(input_spec(model))


def for_batches(fn, model):
    """``fn`` compiled (``tf.function``) for float32 batches of the model's inputs of any size."""
    import tensorflow as tf

    return tf.function(fn, input_signature=[input_spec(model, "float32")])

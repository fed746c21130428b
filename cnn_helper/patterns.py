r"""First-layer weights as pictures: the patterns a first layer matches its input against.

A unit of the first layer computes a dot product :math:`\w \cdot \x` (+ bias): it responds most to
inputs that look like its pattern :math:`\w`. For a Dense layer on a flattened image, column k of
the kernel reshaped to the image is that pattern (the logistic model's "idealized digits"); for a
convolution, each kernel (f x f x n_(0)) is a pattern matched at every location.

Example
-------
>>> k = conv_kernels(cnn)                    # (16, 3, 3, 1): every kernel of the first conv layer
>>> p = dense_patterns(logistic)             # (10, 28, 28, 1): one pattern per digit
"""
from __future__ import annotations

import numpy as np

from . import _graph


def _conv_layers(model):
    """Every Conv2D layer, nested models included, in the order the model lists them."""
    import keras

    return [path[-1] for _, path in _graph.walk(model) if isinstance(path[-1], keras.layers.Conv2D)]


def conv_kernels(model, layer=None) -> np.ndarray:
    """The kernels of a Conv2D layer (default: the first one, looking inside nested models too)
    as (n_kernels, f_rows, f_cols, n_in)."""
    import keras

    if layer is None:
        convs = _conv_layers(model)
        if not convs:
            raise ValueError(f"model {model.name!r} has no Conv2D layer; its layers are "
                             f"{[layer.name for layer in model.layers]}")
        conv = convs[0]
    else:
        conv = _graph.find_layer(model, layer)[-1]
        if not isinstance(conv, keras.layers.Conv2D):
            raise ValueError(f"layer {conv.name!r} is a {type(conv).__name__}, not a Conv2D layer")
    kernel = np.asarray(conv.kernel)            # (f_rows, f_cols, n_in, n_kernels)
    return np.moveaxis(kernel, -1, 0)


def dense_patterns(model, layer="logits", image_shape=None) -> np.ndarray:
    """Weight vector of every unit of a Dense layer reshaped to the image: (n_units, *image_shape).

    ``image_shape`` defaults to the model's input shape; the layer's input size must match it.
    """
    import keras

    dense = _graph.find_layer(model, layer)[-1]
    if not isinstance(dense, keras.layers.Dense):
        raise ValueError(f"layer {dense.name!r} is a {type(dense).__name__}, not a Dense layer")
    shape = tuple(image_shape or _graph.input_shape(model))
    kernel = np.asarray(dense.kernel)           # (n_inputs, n_units)
    if kernel.shape[0] != int(np.prod(shape)):
        raise ValueError(f"layer {dense.name!r} has {kernel.shape[0]} inputs, which cannot be "
                         f"reshaped to the image shape {shape}")
    return kernel.T.reshape((kernel.shape[1],) + shape)

"""A model's input and the images given to it."""
from __future__ import annotations

import numpy as np

from .. import _checks
from .cache import memo
from .lookup import walk
from .traversal import graph_model


def model_input(model):
    """The model's one input tensor, or a TypeError/ValueError saying how to give it one."""
    inputs = graph_model(model).inputs
    if len(inputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(inputs)} inputs; cnn_helper explains "
                         "models with a single image input")
    return inputs[0]


def input_shape(model) -> tuple:
    """The shape of one input image (no batch axis); None for a free size.

    >>> input_shape(model)
    (28, 28, 1)
    """
    return tuple(model_input(model).shape[1:])


def _rescales(layer) -> bool:
    """Whether a Rescaling layer shrinks (1/255, 1/127.5), or a Normalization layer's means are
    pixel values (above 1)."""
    import keras

    if isinstance(layer, keras.layers.Rescaling):
        return bool(np.all(np.abs(np.asarray(layer.scale, dtype=float)) < 1))
    mean = getattr(layer, "mean", None)                      # None: not adapted yet
    return mean is not None and float(np.max(np.asarray(mean))) > 1


def takes_integer_images(model) -> bool:
    """Whether ``model`` takes integer pixels as they are: its Input has an integer dtype, or the
    first layer that computes on its input (nested models entered; resizing and augmentation
    layers passed) is a Rescaling layer that shrinks (1/255, 1/127.5) or a Normalization layer
    whose means are pixel values (above 1), as in EfficientNet and ConvNeXt. Dividing such
    images by 255 first would scale them twice."""
    import keras

    def front_scales() -> bool:
        if not model_input(model).dtype.startswith(("float", "bfloat")):
            return True
        for _, path in walk(graph_model(model)):
            layer = path[-1]
            if isinstance(layer, (keras.layers.InputLayer, keras.Model)):
                continue
            if isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)):
                return _rescales(layer)
            if not type(layer).__module__.startswith("keras.src.layers.preprocessing"):
                return False
        return False

    return memo(model, ("takes integer images",), front_scales)


def check_images(model, x, name: str = "x"):
    """Images checked against the model's input: (float32 batch, was_single_image). Integer
    images are cast to float32, unscaled, for a model that takes them (``takes_integer_images``);
    for another, the error says whether to divide by 255.

    >>> x, single = check_images(model, image)          # (1, 28, 28, 1), True
    """
    return _checks.images_for(x, input_shape(model), model.name, name,
                              integers_ok=takes_integer_images(model))

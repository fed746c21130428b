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
    for another, the error says whether to divide by 255. Images far outside the range the model
    was trained on, when it records one, give a warning (``warn_outside_training_range``).

    >>> x, single = check_images(model, image)          # (1, 28, 28, 1), True
    """
    images, single = _checks.images_for(x, input_shape(model), model.name, name,
                                        integers_ok=takes_integer_images(model))
    warn_outside_training_range(model, images, name)
    return images, single


# --------------------------------------------------------------------------- the training range

FAR_OUTSIDE = 1.0
"""How far images may leave a model's training range [low, high], in widths high - low, before
``check_images`` warns: for [0, 1], values below -1 or above 2 (pixel values 0..255 reach 255)."""


def training_range(model):
    """The range (low, high) of the images ``model`` was trained on, when the model records it
    in its ``training_range`` attribute (the package's models do, ``models.load``; a model of your
    own may: ``model.training_range = (0, 1)``); None when it is unknown."""
    recorded = getattr(model, "training_range", None)
    if recorded is None:
        return None
    if not (isinstance(recorded, (tuple, list)) and len(recorded) == 2
            and all(_checks.is_number(v) for v in recorded) and recorded[0] < recorded[1]):
        raise ValueError(f"model {model.name!r} has training_range {recorded!r}; it must be a "
                         "pair (low, high) of numbers, low < high, e.g. (0, 1)")
    return float(recorded[0]), float(recorded[1])


def _pixel_fix(name: str, low: float, high: float) -> str:
    """The expression that takes pixel values 0..255 in ``name`` to [low, high]: "x / 255"."""
    scaled = f"{name} / {255 / (high - low):g}"
    return scaled if low == 0 else f"{scaled} {'-' if low < 0 else '+'} {abs(low):g}"


def outside_training_range(model, images):
    """When ``images`` lie far outside the range the model was trained on (``training_range``,
    more than ``FAR_OUTSIDE`` widths beyond it): ((low, high) seen, (low, high) trained); else
    None (also when the model records no range). The facts behind the warning below, which the
    command line says in its own words.

    >>> outside_training_range(models.load("cnn"), x_test * 255)     # ((0.0, 255.0), (0.0, 1.0))
    """
    trained = training_range(model)
    if trained is None or np.size(images) == 0:
        return None
    (low, high), seen = trained, (float(np.min(images)), float(np.max(images)))
    margin = FAR_OUTSIDE * (high - low)
    if low - margin <= seen[0] and seen[1] <= high + margin:
        return None
    return seen, trained


def warn_outside_training_range(model, images, name: str = "x"):
    """A warning, once per call of the package, when ``images`` lie far outside the range the
    model was trained on (``outside_training_range``): a float image of pixel values 0..255
    given to a model trained on [0, 1] is accepted, and its maps explain nothing.

    >>> saliency.gradient(models.load("cnn"), x_test * 255, 3)
    UserWarning: x holds values in [0, 255], far outside [0, 1], the range model 'mnist_cnn' was
    trained on: ... if x holds pixel values 0..255, give x / 255
    """
    outside = outside_training_range(model, images)
    if outside is None:
        return
    seen, (low, high) = outside
    fix = (f"if {name} holds pixel values 0..255, give {_pixel_fix(name, low, high)}"
           if 0 <= seen[0] and seen[1] <= 255 else f"rescale {name} to [{low:g}, {high:g}]")
    warn_once_per_call(f"{name} holds values in [{seen[0]:.3g}, {seen[1]:.3g}], far outside "
                       f"[{low:g}, {high:g}], the range model {model.name!r} was trained on: "
                       f"what it computes there says little about the images; {fix}")


_LAST_WARNED = [None]
"""The call that was warned last: (id of the caller's frame, its code, the instruction)."""


def warn_once_per_call(message: str):
    """``warnings.warn(message)`` shown at the user's line (the first frame outside cnn_helper),
    and not again while that same call runs: one call checks its images at several depths, a
    scan once per batch. Calls made from one line in a loop warn once, as Python shows a repeated
    warning; then Python's filters apply as to any warning."""
    import sys
    import warnings

    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "cnn_helper":
        frame, level = frame.f_back, level + 1
    call = None if frame is None else (id(frame), id(frame.f_code), frame.f_lasti)
    if call is not None and call == _LAST_WARNED[0]:
        return
    _LAST_WARNED[0] = call
    warnings.warn(message, stacklevel=level)

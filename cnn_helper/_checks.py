"""Input checks shared by every public function (private).

Each check returns the value in the form the package computes with, or raises a ValueError /
TypeError that names the argument, the value it got and what is allowed. No TensorFlow here: a
student's typo is answered before any graph is built.
"""
from __future__ import annotations

import numpy as np

BATCH_SIZE = "auto"
"""The one default ``batch_size`` (images per compiled call) of every method: "auto" takes as many
images as fit in a fixed memory budget of layer outputs (``_graph.batch_size``), so a small CNN
runs in large, fast batches and a 224x224 VGG16 stays under 4 GB. It never changes a result."""


def is_int(value) -> bool:
    """A Python or NumPy integer, but not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def one_of(value, name: str, allowed) -> str:
    """``value`` when it is one of ``allowed``; a ValueError listing them otherwise."""
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} {value!r} is not one of {allowed}")
    return value


def positive_int(value, name: str) -> int:
    """``value`` as an int >= 1; a ValueError naming ``name`` and the value otherwise."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def batch_size(value):
    """``value`` as a positive int, or "auto"."""
    if value == "auto":
        return value
    if not is_int(value) or value < 1:
        raise ValueError(f"batch_size must be a positive int or 'auto', got {value!r}")
    return int(value)


def seed(value) -> int:
    if not is_int(value) or value < 0:
        raise ValueError(f"seed must be an int >= 0, got {value!r}")
    return int(value)


def non_negative(value, name: str, meaning: str = "") -> float:
    """A finite number >= 0 (``meaning`` explains it in the error)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0{meaning}, got {value!r}")
    return float(value)


def index_tuple(value, name: str = "location") -> tuple:
    """A spatial index (tuple, list or 1-D integer array, e.g. a row of ``locations``) as a tuple
    of Python ints; a TypeError naming ``name`` otherwise."""
    values = value if isinstance(value, (tuple, list)) else np.asarray(value)
    if isinstance(values, np.ndarray):
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
            raise TypeError(f"{name} must be a tuple of ints, got {value!r}")
        values = values.tolist()
    if not all(is_int(i) for i in values):
        raise TypeError(f"{name} must be a tuple of ints, got {value!r}")
    return tuple(int(i) for i in values)


def layer_list(layers) -> list:
    """One layer (name or object) or several, as a non-empty list."""
    if isinstance(layers, str) or not hasattr(layers, "__iter__"):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise ValueError("layers is empty; give one layer name or a list of them")
    return layers


def float_images(x, name: str = "x") -> np.ndarray:
    """``x`` as a float32 array: a TypeError for non-float data, a ValueError for NaN or inf."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} has dtype {x.dtype}; images must be float (float32 in [0, 1]); "
                        f"convert with {name}.astype('float32') / 255")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x.astype(np.float32, copy=False)


def fits_shape(shape, expected) -> bool:
    """Whether ``shape`` matches ``expected`` axis by axis (None, on either side, matches any)."""
    return len(shape) == len(expected) and all(
        e is None or s is None or e == s for e, s in zip(expected, shape))


def images_for(x, expected: tuple, model_name: str, name: str = "x"):
    """Images for a model whose one image has shape ``expected``: (float32 batch, was_single).

    Accepts a batch (N, *expected) or one image (*expected). Non-float data is a TypeError,
    NaN/inf or a wrong shape a ValueError naming the expected shape.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        float_images(x, name)                     # the dtype error first, before the shape's
    single = fits_shape(x.shape, expected)
    if not single and not fits_shape(x.shape[1:], expected):
        raise ValueError(f"{name} has shape {x.shape}; model {model_name!r} expects images of "
                         f"shape (N, {', '.join(str(e) for e in expected)}) or one image of shape "
                         f"{expected}")
    x = float_images(x, name)
    return (x[None] if single else x), single


def batches(n: int, size: int):
    """Slices [start, stop) covering range(n) in chunks of ``size``."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))

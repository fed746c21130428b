r"""Reference inputs and the input's range (private): one resolver for each.

**The input's range** (:func:`value_range`): the values a model's input takes, per channel, as
(low, high). "auto" reads it from the model, then from the data:

1. a model that scales its own input (a ``Rescaling(1/255)`` or pixel-valued ``Normalization``
   front, an integer Input: ``_graph.takes_integer_images``) takes [0, 255]; a model that records
   the range of its training images (``model.training_range``, as the package's models do) takes
   that range;
2. otherwise, given images, the first of ``RANGES`` that holds them: [0, 1] (the package's
   MNIST), [-1, 1] (MobileNetV2's ``preprocess_input``), [0, 255] (raw pixels); for values with no
   convention (caffe-style preprocessing, standardised inputs) the images' own min and max of each
   channel;
3. with no images, [0, 1].

**A reference input** (:func:`reference`): what replaces part of an input, the :math:`\x'` of
Integrated Gradients, deletion/insertion and MuFidelity (``baseline``) and what occlusion and RISE
paint where they hide (``fill``). One set of forms everywhere:

- ``"zero"``    : 0 (MNIST's black background);
- ``"mean"``    : each image's own mean of each channel (a flat image of its average colour);
- ``"extreme"`` : the top of the input's range (:func:`value_range`): on MNIST, ink;
- ``"blur"``    : the image blurred by a Gaussian of standard deviation ``BLUR_SIGMA`` = 3 pixels
  per channel, edges extended (the strokes' place stays, their shape goes);
- a number, one number per channel (C,), one image (H, W, C) for every image, or one image per
  image (N, H, W, C), in the model's input range.

Each method keeps the default of its paper: occlusion ``fill="extreme"`` (the lecture's bright
square), RISE ``fill="zero"``, deletion/insertion/MuFidelity ``baseline="mean"``, Integrated
Gradients ``baseline="zero"``. Occlusion paints one value per channel, so it takes the forms
that are constant over the image (``per_pixel=False``).

Example
-------
>>> value_range(model, x=x_test[:1])                   # ((0.0,), (1.0,))
>>> reference(model, x_test[:4], "blur").values.shape  # (4, 28, 28, 1)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _checks, _graph

RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))
"""The usual ranges of image values, tried in this order for "auto" (``value_range``)."""
RANGE_TOLERANCE = 1e-3   # float rounding: an image in [0, 1.0000001] is still a [0, 1] image
FORMS = ("zero", "mean", "extreme", "blur")
BLUR_SIGMA = 3.0


# --------------------------------------------------------------------------- the input's range


def _data_range(x) -> tuple:
    """(low, high) per channel of images x (..., C): the first of ``RANGES`` that holds them,
    else their own min and max of each channel."""
    n_channels = x.shape[-1]
    lo, hi = float(np.min(x)), float(np.max(x))
    for bottom, top in RANGES:
        if lo >= bottom - RANGE_TOLERANCE and hi <= top + RANGE_TOLERANCE:
            return (bottom,) * n_channels, (top,) * n_channels
    flat = np.asarray(x, np.float64).reshape(-1, n_channels)
    return tuple(flat.min(axis=0).tolist()), tuple(flat.max(axis=0).tolist())


def _given_range(value, n_channels: int) -> tuple:
    """A pair (low, high) of numbers or of per-channel arrays, checked, as per-channel tuples."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"value_range must be 'auto' or a pair (low, high), got {value!r}")
    try:
        low, high = (np.broadcast_to(np.asarray(v, np.float64), (n_channels,)) for v in value)
    except (ValueError, TypeError):
        raise ValueError(f"value_range {value!r}: low and high must be numbers or arrays of "
                         f"{n_channels} values, one per channel") from None
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(low < high)):
        raise ValueError(f"value_range {value!r} must have finite low < high in every channel")
    return tuple(low.tolist()), tuple(high.tolist())


def value_range(model, value="auto", n_channels: int = None, x=None) -> tuple:
    """The model's input range as per-channel (low, high) tuples (module docstring): "auto" from
    the model (None: no model, the images alone), then from the images ``x`` when given, else
    [0, 1]; or a pair (low, high) of numbers or of per-channel arrays (a caffe-style model:
    0 - mean, 255 - mean).

    >>> value_range(model)                                   # the course CNN
    ((0.0,), (1.0,))
    >>> value_range(model, (-1, 1), 3)                       # three channels in [-1, 1]
    ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))
    >>> value_range(None, x=np.full((2, 2, 1), 200.0))       # no model: the data's convention
    ((0.0,), (255.0,))
    """
    if n_channels is None:
        n_channels = int(np.shape(x)[-1]) if x is not None else _graph.input_shape(model)[-1]
    if not (isinstance(value, str) and value == "auto"):
        return _given_range(value, n_channels)
    if model is not None and _graph.takes_integer_images(model):
        return (0.0,) * n_channels, (255.0,) * n_channels
    recorded = _graph.training_range(model) if model is not None else None
    if recorded is not None:
        return (recorded[0],) * n_channels, (recorded[1],) * n_channels
    if x is not None:
        return _data_range(np.asarray(x))
    return (0.0,) * n_channels, (1.0,) * n_channels


# --------------------------------------------------------------------------- reference inputs


@dataclass(frozen=True)
class Reference:
    """Resolved reference values for a batch of images.

    values : (N, H, W, C) (or (N, C) for ``per_pixel=False``) in the images' dtype
    kind   : "zero", "mean", "extreme", "blur", "number", "per channel" or "array"
    """

    values: np.ndarray
    kind: str


def _named(model, x, form: str) -> np.ndarray:
    """The named form for inputs x (N, *spatial, C) (images (N, H, W, C), sequences (N, L, C),
    volumes (N, D, H, W, C)), as (N, *spatial, C): means and blurs run over the spatial axes."""
    spatial = tuple(range(1, x.ndim - 1))
    if form == "zero":
        return np.zeros_like(x)
    if form == "mean":
        return np.broadcast_to(x.mean(axis=spatial, keepdims=True), x.shape).astype(x.dtype)
    if form == "extreme":
        tops = np.stack([value_range(model, "auto", x=image)[1] for image in x])   # (N, C)
        per_example = tops.reshape((len(x),) + (1,) * len(spatial) + (x.shape[-1],))
        return np.broadcast_to(per_example, x.shape).astype(x.dtype)
    from scipy.ndimage import gaussian_filter

    sigma = (0,) + (BLUR_SIGMA,) * len(spatial) + (0,)
    return gaussian_filter(x, sigma=sigma, mode="nearest").astype(x.dtype)


def _as_array(value, name: str, forms) -> np.ndarray:
    """A number or array ``value`` as a finite float array, or a TypeError naming the forms."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating,
                                                         list, tuple, np.ndarray)):
        raise TypeError(f"{name} must be one of {forms}, a number or an array, got {value!r}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be one of {forms}, a number or an array, got "
                        f"{value!r}") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} {value!r} is not finite (it has NaN or infinite values)")
    return array


def _given(model, value, x, name: str, per_pixel: bool) -> tuple:
    """(values (N, H, W, C), kind) of a number or array ``value`` for images x. Image-shaped
    arrays are checked as the model's images are (integer pixels only for a model that scales
    them)."""
    forms = FORMS if per_pixel else FORMS[:3]
    if per_pixel and np.ndim(value) >= x.ndim - 1:
        value = _graph.check_images(model, value, name=name)[0]      # (n, H, W, C)
        value = value[0] if len(value) == 1 else value
    array = _as_array(value, name, forms)
    kinds = {(): "number", x.shape[-1:]: "per channel"}
    if per_pixel:
        kinds.update({x.shape[1:]: "array", x.shape: "array"})
    if per_pixel and array.ndim == x.ndim and array.shape[1:] == x.shape[1:]:
        raise ValueError(f"{name} has {len(array)} images but x has {len(x)}; give one image "
                         "for all or one per image")
    if array.shape not in kinds:
        images = (f", one image {x.shape[1:]} or one per image {x.shape}" if per_pixel else
                  " (occlusion paints one value per channel into the patch)")
        raise ValueError(f"{name} has shape {array.shape}; give one of {forms}, a number, "
                         f"{x.shape[-1]} numbers (one per channel){images}")
    return np.broadcast_to(array.astype(x.dtype), x.shape), kinds[array.shape]


def reference(model, x, value, name: str = "baseline", per_pixel: bool = True) -> Reference:
    """The reference values ``value`` (module docstring: "zero", "mean", "extreme", "blur", a
    number, one per channel, one image or one per image) for the images x (N, H, W, C).
    ``per_pixel=False`` (occlusion) accepts only the forms that are one value per channel and
    returns them as (N, C). A bad value is a ValueError/TypeError naming ``name``.

    >>> reference(model, x_test[:4], "mean").values.shape              # (4, 28, 28, 1)
    >>> reference(model, x_test[:4], "extreme", "fill", per_pixel=False).values   # [[1.]] * 4
    """
    x = np.asarray(x)
    forms = FORMS if per_pixel else FORMS[:3]
    if isinstance(value, str):
        kind = _checks.one_of(value, name, forms)
        values = _named(model, x, kind)
    else:
        values, kind = _given(model, value, x, name, per_pixel)
    if not per_pixel:              # one value per channel: the first location's
        values = np.ascontiguousarray(values.reshape(len(values), -1, x.shape[-1])[:, 0])
    return Reference(values, kind)

r"""Occlusion's patches (private): where each patch lies, the fill it is painted with, and the
occluded copies, for :mod:`cnn_helper.occlusion` (which documents the geometry and re-exports
``patch_bounds``, ``occlude``, ``fill_value`` and ``extreme_value``).

An input has n spatial axes, then its channels: a sequence (L, C), an image (H, W, C) or a
volume (D, H, W, C). Per spatial axis, patch size f, stride s, length n: centres 0, s, 2s, ...
< n; the patch centred at c covers ``c - (f - 1) // 2`` to ``c + f // 2`` (Keras' "same"
split), clipped to the input. An occluded copy is built from boolean masks (keras.ops): the
outer product of one interval per spatial axis per copy.

Example
-------
>>> occlude(x_test[0], [(0, 0), (14, 14)], patch=4)     # a bright 3x3 corner, a 4x4 square
>>> occlude(sequence, [(10,)], patch=8)                 # a (64, 3) sequence: steps 7..14 hidden
"""
from __future__ import annotations

import numpy as np

from . import _checks, _perturb, _reference

AXIS_NAMES = {1: ("steps",), 2: ("rows", "cols"), 3: ("depth", "rows", "cols")}
"""What the spatial axes of an input with 1, 2 or 3 of them are called in messages."""
INPUT_NAMES = {1: "sequence", 2: "image", 3: "volume"}

# --------------------------------------------------------------------------- checks


def axis_names(n: int) -> tuple:
    """The names of n spatial axes: ("rows", "cols") for an image."""
    return AXIS_NAMES.get(n, tuple(f"axis {a}" for a in range(n)))


def size_text(values) -> str:
    """Sizes per spatial axis as the messages write them: "8", "4x4", "2x4x4"."""
    return "x".join(str(v) for v in values)


def per_axis(value, name: str, image_shape) -> tuple:
    """``value`` as one int >= 1 per spatial axis of an input of shape ``image_shape`` (spatial
    axes, then channels): an int (the same on every axis) or a tuple of them, one per axis; the
    error names the axes."""
    n = len(image_shape) - 1
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(values) != n or not all(_checks.is_int(v) for v in values):
        raise TypeError(f"{name} must be an int or a tuple of {n} int" + "s" * (n != 1) +
                        f", one per spatial axis ({', '.join(axis_names(n))}) of the input "
                        f"{tuple(image_shape)}, whose last axis holds its {image_shape[-1]} "
                        f"channels; got {value!r}")
    if min(values) < 1:
        raise ValueError(f"{name} must be at least 1, got {value!r}")
    return tuple(int(v) for v in values)


def check_patch(patch, image_shape) -> tuple:
    """``patch`` per spatial axis of an input of shape ``image_shape`` (spatial axes, then
    channels), no larger than the input along any axis."""
    spatial = tuple(image_shape[:-1])
    patch = per_axis(patch, "patch", image_shape)
    if any(f > n for f, n in zip(patch, spatial) if n is not None):
        raise ValueError(f"patch {size_text(patch)} is larger than the "
                         f"{INPUT_NAMES.get(len(spatial), 'input')}, which is "
                         f"{size_text(spatial)} ({' x '.join(axis_names(len(spatial)))})")
    return patch


def one_image(x, n_spatial: int = 2, name: str = "x") -> np.ndarray:
    """One input with ``n_spatial`` spatial axes (e.g. (H, W, C)) or a batch of one -> that
    input, float32 (integers cast, unscaled)."""
    x = _checks.float_images(x, name, integers_ok=True)
    noun, axes = INPUT_NAMES.get(n_spatial, "input"), ", ".join(axis_names(n_spatial))
    if x.ndim == n_spatial + 2:
        if len(x) != 1:
            raise ValueError(f"{name} has {len(x)} {noun}s; give one {noun} ({axes}, channels) "
                             "or a batch of one")
        x = x[0]
    if x.ndim != n_spatial + 1:
        raise ValueError(f"{name} has shape {x.shape}; it must be one {noun} ({axes}, channels)")
    return x


def channel_fills(model, images, fill) -> np.ndarray:
    """The (N, C) per-channel fills of inputs (N, *spatial, C) (images, sequences, volumes), by
    the package's reference forms (``_reference.reference(per_pixel=False)``)."""
    return _reference.reference(model, np.asarray(images), fill, "fill", per_pixel=False).values


def extreme_value(x, model=None) -> np.ndarray:
    """The (C,) "extreme" fill of image ``x`` (H, W, C): the top of the input's range, by the
    package's one range rule (``cnn_helper._reference.value_range``): 255.0 for a ``model`` that
    scales its own input; else, from the image, 1.0 when every value lies in [0, 1] or [-1, 1],
    255.0 when they lie in [0, 255], otherwise (a range without a convention, e.g. caffe-style
    preprocessing in [-124, 151], or standardised values) the image's own maximum of each channel.
    It is read from the one image, so a batch gives every image the fill it would get alone:
    the result never depends on how the data is split or on ``batch_size``.

    >>> extreme_value(x_test[0])                     # MNIST in [0, 1]: array([1.], dtype=float32)
    """
    return np.asarray(_reference.value_range(model, "auto", x=x)[1], np.float32)


def fill_value(fill, x, model=None) -> np.ndarray:
    """The (C,) value painted into the patch for image ``x`` (H, W, C), or any input with its
    channels last (a sequence (L, C), a volume (D, H, W, C)).

    "extreme": the top of the input's range (``extreme_value``: 1.0 for the package's [0, 1]
    images, a bright square, as in the lecture; 255.0 for [0, 255] images); "zero": 0.0; "mean":
    the image's mean of each channel; a number: that value in every channel; an array of C
    numbers: one value per channel. These are the package's reference forms that are one value
    per channel (``cnn_helper._reference``).

    Choosing: on MNIST "extreme" paints ink (it *adds* a stroke); "zero" paints the background
    (it erases). Other ranges take a number: caffe-style ``preprocess_input`` (VGG16, ResNet50)
    ``fill=255 - np.array([103.939, 116.779, 123.68])`` for white or ``fill=0.0`` for the mean
    colour, standardised inputs ``fill=0.0``.

    >>> fill_value("mean", x_test[0])               # array([0.13...], dtype=float32)
    """
    return channel_fills(model, np.asarray(x)[None], fill)[0].astype(np.float32)


# --------------------------------------------------------------------------- patches


def patch_bounds(locations, size: int, patch: int):
    """[start, stop) of the patch of length ``patch`` centred at each of ``locations`` along an
    axis of length ``size``, clipped to [0, size): start = c - (patch - 1) // 2, stop = start +
    patch (Keras "same" split)."""
    start = np.asarray(locations, np.int64) - (patch - 1) // 2
    return np.clip(start, 0, size), np.clip(start + patch, 0, size)


def occluded(x, fill, bounds):
    """Occluded copies, built from boolean masks (``keras.ops``): (B, *spatial, C).

    x: one input (*spatial, C) for every copy, or one per copy (B, *spatial, C), with n spatial
    axes; fill: (C,), or (B, 1, ..., 1, C) one per copy; bounds (2n, B) int32 (or 2n vectors
    (B,)): start and stop of each patch along each spatial axis in turn (for an image: row start,
    row stop, col start, col stop). Pixel idx of copy b is ``fill`` where start_a[b] <= idx_a <
    stop_a[b] on every axis a, else x's.
    """
    from keras import ops

    n = len(bounds) // 2
    mask = None
    for a in range(n):                                   # one interval per axis, then AND
        length = ops.shape(x)[a - n - 1]
        where = ops.arange(length, dtype="int32")[None, :]
        inside = (where >= bounds[2 * a][:, None]) & (where < bounds[2 * a + 1][:, None])
        inside = ops.reshape(inside, (-1,) + tuple(length if b == a else 1 for b in range(n))
                             + (1,))                     # (B, 1, .., length, .., 1, 1)
        mask = inside if mask is None else mask & inside
    return ops.where(mask, ops.cast(fill, x.dtype), x)


def bounds_of(locations, image_shape, patch) -> np.ndarray:
    """(2n, B) int32 patch bounds of the patches centred at ``locations`` (B, n) of an input
    of shape ``image_shape`` (n spatial axes, then channels)."""
    return np.stack([bound for a in range(len(patch))
                     for bound in patch_bounds(locations[:, a], image_shape[a], patch[a])]
                    ).astype(np.int32)


def _locations(locations, n_spatial: int) -> np.ndarray:
    """Patch centres as (B, n_spatial) ints: a list of coordinate tuples, or (one coordinate
    each) a list of ints for a sequence."""
    locations = np.asarray(locations, np.int64)
    if locations.ndim == 2 and locations.shape[1] != n_spatial:
        raise ValueError(f"locations have {locations.shape[1]} coordinates each but the input "
                         f"has {n_spatial} spatial axes ({', '.join(axis_names(n_spatial))})")
    return locations.reshape(-1, n_spatial)


def occlude(x, locations, patch=4, fill="extreme") -> np.ndarray:
    """The occluded inputs that ``sensitivity_map`` feeds the model, for the given locations.

    x         : one image (H, W, C) or a batch of one; a sequence (L, C) or a volume
                (D, H, W, C) too, as the locations say (one coordinate per spatial axis)
    locations : a list of patch centres, one coordinate per spatial axis: (row, col) pixel
                coordinates for an image, (step,) for a sequence
    patch     : an int, or one int per spatial axis
    Returns (len(locations), *x's shape) float32.

    >>> occlude(x_test[0], [(0, 0), (14, 14)], patch=4)     # a bright 3x3 corner, a 4x4 square
    """
    n_spatial = np.shape(locations)[-1] if np.ndim(locations) == 2 else np.ndim(x) - 1
    x = one_image(x, n_spatial)
    patch = check_patch(patch, x.shape)
    locations = _locations(locations, n_spatial)
    for axis, n in enumerate(x.shape[:-1]):
        bad = locations[(locations[:, axis] < 0) | (locations[:, axis] >= n), axis]
        if bad.size:
            raise ValueError(f"centre coordinate {int(bad[0])} is outside the "
                             f"{INPUT_NAMES.get(n_spatial, 'input')}, whose "
                             f"{axis_names(n_spatial)[axis]} are 0..{n - 1}")
    from keras import ops

    return ops.convert_to_numpy(occluded(x, fill_value(fill, x),
                                         bounds_of(locations, x.shape, patch)))


def occluded_copies(images, fills, bounds) -> _perturb.Copies:
    """Occlusion's copies for the perturbation engine: copy j is image ``image_of_copy[j]`` with
    the patch ``bounds[j]`` (start and stop along each spatial axis) painted with its fill."""
    from keras import ops

    ones = (1,) * (images.ndim - 2)

    def make(shared, image, rows):
        x, fill = ops.take(shared[0], image, axis=0), ops.take(shared[1], image, axis=0)
        per_bound = [rows[0][:, i] for i in range(rows[0].shape[1])]    # no integer transpose
        return occluded(x, ops.reshape(fill, (-1,) + ones + (fill.shape[-1],)), per_bound)

    return _perturb.Copies(("occlusion",), make, shared=(images, fills.astype(images.dtype)),
                           per_copy=(bounds.astype(np.int32),))


def grid(image_shape, patch, stride):
    """The patch centres (one array per spatial axis), their bounds ((n_a, 2) per axis), and
    the (2n, M) bounds of every copy in row-major order of the centres' grid."""
    spatial = image_shape[:-1]
    centres = tuple(np.arange(0, n, s) for n, s in zip(spatial, stride))
    axis_bounds = tuple(np.stack(patch_bounds(c, n, f), axis=1)
                        for c, n, f in zip(centres, spatial, patch))
    index = np.indices(tuple(len(c) for c in centres)).reshape(len(spatial), -1)   # (n, M)
    copies = np.concatenate([b[i] for b, i in zip(axis_bounds, index)], axis=1)
    return centres, axis_bounds, copies.T.astype(np.int32)

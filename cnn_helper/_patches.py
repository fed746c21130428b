r"""Occlusion's patches (private): where each patch lies, the fill it is painted with, and the
occluded copies, for :mod:`cnn_helper.occlusion` (which documents the geometry and re-exports
``patch_bounds``, ``occlude``, ``fill_value`` and ``extreme_value``).

Per spatial axis, patch size f, stride s, image size n: centres 0, s, 2s, ... < n; the patch
centred at c covers ``c - (f - 1) // 2`` to ``c + f // 2`` (Keras' "same" split), clipped to
the image. An occluded copy is built from boolean masks (keras.ops): the outer product of a
row and a column interval per copy.

Example
-------
>>> occlude(x_test[0], [(0, 0), (14, 14)], patch=4)     # a bright 3x3 corner, a 4x4 square
"""
from __future__ import annotations

import numpy as np

from . import _checks, _perturb, _reference

# --------------------------------------------------------------------------- checks


def pair(value, name: str) -> tuple:
    """An int or a pair of ints, each >= 1, as a pair."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or not all(_checks.is_int(v) for v in values):
        raise TypeError(f"{name} must be an int or a pair of ints (rows, cols), got {value!r}")
    if min(values) < 1:
        raise ValueError(f"{name} must be at least 1, got {value!r}")
    return tuple(int(v) for v in values)


def check_patch(patch, image_shape) -> tuple:
    patch = pair(patch, "patch")
    if patch[0] > image_shape[0] or patch[1] > image_shape[1]:
        raise ValueError(f"patch {patch[0]}x{patch[1]} is larger than the image, which is "
                         f"{image_shape[0]}x{image_shape[1]}")
    return patch


def one_image(x, name: str = "x") -> np.ndarray:
    """One image (H, W, C) or a batch of one -> (H, W, C) float32 (integers cast, unscaled)."""
    x = _checks.float_images(x, name, integers_ok=True)
    if x.ndim == 4:
        if len(x) != 1:
            raise ValueError(f"{name} has {len(x)} images; give one image (H, W, C) or a batch "
                             "of one")
        x = x[0]
    if x.ndim != 3:
        raise ValueError(f"{name} has shape {x.shape}; it must be one image (H, W, C)")
    return x


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
    """The (C,) value painted into the patch for image ``x`` (H, W, C).

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
    x = np.asarray(x)
    values = _reference.reference(model, x[None], fill, "fill", per_pixel=False).values
    return values[0].astype(np.float32)


# --------------------------------------------------------------------------- patches


def patch_bounds(locations, size: int, patch: int):
    """[start, stop) of the patch of length ``patch`` centred at each of ``locations`` along an
    axis of length ``size``, clipped to [0, size): start = c - (patch - 1) // 2, stop = start +
    patch (Keras "same" split)."""
    start = np.asarray(locations, np.int64) - (patch - 1) // 2
    return np.clip(start, 0, size), np.clip(start + patch, 0, size)


def occluded(x, fill, bounds):
    """Occluded copies, built from boolean masks (``keras.ops``): (B, H, W, C).

    x: one image (H, W, C) for every copy, or one per copy (B, H, W, C); fill: (C,), or
    (B, 1, 1, C) one per copy; bounds (4, B) int32: row start, row stop, col start, col stop of
    each patch. Pixel (r, c) of copy b is ``fill`` where r0[b] <= r < r1[b] and
    c0[b] <= c < c1[b], else x's.
    """
    from keras import ops

    r0, r1, c0, c1 = (bounds[i][:, None] for i in range(4))
    rows = ops.arange(ops.shape(x)[-3], dtype="int32")[None, :]
    cols = ops.arange(ops.shape(x)[-2], dtype="int32")[None, :]
    in_rows = (rows >= r0) & (rows < r1)                                    # (B, H)
    in_cols = (cols >= c0) & (cols < c1)                                    # (B, W)
    mask = in_rows[:, :, None, None] & in_cols[:, None, :, None]            # (B, H, W, 1)
    return ops.where(mask, ops.cast(fill, x.dtype), x)


def bounds_of(locations, image_shape, patch) -> np.ndarray:
    """(4, B) int32 patch bounds of the patches centred at ``locations`` (B, 2)."""
    return np.stack([*patch_bounds(locations[:, 0], image_shape[0], patch[0]),
                     *patch_bounds(locations[:, 1], image_shape[1], patch[1])]).astype(np.int32)


def occlude(x, locations, patch=4, fill="extreme") -> np.ndarray:
    """The occluded images that ``sensitivity_map`` feeds the model, for the given locations.

    x         : one image (H, W, C) or a batch of one
    locations : a list of (row, col) pixel coordinates of patch centres
    Returns (len(locations), H, W, C) float32.

    >>> occlude(x_test[0], [(0, 0), (14, 14)], patch=4)     # a bright 3x3 corner, a 4x4 square
    """
    x = one_image(x)
    patch = check_patch(patch, x.shape)
    locations = np.asarray(locations, np.int64).reshape(-1, 2)
    for axis, n in enumerate(x.shape[:2]):
        bad = locations[(locations[:, axis] < 0) | (locations[:, axis] >= n), axis]
        if bad.size:
            raise ValueError(f"centre coordinate {int(bad[0])} is outside the image, whose "
                             f"{'rows' if axis == 0 else 'cols'} are 0..{n - 1}")
    from keras import ops

    return ops.convert_to_numpy(occluded(x, fill_value(fill, x),
                                         bounds_of(locations, x.shape, patch)))


def occluded_copies(images, fills, bounds) -> _perturb.Copies:
    """Occlusion's copies for the perturbation engine: copy j is image ``image_of_copy[j]`` with
    the patch ``bounds[j]`` (row start, row stop, col start, col stop) painted with its fill."""
    from keras import ops

    def make(shared, image, rows):
        x, fill = ops.take(shared[0], image, axis=0), ops.take(shared[1], image, axis=0)
        return occluded(x, fill[:, None, None, :], ops.transpose(rows[0]))

    return _perturb.Copies(("occlusion",), make, shared=(images, fills.astype(images.dtype)),
                           per_copy=(bounds.astype(np.int32),))


def grid(image_shape, patch, stride):
    """The patch centres (rows, cols), their bounds, and the (4, R*C) bounds of every copy in
    row-major order."""
    rows, cols = (np.arange(0, n, s) for n, s in zip(image_shape[:2], stride))
    row_bounds = np.stack(patch_bounds(rows, image_shape[0], patch[0]), axis=1)
    col_bounds = np.stack(patch_bounds(cols, image_shape[1], patch[1]), axis=1)
    r, c = np.repeat(np.arange(len(rows)), len(cols)), np.tile(np.arange(len(cols)), len(rows))
    copies = np.concatenate([row_bounds[r], col_bounds[c]], axis=1).T.astype(np.int32)
    return (rows, cols), (row_bounds, col_bounds), copies
